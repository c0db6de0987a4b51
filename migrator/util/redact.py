"""Secrets out of everything the tool shows or writes: the one redaction, used everywhere.

What it removes, from any text and from any value under a secret-named key:
- the userinfo of a URI, whatever it holds: `scheme://user:pass@host` -> `scheme://***@host`, also
  when the password holds `/`, `@`, `:`, `?` or `#` (unencoded, as operators type them): everything
  from `://` to the LAST `@` of the same whitespace-free run is userinfo;
- secret query or key=value parameters: `?token=...`, `&password=...`, `api_key: ...` -> `***`;
- `Bearer <token>` / `Basic <credentials>` in headers.
Over-redaction (an `@` in a URL path) is accepted; a leak is not.
"""

from __future__ import annotations

import re
from typing import Any

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


def redact_text(text: str) -> str:
    """`text` with URI userinfo, secret parameters and Authorization credentials replaced by ***."""
    text = _URI_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _SECRET_PARAM.sub(_param, text)
    return _AUTH_HEADER.sub(lambda m: f"{m['kind']} {REDACTED}", text)


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
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_text(k) if isinstance(k, str) else k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
