"""flush-all: FlushAll while no client can reach Milvus, so everything acknowledged is in flushed segments.

Behind the firewall gate Milvus keeps running (flush_behind_gate); behind port isolation the source
was restarted isolated (flush_all). Clients cannot reach Milvus, so nothing they send arrives
after the FlushAll's timestamp (what the proxy had taken just before is the drained check's,
steps/drained.py). Before it, every
channel's datanode must have caught up (the replay of what the stopped process had not flushed):
until datacoord hears the replayed row counts, a FlushAll drops such a growing segment as empty,
rows and all (milvus/metrics.py). The channel checkpoints it leaves are recorded: verify proves
later that each moved to the new MQ.
"""

from __future__ import annotations

import re
import time

from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext
from migrator.migration.steps.verify import read_checkpoints_of
from migrator.milvus.client import CollectionFacts, MilvusAdapter, Snapshot
from migrator.util.deadline import Deadline

CAUGHT_UP_MS = 3000.0  # datacoord's last datanode time tick of a channel is at most this old
_VCHANNEL_COLLECTION = re.compile(r"_(?P<collection>\d+)v\d+$")


class DatanodeBehind(NotRolledBack):
    """The datanode did not catch up with its channels before the deadline."""


class FlushLostRows(NotRolledBack):
    """After FlushAll, fewer rows are stored than a Strong count saw before it."""


DATANODE_POLL_S = 0.1


def wait_for_datanode(ctx: RunContext, milvus: MilvusAdapter, deadline_s: float,
                      collections: dict[str, tuple[int, int]] | None = None) -> str:
    """Until datacoord has a recent datanode time tick for every channel of every collection."""
    from migrator.milvus.metrics import (
        MetricsUnavailable,
        datanode_lag_ms,
        read_metrics,
    )

    if collections is None:
        collections = milvus.collection_channels()
    wanted = dict(collections.values())
    deadline = Deadline(deadline_s)
    began = time.monotonic()
    while True:
        try:
            lag = datanode_lag_ms(read_metrics(ctx.runtime.metrics_url, source=ctx.exempt_source))
        except MetricsUnavailable as error:
            # A Milvus that just started, or is busy, may not answer yet: asked again until the deadline.
            if deadline.passed():
                raise DatanodeBehind("cannot read Milvus's metrics to see the datanode catch up: "
                                     f"{error.reason}") from None
            time.sleep(DATANODE_POLL_S)
            continue
        caught_up: dict[int, int] = {}
        oldest: dict[int, float] = {}  # the oldest last tick among a collection's channels (ms)
        for vchannel, milliseconds in lag.items():
            match = _VCHANNEL_COLLECTION.search(vchannel)
            if match:
                collection_id = int(match["collection"])
                oldest[collection_id] = max(oldest.get(collection_id, 0.0), milliseconds)
                if milliseconds <= CAUGHT_UP_MS:
                    caught_up[collection_id] = caught_up.get(collection_id, 0) + 1
        behind = [key for key, (collection_id, shards) in collections.items()
                  if caught_up.get(collection_id, 0) < shards]
        if not behind:
            return f"the datanode caught up with {sum(wanted.values())} channels in {time.monotonic() - began:.1f} s"
        if deadline.passed():
            seen = ", ".join(_last_tick(key, oldest.get(collections[key][0])) for key in sorted(behind)[:5])
            raise DatanodeBehind(f"the datanode did not catch up within {deadline_s:.0f} s with the channels of "
                                 f"{seen}"
                                 + (" ..." if len(behind) > 5 else ""))
        time.sleep(DATANODE_POLL_S)


def _last_tick(key: str, oldest_ms: float | None) -> str:
    if oldest_ms is None:
        return f"{key} (no time tick from its channels yet)"
    return f"{key} (a channel's last time tick {oldest_ms / 1000:.0f} s old)"


def all_stored(milvus: MilvusAdapter, snapshot: Snapshot, *, deadline_s: float) -> None:
    """Right after FlushAll every row is in a flushed segment, so datacoord's stored row count of a
    collection (rows ever inserted, deleted ones included until compaction) can never be below the
    live rows the snapshot's Strong count saw. Below means the flush dropped rows: stop here, while
    the source MQ still holds them."""
    loaded = [facts for facts in snapshot.collections if facts.loaded]
    stored = milvus.in_parallel(lambda facts, until: milvus.stored_rows(facts.database, facts.name), loaded,
                                deadline_s=deadline_s, what="stored rows")
    short = stored_short_of_counted(loaded, stored)
    if short:
        raise FlushLostRows("after FlushAll fewer rows are stored than Milvus served: " + "; ".join(short),
                            hint="the rollback restarts the source MQ as it was; see docs/troubleshooting.md")


def stored_short_of_counted(counted: list[CollectionFacts], stored: list[int]) -> list[str]:
    """Each collection whose stored rows (after FlushAll) are fewer than the live rows a Strong count
    saw before it: the flush dropped rows."""
    return [f"{facts.key}: {facts.rows} rows answered a Strong count, {rows} are stored"
            for facts, rows in zip(counted, stored, strict=True) if rows < facts.rows]


def count_not_loaded(milvus: MilvusAdapter, snapshot: Snapshot, *, deadline_s: float) -> Snapshot:
    """The snapshot with its not-loaded collections counted again, now. datacoord counts the rows of
    flushed segments: what the restarted datanode replayed into a growing segment of a collection
    nobody loaded is in no count before this FlushAll (it is in the one verify makes after it).
    Counted here, where nothing can write any more, the count is exact; loaded ones keep their
    Strong count."""
    cold = [facts for facts in snapshot.collections if not facts.loaded]
    stored = milvus.in_parallel(lambda facts, until: milvus.stored_rows(facts.database, facts.name), cold,
                                deadline_s=deadline_s, what="stored rows")
    for facts, rows in zip(cold, stored, strict=True):
        facts.rows = rows
    return snapshot


def flush_all(ctx: RunContext, step_id: str = "flush-all", snapshot_step: str = "snapshot") -> str:
    deadline = Deadline(ctx.deadlines.flush_s)
    snapshot = Snapshot.from_dict(ctx.journal.recall(snapshot_step, "snapshot"))
    with ctx.milvus(private=True) as milvus:
        caught_up = wait_for_datanode(ctx, milvus, deadline.left())
        result = milvus.flush_all(deadline_s=deadline.left())
        all_stored(milvus, snapshot, deadline_s=deadline.left())
        ctx.journal.remember(snapshot_step, snapshot=count_not_loaded(
            milvus, snapshot, deadline_s=deadline.left()).to_dict())
    checkpoints = read_checkpoints_of(ctx)
    ctx.journal.remember(step_id, flush_ts=result.flush_ts,
                         checkpoints={cp.vchannel: [cp.msg_id, cp.timestamp] for cp in checkpoints})
    return (f"{caught_up}; FlushAll complete in {result.seconds:.1f} s, every counted row stored "
            f"({len(checkpoints)} channel checkpoints past it)")


def flush_behind_gate(ctx: RunContext, step_id: str = "flush-all") -> str:
    """FlushAll on Milvus as it runs behind the closed firewall gate (decision 0022), then what the
    switch is proven against: every collection's stored rows (the snapshot, from datacoord: nothing
    is loaded for it), the channel checkpoints and the live collections."""
    deadline = Deadline(ctx.deadlines.flush_s)
    with ctx.milvus(private=True) as milvus:
        collections = milvus.collection_channels(deadline_s=deadline.left())
        caught_up = wait_for_datanode(ctx, milvus, deadline.left(), collections)
        result = milvus.flush_all(deadline_s=deadline.left())
        snapshot = milvus.stored_snapshot(deadline_s=deadline.left())
    checkpoints = read_checkpoints_of(ctx)
    ctx.journal.remember(step_id, snapshot=snapshot.to_dict(), flush_ts=result.flush_ts,
                         collections={key: list(value) for key, value in collections.items()},
                         checkpoints={cp.vchannel: [cp.msg_id, cp.timestamp] for cp in checkpoints})
    rows = sum(facts.rows for facts in snapshot.collections)
    return (f"{caught_up}; FlushAll complete in {result.seconds:.1f} s; {len(snapshot.collections)} collections "
            f"hold {rows} stored rows ({len(checkpoints)} channel checkpoints past the FlushAll)")
