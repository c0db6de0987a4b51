"""The plan's write-downtime estimate: what a migration costs per restart and per unit it finds.

The figures are measured by benchmarks/bench_scale.py on the sandbox (Milvus 2.3.5 from the wheel,
RocksMQ <-> NATS, a 2-core machine shared with other work, 2026-11-30), fitted over 5, 50 and 200
loaded collections and a collection of 1M rows; docs/milvus.md ("At scale") says what each one is.
Another machine has other figures: the report's measured write-downtime is the number to trust,
and the bench is how to measure these again.

Behind port isolation (docs/decisions/0008) a migration S -> T cuts clients off from the first
stop to the first write acknowledged again: three stops, three restarts, two reloads of every
loaded collection (the snapshot on S, verify on T), one FlushAll, the checkpoint gate, the first
write. Behind the firewall gate (decision 0022): a FlushAll on S, one stop, the drained check, one
restart, a FlushAll on T with a probe and the stored-row counts, the first write; the reload comes
after writes are back and makes the read-downtime.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from migrator.migration.plan import Estimate
from migrator.mq import Mq

SOURCE = "benchmarks/bench_scale.py on the sandbox (Milvus 2.3.5, 2 shared cores), 2026-11-30"

# One restart: start, the log line, the stopped process's sessions, healthz (8-10 s whatever the
# size; a little more with many loaded collections).
RESTART_S = 8.3
RESTART_PER_LOADED_S = 0.01
# A graceful stop on NATS (on RocksMQ with loaded collections it hangs until the stop deadline).
GRACEFUL_STOP_S = 0.2
# A reload: after a restart querycoord loads every flushed segment of every loaded collection
# again, and the snapshot (on the source) and verify (on the target) wait for it. 2.3.5's
# querynode forces a garbage collection after each segment it loads, over a heap that grows with
# the segments already loaded: the wait grows with the square of the segments (21 segments 3 s,
# 126 segments 12 s, 501 segments 135-220 s).
RELOAD_S = 3.0
RELOAD_PER_SEGMENT_SQUARED_S = 0.00065
RELOAD_PER_MILLION_ROWS_S = 1.0
# Rows the stopped process had not flushed are replayed from the MQ at the next start and flushed;
# 50k of them made no difference the bench could tell from noise: a bound, not a measurement.
REPLAY_PER_MILLION_ROWS_S = 5.0
# FlushAll (re-sent every 2 s while waiting), a little more per channel to flush.
FLUSH_S = 0.5
FLUSH_PER_COLLECTION_S = 0.018
# verify on NATS waits for every channel checkpoint to move (the first time tick on the new MQ).
CHECKPOINTS_S: dict[str, float] = {Mq.NATSMQ: 1.2, Mq.ROCKSMQ: 0.0}
# The probe's insert after the last restart (the probe collection is made before the first stop).
FIRST_WRITE_S = 0.5

# The budget a plan gives when the playbook names none: room for a slower day than the estimate.
BUDGET_FACTOR = 2.0
BUDGET_MARGIN_S = 60.0


def _stop_s(mq: str, loaded: int, stop_deadline_s: float) -> float:
    # A RocksMQ standalone with loaded collections hangs in its graceful stop (docs/milvus.md).
    return stop_deadline_s + 0.1 if mq == Mq.ROCKSMQ and loaded else GRACEFUL_STOP_S


def _reload_s(scale: Mapping[str, Any]) -> float:
    segments = scale.get("loaded_segments", scale.get("loaded", 0))
    return (RELOAD_S + RELOAD_PER_SEGMENT_SQUARED_S * segments ** 2
            + RELOAD_PER_MILLION_ROWS_S * scale.get("rows", 0) / 1e6)


def write_downtime_parts(scale: Mapping[str, Any], *, source: str, target: str,
                         stop_deadline_s: float) -> dict[str, float]:
    """Seconds per part of the write-downtime of a migration source -> target of what `scale` counts
    (MilvusAdapter.scale: loaded collections, their flushed segments, rows, unflushed rows)."""
    loaded = int(scale.get("loaded", 0))
    return {
        "stops": round(2 * _stop_s(source, loaded, stop_deadline_s) + _stop_s(target, loaded, stop_deadline_s), 1),
        "restarts": round(3 * (RESTART_S + RESTART_PER_LOADED_S * loaded), 1),
        "reloads (snapshot, verify)": round(2 * _reload_s(scale), 1),
        "flush (and replay)": round(FLUSH_S + FLUSH_PER_COLLECTION_S * scale.get("collections", 0)
                                    + REPLAY_PER_MILLION_ROWS_S * scale.get("unflushed_rows", 0) / 1e6, 1),
        "checkpoints": CHECKPOINTS_S.get(target, 0.0),
        "first write": FIRST_WRITE_S,
    }


def rollback_bound_s(scale: Mapping[str, Any], *, source: str, target: str, stop_deadline_s: float) -> float:
    """The longest rollback (after clients reached the target): the target restarted isolated, counted
    and flushed, then the way back, which is the migration target -> source."""
    back = write_downtime_parts(scale, source=target, target=source, stop_deadline_s=stop_deadline_s)
    loaded = int(scale.get("loaded", 0))
    return sum(back.values()) + _stop_s(target, loaded, stop_deadline_s) + RESTART_S + RESTART_PER_LOADED_S * loaded \
        + _reload_s(scale) + FLUSH_S + FLUSH_PER_COLLECTION_S * scale.get("collections", 0)


def budget_for_estimate(seconds: float) -> float:
    return float(math.ceil(BUDGET_FACTOR * seconds + BUDGET_MARGIN_S))


# Behind the firewall gate (decision 0022), measured on the sandbox 2026-12-06 (the flow of
# benchmarks/bench_vs_manual.py): FlushAll on the running source 0.5-0.7 s; a stop after it, the
# graceful part cut at STOP_GRACE_S; the drained check reads the stopped store; the restart to
# healthz, every channel's checkpoint moved by then once the dead sessions go at the first
# registration; on the target a probe insert, FlushAll and the stored rows of every collection.
STOP_GRACE_S = 0.5
STOP_AFTER_FLUSH_S = 1.0
DRAINED_S = 0.2
GATED_RESTART_S = 8.6
GATED_VERIFY_S = 0.8
GATED_VERIFY_PER_COLLECTION_S = 0.004
# At 100 loaded collections (bench_vs_manual, 2026-12-07, RocksMQ -> NATS: 33.3-35.5 s, 3 runs) the
# channel checkpoints became NATS positions one after the other after healthz, ~0.19 s a channel
# (each consumer's seek on NATS waits for the next time tick of its pchannel; docs/milvus.md); the
# restart covers the first ~10. On RocksMQ the seek reads the time ticks already stored and returns
# at once: NATS -> RocksMQ took 15.6-17.1 s at 100 (3 runs), no part of it per channel.
CHECKPOINT_PER_CHANNEL_S: dict[str, float] = {Mq.NATSMQ: 0.19, Mq.ROCKSMQ: 0.0}
CHANNELS_COVERED_BY_RESTART = 10
# The reload behind the gate, from the target's start: 26-27 s at 100 loaded collections (NATS ->
# RocksMQ, reads back 29-30 s after the cut; RocksMQ -> NATS, reads back with writes at 34 s),
# where the isolated path's fit (RELOAD_*) says 43.6 s. One size measured: a factor, not a new fit.
GATED_RELOAD_FACTOR = 0.6


def _gated_parts_before_start(scale: Mapping[str, Any]) -> dict[str, float]:
    """The parts of the gated window up to the target's start: the source flushed, stopped, drained."""
    collections = int(scale.get("collections", 0))
    return {
        "flush": round(FLUSH_S + FLUSH_PER_COLLECTION_S * collections, 1),
        "stop": STOP_AFTER_FLUSH_S,
        "drained": DRAINED_S,
    }


def _gated_parts_from_start(scale: Mapping[str, Any], target: str) -> dict[str, float]:
    """The parts of the gated window from the target's start on, while querycoord reloads."""
    loaded = int(scale.get("loaded", 0))
    collections = int(scale.get("collections", 0))
    return {
        "restart": round(GATED_RESTART_S + RESTART_PER_LOADED_S * loaded, 1),
        "checkpoints": round(CHECKPOINT_PER_CHANNEL_S.get(target, 0.0)
                             * max(collections - CHANNELS_COVERED_BY_RESTART, 0), 1),
        "verify": round(GATED_VERIFY_S + GATED_VERIFY_PER_COLLECTION_S * collections, 1),
        "first write": FIRST_WRITE_S,
    }


def gated_write_downtime_parts(scale: Mapping[str, Any], target: str) -> dict[str, float]:
    """Seconds per part of the write-downtime of a migration to `target` behind the firewall gate."""
    return {**_gated_parts_before_start(scale), **_gated_parts_from_start(scale, target)}


def gated_reload_s(scale: Mapping[str, Any]) -> float:
    return GATED_RELOAD_FACTOR * _reload_s(scale)


def gated_read_downtime_s(scale: Mapping[str, Any], target: str) -> float:
    """Behind the gate querycoord reloads from the target's start on, while verify runs: reads are
    back with writes, or when the reload ends if it outlasts the rest of the window."""
    from_start = sum(_gated_parts_from_start(scale, target).values())
    reload = gated_reload_s(scale)
    return sum(gated_write_downtime_parts(scale, target).values()) + max(reload - from_start, 0.0)


def estimate(scale: Mapping[str, Any], *, source: str, target: str, stop_deadline_s: float,
             budget_s: float | None, rollback_budget_s: float | None, gate: str = "isolation") -> Estimate:
    """The plan's estimate: the write-downtime and its parts, the read-downtime, the budget (the
    playbook's, else from the estimate) and the rollback's bound."""
    if gate == "firewall":
        parts = gated_write_downtime_parts(scale, target)
        # The way back after clients reached the target: the gate closes again, the target is
        # flushed and stopped, and the source restarts on an empty store and is verified: the
        # window of a migration the other way.
        rollback = sum(parts.values()) + sum(gated_write_downtime_parts(scale, source).values())
        read_downtime = gated_read_downtime_s(scale, target)
        reload = gated_reload_s(scale)
    else:
        parts = write_downtime_parts(scale, source=source, target=target, stop_deadline_s=stop_deadline_s)
        rollback = rollback_bound_s(scale, source=source, target=target, stop_deadline_s=stop_deadline_s)
        # The third restart's reload: after clients are back, as behind the firewall.
        reload = _reload_s(scale)
        read_downtime = sum(parts.values()) + reload
    seconds = round(sum(parts.values()), 1)
    return {
        "write_downtime_s": seconds,
        "parts": parts,
        "reload_s": round(reload, 1),
        "read_downtime_s": round(read_downtime, 1),
        "write_downtime_budget_s": budget_s if budget_s is not None else budget_for_estimate(seconds),
        "budget_from": "playbook" if budget_s is not None else "estimate",
        "rollback_budget_s": rollback_budget_s if rollback_budget_s is not None else budget_for_estimate(rollback),
        "basis": SOURCE,
    }
