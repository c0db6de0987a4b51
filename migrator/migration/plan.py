"""The Plan: pure data. Facts, the config edit, findings, steps; saved as schema-versioned JSON.

It carries the sha256 of the playbook and of every config layer so `apply` can refuse a plan
that no longer describes the deployment, and it carries no secret (the token stays in the
environment; URIs are redacted).

A saved plan is sealed by its own content: `digest` is the sha256 of its canonical JSON without
the digest field. A plan whose digest does not match was edited by hand or damaged (BadInput,
exit 2); one that matches but whose fields do not fit the playbook and the deployment is refused
(`check_fresh`, exit 3). The digest is no signature (anyone can recompute it): the field checks
are what keep a crafted plan from steering apply. See docs/decisions/0015-hostile-input.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from migrator.config.keys import MQ_TYPE, NATSMQ_SERVER_PREFIX
from migrator.errors import BadInput, Refused
from migrator.findings import LEVELS, Finding
from migrator.mq import MIGRATABLE, Mq
from migrator.util.files import MIB, read_bounded
from migrator.util.redact import redact

if TYPE_CHECKING:
    from migrator.playbook import LoadedPlaybook


SCHEMA_VERSION = 2  # 2: the digest
PLAN_LIMIT = 64 * MIB
STORE_DIR = "natsmq.server.storeDir"
NATS_LOG_FILE = "natsmq.server.monitor.logFile"


# The plan's typed parts. TypedDicts: they stay the plain JSON mappings the digest is computed over
# (same keys, same bytes), while loading names a missing or mistyped field (BadInput, exit 2).
# with_config gives pydantic each class's config: a key no version of the tool writes is refused.
_strict_keys = with_config(ConfigDict(extra="forbid"))


@_strict_keys
class SnapshotCollection(TypedDict):
    database: str
    name: str
    loaded: bool
    rows: int
    key: str


@_strict_keys
class PlanSnapshot(TypedDict):
    """What Milvus answered when the plan was made (milvus/client.py Snapshot.to_dict)."""

    version: str
    collections: list[SnapshotCollection]


@_strict_keys
class NoSnapshot(TypedDict):
    """A Kubernetes plan made while Milvus was unreachable (migration/kubernetes.py)."""


@_strict_keys
class ForceDenyFact(TypedDict):
    value: bool
    source: str


@_strict_keys
class MqPinFact(TypedDict):
    key: str
    value: str | None


@_strict_keys
class PlanFacts(TypedDict, total=False):
    """What the planner found (migration/planner.py, kubernetes.py); each key only when it applies."""

    mq_type_source: str  # where mq.type comes from
    force_deny: ForceDenyFact
    etcd: str | None  # why etcd was or was not read
    config_sources: list[dict[str, Any]]  # EffectiveConfig.mq_settings, each to_dict()
    scale: dict[str, Any]  # MilvusAdapter.scale
    rocksmq: dict[str, Any]  # the RocksMQ store found (planner._rocksmq_facts)
    road: dict[str, Any] | None  # road.Road.to_dict
    target_store: dict[str, Any]  # planner.target_store
    mq_pin: MqPinFact  # 2.6: the MQ pinned in etcd
    kubernetes: dict[str, Any]  # kubernetes.KubernetesChange.to_dict, with manager, out_dir, run_kubectl


@_strict_keys
class GateFact(TypedDict):
    """How the run keeps clients away (migration/gate.py GateChoice.to_dict)."""

    kind: str  # firewall or isolation
    tool: str | None  # nft or iptables for the firewall
    why: str


def isolation_gate() -> GateFact:
    """The gate of a plan made before gates existed: port isolation (decision 0008)."""
    return GateFact(kind="isolation", tool=None, why="the plan names no gate")


@_strict_keys
class Estimate(TypedDict, total=False):
    """The write-downtime estimate, the budget and the rollback's bound (migration/costs.py)."""

    write_downtime_s: float
    parts: dict[str, float]
    reload_s: float
    read_downtime_s: float  # until every loaded collection answers a search again
    write_downtime_budget_s: float
    budget_from: str
    rollback_budget_s: float
    basis: str


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
    isolation_target: str  # the file(s) the isolated restarts edit (client port, HTTP API)
    isolation_diff: str  # what an isolated restart of the source changes
    layers: dict[str, str | None]  # config file path -> sha256 (None: absent)
    snapshot: PlanSnapshot | NoSnapshot
    facts: PlanFacts = field(default_factory=lambda: PlanFacts())
    findings: list[Finding] = field(default_factory=list)
    steps: list[PlannedStep] = field(default_factory=list)
    estimate: Estimate = field(default_factory=lambda: Estimate())
    gate: GateFact = field(default_factory=isolation_gate)
    schema_version: int = SCHEMA_VERSION
    digest: str = field(default="", compare=False)  # set in to_dict(); checked in from_dict()

    def __post_init__(self) -> None:
        for finding in self.findings:
            if finding.level not in LEVELS:
                raise ValueError(f"finding level {finding.level!r} is not one of {', '.join(LEVELS)}")

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def nothing_to_do(self) -> bool:
        return self.source_mq == self.target_mq

    def to_dict(self) -> dict[str, Any]:
        """The plan as saved: redacted, with the digest over everything else."""
        data = redact(asdict(self))
        data.pop("digest", None)
        return {**data, "digest": digest_of(data)}

    @classmethod
    def from_dict(cls, raw: Any, *, where: str = "plan") -> Plan:
        """A Plan from its saved form; BadInput naming `where` for a wrong shape or digest."""
        if not isinstance(raw, dict):
            raise BadInput(f"{where}: not a milvus-migrate plan (a JSON {type(raw).__name__}, not an object)")
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise BadInput(f"{where}: plan schema {raw.get('schema_version')!r} is not {SCHEMA_VERSION}",
                           hint="make a new plan with `milvus-migrate plan`")
        content = {key: value for key, value in raw.items() if key != "digest"}
        if raw.get("digest") != digest_of(content):
            raise BadInput(f"{where}: the plan's digest does not match its content: it was edited or damaged",
                           hint="make a new plan with `milvus-migrate plan`; never edit one by hand")
        from pydantic import TypeAdapter, ValidationError

        try:
            return TypeAdapter(cls).validate_python(raw, strict=False)
        except ValidationError as error:
            first = error.errors()[0]
            field_name = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            where_in = f"{field_name}: " if field_name else ""
            raise BadInput(f"{where}: not a milvus-migrate plan: {where_in}{message}") from None

    def save(self, path: Path) -> None:
        from migrator.migration.journal import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> Plan:
        data = read_bounded(path, PLAN_LIMIT, what="plan")
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise BadInput(f"{path}: not a JSON plan ({error})") from error
        return cls.from_dict(raw, where=str(path))


def digest_of(content: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of a saved plan without its digest."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def sha256_of(path: Path) -> str | None:
    """sha256 of a config layer; None when it does not exist. Bounded like every config read."""
    from migrator.config.yamldoc import CONFIG_LIMIT

    if not os.path.exists(path):
        return None
    return hashlib.sha256(read_bounded(path, CONFIG_LIMIT, what="config file")).hexdigest()


def check_fresh(plan: Plan, loaded: LoadedPlaybook) -> None:
    """Refuse (exit 3, naming what) a plan that does not describe the deployment of the playbook
    `loaded` (a LoadedPlaybook) as it is now: another playbook, a changed playbook or config
    layer, or fields apply would act on that a plan made from this playbook cannot hold."""
    problems = field_problems(plan, loaded)
    if problems:
        raise Refused(f"the plan does not fit {loaded.path}: {'; '.join(problems)}",
                      hint="make a new plan with `milvus-migrate plan`")
    changed = []
    if loaded.sha256 != plan.playbook_sha256:
        changed.append(f"playbook {plan.playbook_path}")
    for path, digest in plan.layers.items():
        if sha256_of(Path(path)) != digest:
            changed.append(path)
    if changed:
        raise Refused(f"the plan is stale: changed since it was made: {', '.join(changed)}",
                      hint="make a new plan with `milvus-migrate plan`")


def field_problems(plan: Plan, loaded: LoadedPlaybook) -> list[str]:
    """What in `plan` a plan made by `plan` from the playbook `loaded` could not hold."""
    from migrator.config.layers import config_files_for, parse_version
    from migrator.migration.preflight import playbook_dirs_findings
    from migrator.util.paths import system_file_problem, system_path_problem

    spec = loaded.spec
    problems = []
    for role, value in (("target_mq", plan.target_mq), ("source_mq", plan.source_mq)):
        if value not in MIGRATABLE:
            problems.append(f"{role} {value!r} is not natsmq or rocksmq")
    if plan.changes.get(MQ_TYPE) != plan.target_mq:
        problems.append(f"changes.{MQ_TYPE} is {plan.changes.get(MQ_TYPE)!r}, the target is {plan.target_mq!r}")
    for key in plan.changes:
        if key != MQ_TYPE and not (plan.target_mq == Mq.NATSMQ and key.startswith(NATSMQ_SERVER_PREFIX)):
            problems.append(f"changes.{key}: a plan changes only {MQ_TYPE} and, to natsmq, {NATSMQ_SERVER_PREFIX}*")
    # Paths apply hands to Milvus, or moves aside: never a system directory, never the playbook's own.
    for key, check in ((STORE_DIR, system_path_problem), (NATS_LOG_FILE, system_file_problem)):
        path = plan.changes.get(key)
        problem = check(path) if isinstance(path, str) else None if path is None else f"{path!r} is not a path"
        if problem:
            problems.append(f"changes.{key}: {problem}")
    problems += [f"changes.{f.key}: {f.message}" for f in playbook_dirs_findings(spec, plan.changes)]
    try:
        version = parse_version(plan.milvus_version)
    except BadInput:
        version = None
    # A Kubernetes plan made while Milvus was unreachable records "unknown" (it only emits files).
    unknown_allowed = spec.runtime.kind == "kubernetes" and plan.milvus_version == "unknown"
    if not unknown_allowed and (version is None or not ((2, 3) <= version < (2, 6))):
        problems.append(f"milvus_version {plan.milvus_version!r} is outside 2.3 <= version < 2.6")
    if spec.runtime.kind == "kubernetes":
        if plan.layers:
            problems.append("layers: a Kubernetes plan has no local config layer")
    elif version is not None:
        expected = {str(spec.config.dir / name) for name in config_files_for(plan.milvus_version)}
        if set(plan.layers) != expected:
            problems.append(f"layers are not the files of config.dir {spec.config.dir} ({', '.join(sorted(expected))})")
        for role, target in (("config_target", plan.config_target), ("isolation_target", plan.isolation_target)):
            if target not in expected:
                problems.append(f"{role} {target} is not one of the config layers")
    return problems
