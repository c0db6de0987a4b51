"""flush-all: FlushAll on an isolated start, so everything acknowledged is in flushed segments.

Clients cannot reach Milvus, so nothing arrives after the FlushAll's timestamp. Before it, every
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
from migrator.milvus.client import Snapshot

CAUGHT_UP_MS = 3000.0  # datacoord's last datanode time tick of a channel is at most this old
_VCHANNEL_COLLECTION = re.compile(r"_(?P<collection>\d+)v\d+$")


class DatanodeBehind(NotRolledBack):
    """The datanode did not catch up with its channels before the deadline."""


class FlushLostRows(NotRolledBack):
    """After FlushAll, fewer rows are stored than a Strong count saw before it."""


def wait_for_datanode(ctx: RunContext, milvus, deadline_s: float) -> str:  # noqa: ANN001 - MilvusAdapter
    """Until datacoord has a recent datanode time tick for every channel of every collection."""
    from migrator.milvus.metrics import (
        MetricsUnavailable,
        datanode_lag_ms,
        read_metrics,
    )

    collections = milvus.collection_channels()
    wanted = {collection_id: shards for collection_id, shards in collections.values()}
    until = time.monotonic() + deadline_s
    began = time.monotonic()
    while True:
        try:
            lag = datanode_lag_ms(read_metrics(ctx.runtime.metrics_url))
        except MetricsUnavailable as error:
            raise DatanodeBehind(f"cannot read Milvus's metrics to see the datanode catch up: {error.reason}") from None
        caught_up: dict[int, int] = {}
        oldest: dict[int, float] = {}  # the oldest last tick among a collection's channels (ms)
        for vchannel, milliseconds in lag.items():
            match = _VCHANNEL_COLLECTION.search(vchannel)
            if match:
                collection_id = int(match["collection"])
                oldest[collection_id] = max(oldest.get(collection_id, 0.0), milliseconds)
                if milliseconds <= CAUGHT_UP_MS:
                    caught_up[collection_id] = caught_up.get(collection_id, 0) + 1
        behind = [key for key, (collection_id, shards) in collections.items() if caught_up.get(collection_id, 0) < shards]
        if not behind:
            return f"the datanode caught up with {sum(wanted.values())} channels in {time.monotonic() - began:.1f} s"
        if time.monotonic() > until:
            def seen(key: str) -> str:
                collection_id = collections[key][0]
                if collection_id not in oldest:
                    return f"{key} (no time tick from its channels yet)"
                return f"{key} (a channel's last time tick {oldest[collection_id] / 1000:.0f} s old)"
            raise DatanodeBehind(f"the datanode did not catch up within {deadline_s:.0f} s with the channels of "
                                 f"{', '.join(seen(key) for key in sorted(behind)[:5])}"
                                 + (" ..." if len(behind) > 5 else ""))
        time.sleep(0.5)


def all_stored(milvus, snapshot: Snapshot, *, deadline_s: float) -> None:  # noqa: ANN001 - MilvusAdapter
    """Right after FlushAll every row is in a flushed segment, so datacoord's stored row count of a
    collection (rows ever inserted, deleted ones included until compaction) can never be below the
    live rows the snapshot's Strong count saw. Below means the flush dropped rows: stop here, while
    the source MQ still holds them."""
    loaded = [facts for facts in snapshot.collections if facts.loaded]
    stored = milvus.in_parallel(lambda facts, until: milvus.stored_rows(facts.database, facts.name), loaded,
                                deadline_s=deadline_s, what="stored rows")
    short = [f"{facts.key}: {facts.rows} rows answered a Strong count, {rows} are stored"
             for facts, rows in zip(loaded, stored) if rows < facts.rows]
    if short:
        raise FlushLostRows("after FlushAll fewer rows are stored than Milvus served: " + "; ".join(short),
                            hint="the rollback restarts the source MQ as it was; see docs/troubleshooting.md")


def count_not_loaded(milvus, snapshot: Snapshot, *, deadline_s: float) -> Snapshot:  # noqa: ANN001
    """The snapshot with its not-loaded collections counted again, now. datacoord counts the rows of
    flushed segments: what the restarted datanode replayed into a growing segment of a collection
    nobody loaded is in no count before this FlushAll (it is in the one verify makes after it).
    Counted here, where nothing can write any more, the count is exact; loaded ones keep their
    Strong count."""
    cold = [facts for facts in snapshot.collections if not facts.loaded]
    stored = milvus.in_parallel(lambda facts, until: milvus.stored_rows(facts.database, facts.name), cold,
                                deadline_s=deadline_s, what="stored rows")
    for facts, rows in zip(cold, stored):
        facts.rows = rows
    return snapshot


def flush_all(ctx: RunContext, step_id: str = "flush-all", snapshot_step: str = "snapshot") -> str:
    until = time.monotonic() + ctx.deadlines.flush_s
    snapshot = Snapshot.from_dict(ctx.journal.recall(snapshot_step, "snapshot"))
    with ctx.milvus(isolated=True) as milvus:
        caught_up = wait_for_datanode(ctx, milvus, ctx.deadlines.flush_s)
        result = milvus.flush_all(deadline_s=max(until - time.monotonic(), 1.0))
        all_stored(milvus, snapshot, deadline_s=max(until - time.monotonic(), 1.0))
        ctx.journal.remember(snapshot_step, snapshot=count_not_loaded(
            milvus, snapshot, deadline_s=max(until - time.monotonic(), 1.0)).to_dict())
    checkpoints = read_checkpoints_of(ctx)
    ctx.journal.remember(step_id, flush_ts=result.flush_ts,
                         checkpoints={cp.vchannel: [cp.msg_id, cp.timestamp] for cp in checkpoints})
    return (f"{caught_up}; FlushAll complete in {result.seconds:.1f} s, every counted row stored "
            f"({len(checkpoints)} channel checkpoints past it)")
