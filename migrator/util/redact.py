"""Secrets out of everything the tool shows or writes: the one redaction, used everywhere.

What it removes, from any text and from any value under a secret-named key:
- the userinfo of a URI, whatever it holds: `scheme://user:pass@host` -> `scheme://***@host`, also
  when the password holds `/`, `@`, `:`, `?` or `#` (unencoded, as operators type them): everything
  from `://` to the LAST `@` of the same whitespace-free run is userinfo;
- secret query or key=value parameters: `?token=...`, `&password=...`, `api_key: ...` -> `***`;
- `Bearer <token>` / `Basic <credentials>` in headers;
- the secrets the tool knows, wherever they appear (`remember_token`, `remember_uri`): the token
  and every password of a URI the playbook gives, with their pieces between URL delimiters and
  their percent-decoded forms. A third party's message quotes them in ways no pattern finds
  (pymilvus: "Port could not be cast to integer value as 'P4ssw0rd'" for
  `http://root:P4ssw0rd/x@host`; a password holding a space ends any URI match early).
Over-redaction (an `@` in a URL path, a word equal to a secret's piece) is accepted; a leak is
not. A bare absolute path is spared the known-secret pass: the journal's paths must stay usable.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

REDACTED = "***"

# A key naming a secret (`milvus.token_env` and other `*_env` keys name a variable, not a secret).
_KEY_WORDS = r"token|password|passwd|passphrase|secret|api[_-]?key|apikey|credential"
# In text, a parameter name must end in one of these (`auth=` yes, `authorizationEnabled:` no).
_SECRET_WORDS = rf"{_KEY_WORDS}|credentials|pwd|auth"
_SECRET_KEYS = re.compile(rf"({_KEY_WORDS})", re.IGNORECASE)
# Characters that end a URI (or a parameter) in running text: whitespace and quoting.
_END = r"\s\"'<>`"
_URI_USERINFO = re.compile(rf"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^{_END}]*)@")
_SECRET_PARAM = re.compile(
    rf"(?P<key>(?<![A-Za-z0-9])[A-Za-z0-9_.-]*?(?:{_SECRET_WORDS})(?![A-Za-z0-9_]))(?P<sep>[\"']?\s*[=:]\s*)"
    rf"(?:\"(?P<double>[^\"\n]*)\"|'(?P<single>[^'\n]*)'|(?P<bare>[^{_END}&]+))",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(r"\b(?P<kind>Bearer|Basic)\s+(?P<value>[A-Za-z0-9._~+/=-]+)", re.IGNORECASE)


# A secret's pieces are known too when at least this long (shorter ones would blank ordinary words).
MIN_PIECE = 4
_URL_DELIMITERS = re.compile(r"[/?#@:]")
_BARE_PATH = re.compile(r"/[^\s]*")
_known: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Redact `value` from now on wherever it appears, and its pieces between URL delimiters (where
    URL parsers cut it) and their percent-decoded forms."""
    if not value:
        return
    for form in {value, unquote(value)}:
        _known.add(form)
        _known.update(piece for piece in _URL_DELIMITERS.split(form) if len(piece) >= MIN_PIECE)


def remember_token(token: str | None) -> None:
    """A Milvus token, `user:password` or an API key: the whole, and the password without the user."""
    if token:
        remember_secret(token)
        if ":" in token:
            remember_secret(token.split(":", 1)[1])


def remember_uri(uri: str | None) -> None:
    """The password of `uri`'s userinfo (everything from `://` to its LAST `@`, after the first `:`)."""
    if not uri or "://" not in uri or "@" not in uri:
        return
    userinfo = uri.split("://", 1)[1].rsplit("@", 1)[0]
    if ":" in userinfo:
        remember_secret(userinfo.split(":", 1)[1])


def forget_secrets() -> None:
    """Each command knows its own secrets (cli.main starts with none)."""
    _known.clear()


def redact_text(text: str, *, known: bool = True) -> str:
    """`text` with URI userinfo, secret parameters, Authorization credentials and (with `known`)
    every secret the tool knows replaced by ***."""
    text = _URI_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _SECRET_PARAM.sub(_param, text)
    text = _AUTH_HEADER.sub(lambda m: f"{m['kind']} {REDACTED}", text)
    if known:
        for secret in sorted(_known, key=len, reverse=True):  # the whole before its pieces
            text = text.replace(secret, REDACTED)
    return text


def _param(match: re.Match[str]) -> str:
    key = match["key"]
    if key.lower().endswith("_env"):
        return match.group(0)
    if match["double"] is not None:
        return f'{key}{match["sep"]}"{REDACTED}"'
    if match["single"] is not None:
        return f"{key}{match['sep']}'{REDACTED}'"
    return f"{key}{match['sep']}{REDACTED}"


def is_secret_key(key: str) -> bool:
    return bool(key) and bool(_SECRET_KEYS.search(key)) and not key.lower().endswith("_env")


def redact(value: Any, key: str = "") -> Any:
    """`value` with secrets replaced: values under secret-named keys (not `*_env`, which name a
    variable), and the secrets `redact_text` finds in every string, keys included."""
    if is_secret_key(key) and not isinstance(value, (dict, list, tuple)):
        return REDACTED if value not in (None, "") else value
    if isinstance(value, str):
        return redact_text(value, known=not _BARE_PATH.fullmatch(value))
    if isinstance(value, dict):
        return {redact_text(k, known=not _BARE_PATH.fullmatch(k)) if isinstance(k, str) else k: redact(v, str(k))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
