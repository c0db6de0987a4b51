"""What the operator sees of a running migration: a line per step on stderr (stdout stays the result)."""

from __future__ import annotations

from typing import Any, TextIO


class LineProgress:
    """A line when a step starts and one when it ends."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def start(self, number: int, total: int, step: Any) -> None:
        self._stream.write(f"[{number}/{total}] {step.id}: {step.description} ...\n")
        self._stream.flush()

    def end(self, step: Any, summary: str, seconds: float) -> None:
        self._stream.write(f"    {summary} ({seconds:.1f} s)\n")
        self._stream.flush()
