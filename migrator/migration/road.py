"""The road off NATS before Milvus 2.6, and what 2.6 offers instead of an mq.type edit.

natsmq exists in Milvus 2.3-2.5 only: 2.5 deprecated it, 2.6 removed it (`mq type natsmq is
invalid`). The 2.6 upgrade starts from 2.5.16 or later and keeps the MQ through the upgrade. 2.6
pins its MQ in etcd at its first start and switches it only itself, through AlterWAL, RocksMQ <->
Woodpecker, on a docker compose standalone with the etcd config source. So a NATS deployment's
road to 2.6 is: NATS -> RocksMQ with this tool, on 2.5.16 or later; the upgrade to 2.6 on RocksMQ;
then, if wanted, 2.6's own switch to Woodpecker. Pure data: `plan` puts it in the plan's facts
and the preflight rules (migration/preflight.py) turn it into findings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from migrator.config.layers import FIRST_PINNED_RELEASE
from migrator.mq import Mq

FIRST_WITH_NATS = (2, 3, 0)
ROAD_START = (2, 5, 16)  # the 2.6 upgrade guide's starting point

ALTER_WAL_PATH = "/management/wal/alter"
ALTER_WAL_BODY = {"target_wal_name": "woodpecker"}
WOODPECKER_STORAGE = "woodpecker.storage.type"
ALTER_WAL_DONE = "WAL switch success"  # the 2.6 log line that says the switch is done
MQ_NAMES: dict[str, str] = {Mq.ROCKSMQ: "RocksMQ", Mq.NATSMQ: "NATS"}
# What the tests run against a real Milvus; the 2.5.16 and 2.6 facts come from Milvus's docs and source.
TESTED_LIVE = "Milvus 2.3.5 only; the 2.5/2.6 rules follow Milvus's upgrade guide and source"


@dataclass(frozen=True)
class RoadStep:
    id: str
    text: str
    when: str  # first | this plan | next | later | optional


@dataclass(frozen=True)
class Precondition:
    """What AlterWAL needs, and whether this deployment has it (None: not known from here)."""

    name: str
    met: bool | None
    detail: str


@dataclass(frozen=True)
class Road:
    version: str
    mq_now: str  # the MQ Milvus runs on before the plan
    mq_after: str  # the MQ after the plan
    steps: list[RoadStep]
    alter_wal: dict[str, Any] = field(default_factory=dict)  # url, body, done_when, preconditions
    tested_live: str = TESTED_LIVE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Deployment:
    """What the road needs to know of the deployment, for AlterWAL's preconditions."""

    runtime_kind: str  # process | systemd | compose | docker | command | kubernetes
    etcd_config_source: bool | None  # etcd.use.embed is false; None: not known (Kubernetes)
    woodpecker_storage: str | None  # woodpecker.storage.type as the config files give it
    metrics_url: str  # http://host:9091


def fmt(release: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in release)


def is_pinned(release: tuple[int, int, int] | None) -> bool:
    """2.6+: natsmq gone, the MQ pinned in etcd, AlterWAL instead of an edit."""
    return release is not None and release >= FIRST_PINNED_RELEASE


def road_for(version: str, release: tuple[int, int, int] | None, source: str, target: str,
             deployment: Deployment) -> Road | None:
    """The road from where this plan leaves the deployment to Milvus 2.6 (and past it, on 2.6+).

    None for a deployment that neither runs nor goes to NATS and is below 2.6: its road to 2.6 is
    the plain upgrade guide.
    """
    if is_pinned(release):
        return Road(version, source, source, [
            RoadStep("alter-wal", "2.6 switches its MQ itself: AlterWAL, RocksMQ <-> Woodpecker, with the "
                     "preconditions below; a yaml or env edit of mq.type changes nothing", "optional")],
            alter_wal_for(deployment, source))
    if source != Mq.NATSMQ and target != Mq.NATSMQ:
        return None
    steps: list[RoadStep] = []
    below_start = release is not None and release < ROAD_START
    on_2_5 = release is not None and release[:2] == (2, 5)
    going_to_nats = target == Mq.NATSMQ and source != Mq.NATSMQ
    if going_to_nats:
        steps.append(RoadStep("to-nats", f"{MQ_NAMES.get(source, source)} -> NATS with this tool", "this plan"))
    if below_start and on_2_5:
        steps.append(RoadStep("upgrade-within-2.5", f"upgrade Milvus within 2.5 to {fmt(ROAD_START)} or later, "
                              "keeping NATS", "later" if going_to_nats else "first"))
    if below_start and not on_2_5:
        back_text = ("NATS -> RocksMQ with this tool (`milvus-migrate plan --to rocksmq`); on 2.3/2.4 do it before "
                     "the upgrades, so that they run on RocksMQ")
    else:
        back_text = (f"NATS -> RocksMQ with this tool (`milvus-migrate plan --to rocksmq`), on Milvus "
                     f"{fmt(ROAD_START)} or later")
    when = "later" if going_to_nats else "this plan" if target == Mq.ROCKSMQ else "next"
    steps.append(RoadStep("nats-to-rocksmq", back_text, when))
    if below_start and not on_2_5:
        steps.append(RoadStep("upgrade-to-road-start", f"upgrade Milvus to {fmt(ROAD_START)} or later, keeping "
                              "RocksMQ", "later"))
    steps.append(RoadStep("upgrade-to-2.6", "upgrade to Milvus 2.6 keeping RocksMQ (switching the MQ during the "
                          "upgrade is not supported; 2.6 refuses natsmq)", "later"))
    steps.append(RoadStep("alter-wal", "on 2.6, if you want Woodpecker: AlterWAL, with the preconditions below",
                          "optional"))
    return Road(version, source, target, steps, alter_wal_for(deployment, Mq.ROCKSMQ))


def alter_wal_for(deployment: Deployment, mq_before_switch: str) -> dict[str, Any]:
    """The AlterWAL call 2.6 offers and its preconditions, judged on this deployment."""
    kind = deployment.runtime_kind
    storage = deployment.woodpecker_storage
    preconditions = [
        Precondition("docker compose standalone", kind == "compose",
                     f"runtime {kind}" + ("" if kind == "compose" else ": AlterWAL is supported on docker compose "
                                          "standalone only; stay on RocksMQ")),
        Precondition("the etcd config source (an external etcd)", deployment.etcd_config_source,
                     "etcd.use.embed is false" if deployment.etcd_config_source else
                     "not known here" if deployment.etcd_config_source is None else
                     "etcd.use.embed is true: AlterWAL needs the etcd config source"),
        Precondition(f"{WOODPECKER_STORAGE} set (local or minio) in user.yaml", storage in ("local", "minio"),
                     f"set to {storage}" if storage else f"not set: add `{WOODPECKER_STORAGE}` to "
                                                         "user.yaml before the call"),
        Precondition("the MQ is RocksMQ, not NATS", mq_before_switch == Mq.ROCKSMQ,
                     f"the MQ then: {mq_before_switch}" + ("" if mq_before_switch == Mq.ROCKSMQ else
                                                          " (AlterWAL does not support natsmq)")),
    ]
    return {
        "url": deployment.metrics_url.rstrip("/") + ALTER_WAL_PATH,
        "body": dict(ALTER_WAL_BODY),
        "done_when": f"the Milvus log says `{ALTER_WAL_DONE}`",
        "preconditions": [asdict(precondition) for precondition in preconditions],
    }
