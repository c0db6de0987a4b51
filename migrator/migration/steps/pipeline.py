"""The ordered steps of a migration and of its rollback, with stable ids (the journal's keys).

Every restart the tool makes isolates clients (a private client port, the HTTP API off) until the
MQ Milvus starts on is proven to carry it; only then do clients come back, on a last restart
(docs/decisions/0008-isolate-clients-on-every-restart.md). A migration from S to T:

    stop S; restart S isolated, FlushAll, snapshot    everything acknowledged is in segments
    stop; T's store moved aside; start T isolated     T starts empty
    verify                                            streams, every checkpoint a T position, counts
    stop; restart T for clients; check writes

The rollback takes the same road back to S, from wherever the run stopped: before T started, S
restarts for clients as it was; after T started, S starts isolated on an empty store; after
clients reached T, T is first restarted isolated and flushed, so what it acknowledged is kept.
"""

from __future__ import annotations

from typing import Any

from migrator.migration.configstates import (
    FINAL_TARGET,
    ISOLATED_SOURCE,
    ISOLATED_TARGET,
    ORIGINAL,
)
from migrator.migration.plan import Plan
from migrator.migration.steps import (
    backup,
    check_writes,
    clean_up,
    config_state,
    confirm_mq,
    expire_dead_sessions,
    flush_all,
    healthy,
    move_store_aside,
    preflight,
    snapshot,
    start,
    stop,
    verify,
)
from migrator.migration.steps.base import RunContext, Step
from migrator.mq import Mq


def _config(step_id: str, state: str, description: str) -> Step:
    return Step(step_id, description, lambda ctx: config_state.write_state(ctx, state),
                would=lambda ctx: config_state.would_write(ctx, state))


def _stop(step_id: str, description: str, **options: bool) -> Step:
    return Step(step_id, description, lambda ctx: stop.stop(ctx, step_id, **options),
                would=lambda ctx: f"stop Milvus through the {ctx.runtime.kind} runtime")


def _start(step_id: str, description: str) -> Step:
    return Step(step_id, description, lambda ctx: start.start(ctx, step_id),
                would=lambda ctx: f"start Milvus through the {ctx.runtime.kind} runtime")


def _confirm(step_id: str, mq: str, start_step: str) -> Step:
    return Step(step_id, f"the log shows `try to init mq` mqType={mq} after this start",
                lambda ctx: confirm_mq.confirm_mq(ctx, mq, start_step),
                would=lambda ctx: f"wait for mqType={mq} in Milvus's log")


def _expire(step_id: str, *stop_steps: str) -> Step:
    return Step(step_id, "remove the stopped process's etcd sessions, so its collections move to the new "
                "process now instead of after common.session.ttl",
                lambda ctx: expire_dead_sessions.expire_dead_sessions(ctx, *stop_steps),
                would=lambda ctx: "remove the etcd sessions of the stopped Milvus process")


def _healthy(step_id: str, *, isolated: bool) -> Step:
    description = "healthz says OK; the public port and the HTTP API serve no client" if isolated else "healthz says OK"
    return Step(step_id, description, lambda ctx: healthy.healthy(ctx, isolated=isolated),
                would=lambda ctx: "wait for healthz")


def _restart(prefix: str, mq: str, *, stop_steps: tuple[str, ...], public: bool) -> list[Step]:
    """start, confirm-mq, expire-dead-sessions, healthy: one start, ids `<prefix>start` ..."""
    start_id = f"{prefix}start"
    return [
        _start(start_id, f"start Milvus on {mq}" + ("" if public else ", clients isolated")),
        _confirm(f"{prefix}confirm", mq, start_id),
        _expire(f"{prefix}expire-sessions", *stop_steps),
        _healthy(f"{prefix}healthy", isolated=not public),
    ]


def _verify(step_id: str, mq: str, *, start_step: str, positions_steps: tuple[str, ...], snapshot_step: str) -> Step:
    return Step(step_id, f"{mq} carries Milvus: every channel checkpoint a {mq} position, counts equal the "
                "snapshot, every loaded collection answers a Strong count"
                + (", one JetStream stream per channel" if mq == Mq.NATSMQ else ""),
                lambda ctx: verify.verify(ctx, mq=mq, step_id=step_id, start_step=start_step,
                                          positions_steps=positions_steps, snapshot_step=snapshot_step),
                would=lambda ctx: f"check the {mq} streams, checkpoints and counts")


def _check_writes(step_id: str) -> Step:
    return Step(step_id, "a probe insert through the public port is acknowledged and a Strong query sees it",
                lambda ctx: check_writes.check_writes(ctx, step_id), would=lambda ctx: "insert and read a probe row")


def forward_steps(plan: Plan, playbook: Any) -> list[Step]:
    source, target = plan.source_mq, plan.target_mq
    steps = [
        Step("preflight", "Milvus reachable, 2.3 <= version < 2.6, config still as planned", preflight.preflight_step,
             side_effects=False),
        _stop("stop", "stop Milvus: clients are cut off from here (SIGKILL after the stop deadline)",
              cuts_clients=True),
        _config("isolate", ISOLATED_SOURCE, "isolate clients: a private client port, the HTTP API off"),
        *_restart("source-", source, stop_steps=("stop",), public=False),
        Step("snapshot", "every collection's row count and load state (no client can write)", snapshot.snapshot,
             would=lambda ctx: "count every collection"),
        Step("flush-all", f"FlushAll on {source} once the datanode caught up: everything acknowledged goes into "
             "segments, every counted row is stored", flush_all.flush_all,
             would=lambda ctx: "FlushAll every database and wait"),
        _stop("stop-source", f"stop Milvus on {source}"),
        _config("rewrite-config", ISOLATED_TARGET,
                f"mq.type {source} -> {target} in {plan.config_target} (clients still isolated)"),
        Step("move-target-aside", f"the {target} store moved aside if it holds anything (kept, not deleted)",
             lambda ctx: move_store_aside.move_store_aside(ctx, target, "move-target-aside"),
             would=lambda ctx: f"rename a non-empty {target} store aside"),
        *_restart("", target, stop_steps=("stop-source",), public=False),
        _verify("verify", target, start_step="start", positions_steps=("flush-all",), snapshot_step="snapshot"),
        _stop("stop-target", f"stop Milvus on {target} (isolated)"),
        _config("open-config", FINAL_TARGET, "clients back: the client port and the HTTP API as found"),
        *_restart("public-", target, stop_steps=("stop-target",), public=True),
        _check_writes("check-writes"),
    ]
    if source == Mq.ROCKSMQ and playbook.migration.backup:
        steps.append(Step("backup", "back up rocksmq.path and its _meta_kv with a manifest", backup.backup,
                          would=lambda ctx: "copy rocksmq.path and rocksmq.path_meta_kv to the backup dir",
                          after_switch=True))
    if source == Mq.ROCKSMQ and playbook.migration.cleanup:
        steps.append(Step("clean-up", "remove rocksmq.path and its _meta_kv (after the verified backup)",
                          clean_up.cleanup, would=lambda ctx: "remove rocksmq.path and rocksmq.path_meta_kv",
                          after_switch=True))
    return steps


def rollback_steps(ctx: RunContext) -> list[Step]:
    """Back to the source MQ from wherever the run stopped. The shape depends only on which forward
    steps started, so a resumed rollback rebuilds the same list; each step is idempotent."""
    source, target = ctx.plan.source_mq, ctx.plan.target_mq
    journal = ctx.journal
    if not journal.started("start"):
        # The target never ran: the source's store and its checkpoints are as it left them.
        return [
            _stop("rollback-stop", "stop Milvus if it runs"),
            _config("rollback-restore-config", ORIGINAL, "the config as found"),
            *_restart("rollback-", source, stop_steps=("stop", "stop-source", "rollback-stop"), public=True),
            _check_writes("rollback-check-writes"),
        ]
    steps: list[Step] = []
    snapshot_step = "snapshot"
    if journal.started("public-start"):
        # Clients wrote to the target: restart it isolated and flush it before leaving it.
        steps += [
            _stop("rollback-stop-target", f"stop Milvus on {target}"),
            _config("rollback-isolate-target", ISOLATED_TARGET, f"isolate clients, still on {target}"),
            *_restart("rollback-target-", target, stop_steps=("stop-target", "rollback-stop-target"), public=False),
            Step("rollback-snapshot", "every collection's row count (no client can write)",
                 lambda c: snapshot.snapshot(c, "rollback-snapshot")),
            Step("rollback-flush-target", f"FlushAll on {target}: what it acknowledged goes into segments",
                 lambda c: flush_all.flush_all(c, "rollback-flush-target", "rollback-snapshot")),
        ]
        snapshot_step = "rollback-snapshot"
    # The checkpoints to move past: as the last process left them, else as the last FlushAll did.
    positions_steps = ("rollback-stop", "rollback-flush-target", "flush-all")
    steps += [
        _stop("rollback-stop", f"stop Milvus on {target}", record_positions=True),
        _config("rollback-isolate", ISOLATED_SOURCE, f"mq.type back to {source}, clients isolated"),
        Step("rollback-move-source-aside", f"the {source} store moved aside: everything in it is in segments "
             "already, and its positions are not the checkpoints' any more (kept, not deleted)",
             lambda c: move_store_aside.move_store_aside(c, source, "rollback-move-source-aside")),
        *_restart("rollback-", source, stop_steps=("stop-target", "rollback-stop"), public=False),
        _verify("rollback-verify", source, start_step="rollback-start", positions_steps=positions_steps,
                snapshot_step=snapshot_step),
        _stop("rollback-stop-isolated", f"stop Milvus on {source} (isolated)"),
        _config("rollback-open-config", ORIGINAL, "the config as found: clients back"),
        *_restart("rollback-public-", source, stop_steps=("rollback-stop-isolated",), public=True),
        _check_writes("rollback-check-writes"),
    ]
    return steps
