"""One Milvus log line, text or JSON format, parsed into level, message and fields."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LogLine:
    level: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


_QUOTED = r'"(?:[^"\\]|\\.)*"'
# The head of a text line: `[time] [LEVEL] [caller] [message]`. Searched, not matched at 0,
# so prefixes like `milvus-standalone  | ` (compose) or a journald header are skipped.
_TEXT_HEAD = re.compile(
    r"\[(?P<time>\d{4}/\d\d/\d\d [^\]]*)\] \[(?P<level>[A-Z]+)\]"
    r"(?: \[(?P<caller>[^\]\s\"]*:\d+)\])?"
    rf" \[(?P<message>{_QUOTED}|[^\]]*)\]"
)
_TEXT_FIELD = re.compile(rf" ?\[(?P<key>{_QUOTED}|[^=\]]*)(?:=(?P<value>{_QUOTED}|[^\]]*))?\]")


def parse_line(line: str) -> LogLine | None:
    """A Milvus log line in text or JSON format, or None if it is neither."""
    brace = line.find("{")
    bracket = line.find("[")
    if brace >= 0 and (bracket < 0 or brace < bracket):
        return _parse_json(line[brace:])
    return _parse_text(line)


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        try:
            return json.loads(token)  # zap escapes like JSON: \" \\ \n \t \uXXXX
        except ValueError:
            return token[1:-1]
    return token


def _parse_text(line: str) -> LogLine | None:
    head = _TEXT_HEAD.search(line)
    if head is None:
        return None
    fields: dict[str, Any] = {}
    pos = head.end()
    while (m := _TEXT_FIELD.match(line, pos)) is not None:
        pos = m.end()
        key = _unquote(m["key"])
        if key or m["value"] is not None:  # `[]` is an empty field: skip it
            fields[key] = _unquote(m["value"]) if m["value"] is not None else ""
    return LogLine(head["level"], _unquote(head["message"]), fields)


def _parse_json(text: str) -> LogLine | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or "level" not in record:
        return None
    message = record.get("message", record.get("msg", ""))
    fields = {k: v for k, v in record.items() if k not in ("level", "time", "caller", "message", "msg")}
    return LogLine(str(record["level"]).upper(), str(message), fields)
