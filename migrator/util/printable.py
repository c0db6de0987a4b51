"""One sanitiser for everything the tool prints: control characters shown escaped, never sent.

Names and messages come from places the tool does not control (the lock file, a journal, file
names in a directory, collection names in Milvus, a playbook's `name`, a third party's error): an
ESC there would drive the operator's terminal (clear it, rewrite a line, set its title), a CR or
a newline forge a line of output ("status: done"). Each control character (C0, DEL, C1) and each
bidirectional override becomes `\\xNN` / `\\uNNNN`; `one_line` escapes newlines and tabs too, for
a value inside a line. Applied at every gate (Environment.emit and say, the error lines, the
progress display, the Markdown report) and to every value a line is made of.
"""

from __future__ import annotations

import re

_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object, *, one_line: bool = False) -> str:
    """`text` (str() of it) with every control character escaped; `one_line`: newlines and tabs too."""
    return (_ONE_LINE if one_line else _KEEP_LINES).sub(_escape, str(text))


def one_line(text: object) -> str:
    return printable(text, one_line=True)
