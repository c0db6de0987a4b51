"""One time bound for everything a step waits for."""

from __future__ import annotations

import time


class Deadline:
    """`seconds` from now, shared by several waits: each gets what is left (never less than
    `floor_s`, so a last call still has time to answer), and together they stay within it instead of
    each waiting its own full deadline."""

    def __init__(self, seconds: float, *, floor_s: float = 1.0) -> None:
        self.seconds = seconds
        self.floor_s = floor_s
        self._until = time.monotonic() + seconds

    def left(self) -> float:
        return max(self._until - time.monotonic(), self.floor_s)

    def passed(self) -> bool:
        return time.monotonic() > self._until
