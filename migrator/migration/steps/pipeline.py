"""The ordered steps of a migration and of its rollback, with stable ids (the journal's keys).

Two shapes, by the plan's gate (migration/gate.py). Behind the firewall gate (decision 0022), a
migration from S to T:

    hold compaction; close the gate                    clients cut off, Milvus still on S
    FlushAll on S, stored rows counted; stop S        everything acknowledged is in segments
    S's store drained; switch; T's store moved aside; start T behind the gate
    verify                                            streams, a probe, stored rows, every checkpoint a T position
    open the config and the gate; check writes        clients back
    wait until every loaded collection answers        the read-downtime

Behind port isolation (decision 0008), every restart the tool makes isolates clients (a private
client port, the HTTP API off) until the MQ Milvus starts on is proven to carry it:

    stop S; restart S isolated, FlushAll, snapshot    everything acknowledged is in segments
    stop; T's store moved aside; start T isolated     T starts empty
    verify                                            streams, every checkpoint a T position, counts
    stop; restart T for clients; check writes

The rollback takes the same road back to S, from wherever the run stopped: before T started, S
restarts as it was; after T started, S starts on an empty store, kept away from clients, and is
verified like a target; after clients reached T, T is first kept away again and flushed, so what
it acknowledged is kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from migrator.migration.configstates import (
    FINAL_TARGET,
    HELD_SOURCE,
    HELD_TARGET,
    ISOLATED_SOURCE,
    ISOLATED_TARGET,
    ORIGINAL,
)
from migrator.migration.gate import GateChoice, GateKind
from migrator.migration.plan import Plan
from migrator.migration.steps import (
    backup,
    check_writes,
    clean_up,
    config_state,
    confirm_mq,
    drained,
    expire_dead_sessions,
    flush_all,
    gate,
    healthy,
    move_store_aside,
    preflight,
    readable,
    revive,
    snapshot,
    start,
    stop,
    verify,
)
from migrator.migration.steps.base import RunContext, Step
from migrator.mq import Mq
from migrator.playbook import Playbook


def _config(step_id: str, state: str, description: str) -> Step:
    return Step(step_id, description, lambda ctx: config_state.write_state(ctx, state),
                would=lambda ctx: config_state.would_write(ctx, state))


def _stop(step_id: str, description: str, **options: Any) -> Step:
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


def _healthy(step_id: str, *, kept_away: bool) -> Step:
    description = "healthz says OK; no client can reach Milvus" if kept_away else "healthz says OK"
    return Step(step_id, description, lambda ctx: healthy.healthy(ctx, kept_away=kept_away, step_id=step_id),
                would=lambda ctx: "wait for healthz")


def _restart(prefix: str, mq: str, *, stop_steps: tuple[str, ...], public: bool) -> list[Step]:
    """start, expire-sessions, confirm, healthy: one start, ids `<prefix>start` ... The stopped
    process's sessions go as soon as the new one registers, before its log proves the MQ: the
    channels move to the new process meanwhile (steps/expire_dead_sessions.py)."""
    start_id = f"{prefix}start"
    return [
        _start(start_id, f"start Milvus on {mq}" + ("" if public else ", clients kept away")),
        _expire(f"{prefix}expire-sessions", *stop_steps),
        _confirm(f"{prefix}confirm", mq, start_id),
        _healthy(f"{prefix}healthy", kept_away=not public),
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


def _after_switch(plan: Plan, playbook: Playbook) -> list[Step]:
    steps = []
    if plan.source_mq == Mq.ROCKSMQ and playbook.migration.backup:
        steps.append(Step("backup", "back up rocksmq.path and its _meta_kv with a manifest", backup.backup,
                          would=lambda ctx: "copy rocksmq.path and rocksmq.path_meta_kv to the backup dir",
                          after_switch=True))
    if plan.source_mq == Mq.ROCKSMQ and playbook.migration.cleanup:
        steps.append(Step("clean-up", "remove rocksmq.path and its _meta_kv (after the verified backup)",
                          clean_up.cleanup, would=lambda ctx: "remove rocksmq.path and rocksmq.path_meta_kv",
                          after_switch=True))
    return steps


def behind_firewall(plan: Plan) -> bool:
    return GateChoice.from_dict(plan.gate).kind == GateKind.FIREWALL


@dataclasses.dataclass(frozen=True)
class SnapshotStep:
    """The forward step whose journal entry holds every collection as it was before the switch."""

    step_id: str
    live_rows: bool  # a Strong count of live rows; else datacoord's stored rows, deleted rows included


def snapshot_step(gate: Mapping[str, Any] | None) -> SnapshotStep:
    """Which step that is for a plan's gate (`Plan.gate`, or the `gate` of a plan as saved): behind
    the firewall the FlushAll on the running source counts stored rows, behind port isolation the
    isolated source is counted live before its FlushAll."""
    if GateChoice.from_dict(gate).kind == GateKind.FIREWALL:
        return SnapshotStep("flush-all", live_rows=False)
    return SnapshotStep("snapshot", live_rows=True)


def forward_steps(plan: Plan, playbook: Playbook) -> list[Step]:
    steps = _forward_behind_firewall(plan) if behind_firewall(plan) else _forward_behind_isolation(plan)
    return steps + _after_switch(plan, playbook)


def _close_gate(step_id: str, description: str) -> Step:
    return Step(step_id, description, lambda ctx: gate.close_gate(ctx, step_id),
                would=lambda ctx: "set the firewall rule that rejects clients")


def _open_gate(step_id: str) -> Step:
    return Step(step_id, "clients may connect again: the firewall rule removed",
                lambda ctx: gate.open_gate(ctx, step_id), would=lambda ctx: "remove the firewall rule")


def _verify_behind_gate(step_id: str, mq: Mq, *, start_step: str, flush_step: str,
                        positions_steps: tuple[str, ...]) -> Step:
    return Step(step_id, f"{mq} carries Milvus, with nothing loaded: a probe insert reaches a segment, stored rows "
                "equal those before the switch, every channel checkpoint a {mq} position".format(mq=mq)
                + (", one JetStream stream per channel" if mq == Mq.NATSMQ else ""),
                lambda ctx: verify.verify_behind_gate(ctx, mq=mq, step_id=step_id, start_step=start_step,
                                                      flush_step=flush_step, positions_steps=positions_steps),
                would=lambda ctx: f"check the {mq} streams, a probe, the stored rows and the checkpoints")


def _drained(step_id: str, mq: Mq, flush_step: str) -> Step:
    return Step(step_id, f"the stopped {mq} store holds no insert or delete newer than its channel's checkpoint",
                lambda ctx: drained.drained(ctx, mq, flush_step),
                would=lambda ctx: f"read the stopped {mq} store for writes no segment has")


def _readable(step_id: str, snapshot_step: str) -> Step:
    return Step(step_id, "every loaded collection answers a search again (the read-downtime)",
                lambda ctx: readable.wait_readable(ctx, snapshot_step),
                would=lambda ctx: "wait until every loaded collection answers a search", after_switch=True)


def _move_target_aside(target: Mq) -> Step:
    return Step("move-target-aside", f"the {target} store moved aside if it holds anything (kept, not deleted)",
                lambda ctx: move_store_aside.move_store_aside(ctx, target, "move-target-aside"),
                would=lambda ctx: f"rename a non-empty {target} store aside")


def _move_source_aside(source: Mq) -> Step:
    return Step("rollback-move-source-aside", f"the {source} store moved aside: everything in it is in segments "
                "already, and its positions are not the checkpoints' any more (kept, not deleted)",
                lambda ctx: move_store_aside.move_store_aside(ctx, source, "rollback-move-source-aside"),
                would=lambda ctx: f"rename the {source} store aside")


def _gated(*steps: Step) -> list[Step]:
    """Steps that run while the gate must hold: the engine proves it does before each."""
    return [dataclasses.replace(step, behind_gate=True) for step in steps]


def _hold(step_id: str, state: str, description: str) -> Step:
    return Step(step_id, description, lambda ctx: config_state.hold_compaction(ctx, state),
                would=lambda ctx: f"bring the config to {state} and wait one refresh")


def _forward_behind_firewall(plan: Plan) -> list[Step]:
    source, target = Mq(plan.source_mq), Mq(plan.target_mq)
    return [
        Step("preflight", "Milvus reachable, 2.3 <= version < 2.6, config still as planned", preflight.preflight_step,
             side_effects=False),
        _hold("hold-compaction", HELD_SOURCE, "automatic compaction held off (config, one refresh before clients "
              "are cut off)"),
        _close_gate("close-gate",
                    "close the gate: a firewall rule rejects every client; clients are cut off from here"),
        *_gated(
            Step("flush-all", f"FlushAll on {source} as it runs; every collection's stored rows and the channel "
                 "checkpoints recorded", flush_all.flush_behind_gate,
                 would=lambda ctx: "FlushAll every database and wait"),
            _stop("stop", f"stop Milvus on {source} (killed after {stop.GRACE_AFTER_FLUSH_S[source]:g} s: "
                  "FlushAll holds)", flushed=source),
            _drained("drained", source, "flush-all"),
            _config("rewrite-config", HELD_TARGET, f"mq.type {source} -> {target} in {plan.config_target}"),
            _move_target_aside(target),
            *_restart("", target, stop_steps=("stop",), public=False),
            _verify_behind_gate("verify", target, start_step="start", flush_step="flush-all",
                                positions_steps=("flush-all",)),
            _config("open-config", FINAL_TARGET, "the config as found, on the new MQ: compaction back"),
        ),
        _open_gate("open-gate"),
        _check_writes("check-writes"),
        _readable("readable", snapshot_step(plan.gate).step_id),
    ]


def _forward_behind_isolation(plan: Plan) -> list[Step]:
    source, target = Mq(plan.source_mq), Mq(plan.target_mq)
    return [
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
        _move_target_aside(target),
        *_restart("", target, stop_steps=("stop-source",), public=False),
        _verify("verify", target, start_step="start", positions_steps=("flush-all",), snapshot_step="snapshot"),
        _stop("stop-target", f"stop Milvus on {target} (isolated)"),
        _config("open-config", FINAL_TARGET, "clients back: the client port and the HTTP API as found"),
        *_restart("public-", target, stop_steps=("stop-target",), public=True),
        _check_writes("check-writes"),
        _readable("readable", snapshot_step(plan.gate).step_id),
    ]


def rollback_steps(ctx: RunContext) -> list[Step]:
    """Back to the source MQ from wherever the run stopped. The shape depends only on which forward
    steps started, so a resumed rollback rebuilds the same list; each step is idempotent."""
    if behind_firewall(ctx.plan):
        return _rollback_behind_firewall(ctx)
    return _rollback_behind_isolation(ctx)


def _rollback_behind_firewall(ctx: RunContext) -> list[Step]:
    source, target = Mq(ctx.plan.source_mq), Mq(ctx.plan.target_mq)
    journal = ctx.journal
    if not journal.started("flush-all"):
        # Milvus was never asked for anything behind the gate: it runs on the source as it was.
        return [
            _config("rollback-restore-config", ORIGINAL, "the config as found (compaction back)"),
            _open_gate("rollback-open-gate"),
            _check_writes("rollback-check-writes"),
        ]
    if not journal.started("start"):
        # The target never ran: the source's store and its checkpoints are as it left them. It is
        # restarted all the same: a FlushAll that failed may have failed with it (frozen, its
        # sessions expired meanwhile), and a restart on its own MQ is what heals that.
        return [
            *_gated(
                _stop("rollback-stop", "stop Milvus if it runs"),
                _config("rollback-restore-config", ORIGINAL, "the config as found"),
                *_restart("rollback-", source, stop_steps=("stop", "rollback-stop"), public=False),
            ),
            _open_gate("rollback-open-gate"),
            _check_writes("rollback-check-writes"),
        ]
    steps: list[Step] = []
    flush_step = "flush-all"
    if journal.started("open-gate"):
        # Clients wrote to the target: cut them off again and flush what it acknowledged, on the
        # target started again if it died.
        steps += [
            _hold("rollback-hold-target", HELD_TARGET, f"compaction held again, still on {target}"),
            _close_gate("rollback-close-gate", "close the gate again: clients are cut off from here"),
            *_gated(
                Step("rollback-revive-target", f"Milvus runs on {target} behind the gate (started again if it died)",
                     lambda c: revive.revive(c, target, "rollback-revive-target", dead_steps=("healthy",)),
                     would=lambda ctx: f"start Milvus on {target} if it is not running"),
                Step("rollback-flush-target", f"FlushAll on {target}: what it acknowledged goes into segments",
                     lambda c: flush_all.flush_behind_gate(c, "rollback-flush-target")),
                _stop("rollback-stop", f"stop Milvus on {target}", flushed=target),
                _drained("rollback-drained", target, "rollback-flush-target"),
            ),
        ]
        flush_step = "rollback-flush-target"
    else:
        steps += _gated(_stop("rollback-stop", f"stop Milvus on {target}", record_positions=True))
    # The checkpoints to move past: as the last process left them, else as the last FlushAll did.
    positions_steps = ("rollback-stop", "rollback-flush-target", "verify", "flush-all")
    steps += [
        *_gated(
            _config("rollback-switch-config", HELD_SOURCE, f"mq.type back to {source}, compaction held"),
            _move_source_aside(source),
            *_restart("rollback-", source, stop_steps=("stop", "healthy", "rollback-stop"), public=False),
            _verify_behind_gate("rollback-verify", source, start_step="rollback-start", flush_step=flush_step,
                                positions_steps=positions_steps),
            _config("rollback-open-config", ORIGINAL, "the config as found"),
        ),
        _open_gate("rollback-open-gate"),
        _check_writes("rollback-check-writes"),
    ]
    return steps


def _rollback_behind_isolation(ctx: RunContext) -> list[Step]:
    source, target = Mq(ctx.plan.source_mq), Mq(ctx.plan.target_mq)
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
        _move_source_aside(source),
        *_restart("rollback-", source, stop_steps=("stop-target", "rollback-stop"), public=False),
        _verify("rollback-verify", source, start_step="rollback-start", positions_steps=positions_steps,
                snapshot_step=snapshot_step),
        _stop("rollback-stop-isolated", f"stop Milvus on {source} (isolated)"),
        _config("rollback-open-config", ORIGINAL, "the config as found: clients back"),
        *_restart("rollback-public-", source, stop_steps=("rollback-stop-isolated",), public=True),
        _check_writes("rollback-check-writes"),
    ]
    return steps
