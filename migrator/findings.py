"""The one Finding type: what a rule found, at which level, about which key.

Plan preflight rules, the natsmq/rocksmq settings rules and the NATS stream check all speak it;
an `error` refuses the operation, a `warning` is shown, an `info` is context (advice, the road).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

LEVELS = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning | info
    key: str  # a config key, a playbook field, or a stable code (missing-dml-stream)
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any) -> Finding:
        return cls(level=str(raw["level"]), key=str(raw["key"]), message=str(raw["message"]))

    def __str__(self) -> str:
        return f"{self.level}: {self.key}: {self.message}"


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.level == "error"]
