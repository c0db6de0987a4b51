"""Secrets out of everything the tool shows or writes: tokens, passwords, `user:pass@` in URIs."""

from __future__ import annotations

import re
from typing import Any

_SECRET_KEYS = re.compile(r"(token|password|passwd|secret|api_key|apikey)", re.IGNORECASE)
_URI_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+(:[^/@\s]*)?@")


def redact_text(text: str) -> str:
    """Strip `user:password@` from any URI inside a string."""
    return _URI_CREDENTIALS.sub(r"\g<scheme>***@", text)


def redact(value: Any, key: str = "") -> Any:
    """`value` with secrets replaced: values under secret-named keys (not `*_env`, which name a
    variable), and credentials inside URIs anywhere."""
    if key and _SECRET_KEYS.search(key) and not key.endswith("_env"):
        return "***" if value not in (None, "") else value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
