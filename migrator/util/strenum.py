"""`StrEnum`: an enum whose members are their string values (JSON, YAML, `==` and f-strings see
the value). enum.StrEnum from Python 3.11; the same for 3.10, which the project still supports."""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - exercised on Python 3.10 only

    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return str.__format__(str(self.value), spec)

__all__ = ["StrEnum"]
