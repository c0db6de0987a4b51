"""The Plan: pure data. Facts, the config edit, findings, steps; saved as schema-versioned JSON.

It carries the sha256 of the playbook and of every config layer so `apply` can refuse a plan
that no longer describes the deployment, and it carries no secret (the token stays in the
environment; URIs are redacted).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from migrator.errors import BadInput, Refused
from migrator.findings import Finding
from migrator.util.redact import redact

SCHEMA_VERSION = 1


@dataclass
class PlannedStep:
    id: str
    description: str


@dataclass
class Plan:
    created_at: str
    tool_version: str
    playbook_path: str
    playbook_sha256: str
    source_mq: str
    target_mq: str
    milvus_version: str
    changes: dict[str, Any]  # the mq edit: dotted key -> value
    config_target: str  # the file the mq edit writes
    config_diff: str
    force_deny_target: str  # the file deny/allow-writes edit
    force_deny_original: bool
    layers: dict[str, str | None]  # config file path -> sha256 (None: absent)
    snapshot: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    steps: list[PlannedStep] = field(default_factory=list)
    estimate: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def nothing_to_do(self) -> bool:
        return self.source_mq == self.target_mq

    def to_dict(self) -> dict[str, Any]:
        return redact(asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Plan":
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise BadInput(f"plan schema {raw.get('schema_version')!r} is not {SCHEMA_VERSION}")
        data = dict(raw)
        data["findings"] = [Finding.from_dict(f) for f in data.get("findings", [])]
        data["steps"] = [PlannedStep(**s) for s in data.get("steps", [])]
        try:
            return cls(**data)
        except TypeError as error:
            raise BadInput(f"not a milvus-migrate plan: {error}") from error

    def save(self, path: Path) -> None:
        from migrator.migration.journal import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "Plan":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise BadInput(f"{path}: cannot read the plan ({error.strerror})") from error
        except ValueError as error:
            raise BadInput(f"{path}: not a JSON plan ({error})") from error
        if not isinstance(raw, dict):
            raise BadInput(f"{path}: not a milvus-migrate plan")
        return cls.from_dict(raw)


def sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def check_fresh(plan: Plan, playbook_sha256: str) -> None:
    """Refuse a plan whose playbook or config layers changed since it was made (exit 3, naming which)."""
    changed = []
    if playbook_sha256 != plan.playbook_sha256:
        changed.append(f"playbook {plan.playbook_path}")
    for path, digest in plan.layers.items():
        if sha256_of(Path(path)) != digest:
            changed.append(path)
    if changed:
        raise Refused(f"the plan is stale: changed since it was made: {', '.join(changed)}",
                      hint="make a new plan with `milvus-migrate plan`")
