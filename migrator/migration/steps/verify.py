"""verify: on the isolated start of the new MQ, before any client may write again.

1. The new MQ carries Milvus (for NATS: one JetStream stream per DML channel, the retention asked).
2. Every channel checkpoint of every existing collection is a position of the new MQ, written after
   this start: the datanode has consumed from the new MQ, and a later load (or the public restart)
   seeks where the new MQ really is. Until then an acknowledged write could be skipped.
3. Every collection counts exactly what the snapshot counted (no client could write in between);
   every loaded one loads again and answers a Strong count: the querynodes consume the new MQ.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from migrator.config.keys import as_float, as_int
from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext
from migrator.milvus.client import CollectionFacts, Snapshot
from migrator.mq import Mq
from migrator.util.deadline import Deadline

_VCHANNEL_COLLECTION = re.compile(r"_(?P<collection>\d+)v(?P<shard>\d+)$")
# A NATS stream sequence stays far below this; a RocksMQ id (physical ms << 18) is ~2**58.
_NATS_SEQUENCE_LIMIT = 1 << 40


class VerificationFailed(NotRolledBack):
    """A post-switch check found a difference."""


# --- counts -------------------------------------------------------------------------------


def count_mismatches(before: Iterable[CollectionFacts], after: Mapping[str, int | None]) -> list[str]:
    """Every collection of `before` whose count `after` differs (or is missing)."""
    problems = []
    for facts in before:
        rows = after.get(facts.key)
        if rows is None:
            problems.append(f"{facts.key}: {facts.rows} before, missing after")
        elif rows != facts.rows:
            problems.append(f"{facts.key}: {facts.rows} before, {rows} after")
    return problems


def compare_counts(ctx: RunContext, snapshot: Snapshot) -> dict[str, Any]:
    """Load and count every collection in parallel, all within one budget (deadlines.verify_s) for
    the whole step: the first seek of each channel on a new MQ is slow, and waits must not add up.
    A loaded collection is loaded again and answers a Strong count; one that was not loaded is not
    loaded (that would change it and cost memory): datacoord's stored rows must equal the snapshot's."""
    started = time.monotonic()
    deadline = ctx.deadlines.verify_s
    with ctx.milvus(timeout=deadline, private=True) as milvus:
        results = milvus.counts(snapshot.collections, deadline_s=deadline)
    problems = count_mismatches(snapshot.collections, {key: rows for key, (rows, _) in results.items()})
    if problems:
        raise VerificationFailed("row counts differ: " + "; ".join(problems))
    return {
        "collections": {c.key: {"rows": results[c.key][0], "loaded": c.loaded, "seconds": round(results[c.key][1], 2)}
                        for c in snapshot.collections},
        "all_answer_strong_s": round(time.monotonic() - started, 2),
    }


# --- channel checkpoints ------------------------------------------------------------------


def read_checkpoints_of(ctx: RunContext) -> list[Any]:
    """Every channel checkpoint in this Milvus's etcd (config.etcd of the playbook)."""
    from migrator.milvus.etcd import read_checkpoints

    etcd = ctx.playbook.config.etcd
    if etcd is None:
        raise VerificationFailed("no config.etcd in the playbook: the channel checkpoints cannot be read",
                                 hint="give config.etcd.endpoint (etcd's client URL); plan refuses without it")
    root = str(ctx.effective().get("etcd.rootPath").raw or etcd.root_path)
    return read_checkpoints(etcd.endpoint, root)


@dataclass(frozen=True)
class CollectionChannels:
    key: str  # database.collection
    collection_id: int
    shards: int


def checkpoint_problems(checkpoints: Iterable[Any], collections: Iterable[CollectionChannels], *, mq: str,
                        before: dict[str, tuple[int, int]]) -> list[str]:
    """What keeps the checkpoints from proving that every channel now reads the new MQ `mq`.

    A checkpoint proves it when it moved past the one recorded before the switch (`before`,
    vchannel -> (msgID, timestamp); both from Milvus's own clock, so no clock of this host is
    compared) and holds a position of `mq`: a NATS sequence (small), or a RocksMQ id unlike the
    one before. Every shard of every existing collection needs one; checkpoints of collections
    that no longer exist are ignored.
    """
    wanted = {c.collection_id: c for c in collections}
    seen: dict[int, int] = {}
    problems = []
    for checkpoint in checkpoints:
        match = _VCHANNEL_COLLECTION.search(checkpoint.vchannel)
        if match is None or int(match["collection"]) not in wanted:
            continue
        collection = wanted[int(match["collection"])]
        seen[collection.collection_id] = seen.get(collection.collection_id, 0) + 1
        old_id, old_ts = before.get(checkpoint.vchannel, (None, -1))
        if checkpoint.timestamp <= old_ts:
            problems.append(f"{checkpoint.vchannel} ({collection.key}): checkpoint not moved since the switch")
        elif mq == Mq.NATSMQ and checkpoint.msg_id >= _NATS_SEQUENCE_LIMIT:
            problems.append(f"{checkpoint.vchannel} ({collection.key}): position {checkpoint.msg_id} "
                            "is not a NATS sequence")
        elif mq == Mq.ROCKSMQ and (checkpoint.msg_id < _NATS_SEQUENCE_LIMIT or checkpoint.msg_id == old_id):
            problems.append(f"{checkpoint.vchannel} ({collection.key}): position {checkpoint.msg_id} is not one "
                            "of the new RocksMQ store")
    for collection in wanted.values():
        if seen.get(collection.collection_id, 0) < collection.shards:
            problems.append(f"{collection.key}: {seen.get(collection.collection_id, 0)} of {collection.shards} "
                            "channels have a checkpoint yet")
    return problems


def recorded_positions(ctx: RunContext, steps: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """The channel checkpoints the first of `steps` that recorded them kept: vchannel -> (msgID, ts)."""
    for step in steps:
        recorded = ctx.journal.recall(step, "checkpoints")
        if recorded is not None:
            return {vchannel: tuple(position) for vchannel, position in recorded.items()}
    return {}


def wait_for_checkpoints(ctx: RunContext, mq: str, positions_steps: tuple[str, ...],
                         collections: list[CollectionChannels] | None = None) -> str:
    """Poll etcd until every channel checkpoint moved to a position of `mq` (the datanode moves each
    at its first time tick on the new MQ), within deadlines.verify_s. `collections`: the live ones,
    when known already (behind the gate no collection can come or go); asked of Milvus otherwise."""
    if collections is None:
        with ctx.milvus(private=True) as milvus:
            collections = [CollectionChannels(key, cid, shards)
                           for key, (cid, shards) in milvus.collection_channels().items()]
    before = recorded_positions(ctx, positions_steps)
    deadline = Deadline(ctx.deadlines.verify_s)
    began = time.monotonic()
    while True:
        problems = checkpoint_problems(read_checkpoints_of(ctx), collections, mq=mq, before=before)
        if not problems:
            channels = sum(c.shards for c in collections)
            return (f"all {channels} channel checkpoints of {len(collections)} collections are {mq} positions "
                    f"({time.monotonic() - began:.1f} s)")
        if deadline.passed():
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            raise VerificationFailed(f"channel checkpoints did not move to {mq} within "
                                     f"{ctx.deadlines.verify_s:.0f} s: {shown}")
        time.sleep(0.5)


# --- NATS ---------------------------------------------------------------------------------


def check_nats(ctx: RunContext, start_step: str = "start") -> str:
    """JetStream holds one stream per channel, with the retention asked. Read over the network where
    this tool reaches Milvus's loopback (for a container, through its network namespace), else from
    the store on disk through the path map (only streams made by this start count); says which."""
    from datetime import datetime, timezone

    from migrator.milvus.nats import NatsStoreUnreadable, check_store, check_streams
    from migrator.runtime.base import ReachUnavailable

    effective = ctx.effective()
    port = ctx.journal.recall(start_step, "nats_port") or as_int(effective.get("natsmq.server.port").value)
    max_age_min = as_float(effective.get("natsmq.server.retention.maxAge").value or 4320)
    prefix = str(effective.get("msgChannel.chanNamePrefix.cluster").raw or "by-dev")
    channels = int(effective.get("rootCoord.dmlChannelNum").raw or 16)
    try:
        with ctx.runtime.reach(port) as address:
            report = check_streams(address, max_age_min * 60, prefix, dml_channel_num=channels)
        method, how = "network", (f"over the network via the {ctx.runtime.kind} container's network namespace"
                                  if ctx.runtime.kind in ("docker", "compose") else f"over the network at {address}")
    except ReachUnavailable as unreachable:
        store = ctx.playbook.host_path(str(effective.get("natsmq.server.storeDir").value))
        started_at = ctx.journal.recall(start_step, "started_at")
        try:
            report = check_store(store, max_age_min * 60, prefix, dml_channel_num=channels,
                                 created_after=datetime.fromtimestamp(started_at, timezone.utc) if started_at else None)
        except NatsStoreUnreadable as unreadable:
            raise VerificationFailed(f"NATS: cannot check JetStream either way: {unreachable.message}; "
                                     f"and from the store on disk: {unreadable.message}",
                                     hint="run as root on the container's host, or map natsmq.server.storeDir "
                                          "to the host in path_map") from None
        method, how = "disk", f"from the store on disk at {store} (the network way: {unreachable.message})"
    ctx.env.log.info("nats.checked", method=method, source=report.url, streams=len(report.streams),
                     findings=len(report.findings))
    if not report.ok:
        raise VerificationFailed("NATS: " + "; ".join(f.message for f in report.findings))
    return f"JetStream on port {port}, read {how}: {len(report.streams)} streams, max_age {max_age_min * 60:.0f} s"


# --- the step -----------------------------------------------------------------------------


def verify(ctx: RunContext, *, mq: str, step_id: str, start_step: str, positions_steps: tuple[str, ...],
           snapshot_step: str) -> str:
    snapshot = Snapshot.from_dict(ctx.journal.recall(snapshot_step, "snapshot"))
    parts = []
    if mq == Mq.NATSMQ:
        parts.append(check_nats(ctx, start_step))
    parts.append(wait_for_checkpoints(ctx, mq, positions_steps))
    counts = compare_counts(ctx, snapshot)
    started_at = ctx.journal.recall(start_step, "started_at")
    if started_at is not None:
        counts["restart_to_all_strong_s"] = round(time.time() - started_at, 2)
    ctx.journal.remember(step_id, counts=counts)
    parts.append(f"{len(snapshot.collections)} collections, counts equal; every loaded collection answers a "
                 f"Strong query {counts.get('restart_to_all_strong_s', 0):.1f} s after the start")
    return "; ".join(parts)


def verify_behind_gate(ctx: RunContext, *, mq: Mq, step_id: str, start_step: str, flush_step: str,
                       positions_steps: tuple[str, ...]) -> str:
    """The switch proven with nothing loaded (decision 0022), behind the closed firewall gate:
    1. the new MQ carries Milvus (for NATS: one JetStream stream per DML channel);
    2. every channel checkpoint is a position of the new MQ, past the one recorded before the switch
       (by the first of `positions_steps` that recorded them): the datanode consumes every channel
       there. Waited for first: a write published before a channel's consumer seeks on NATS is
       skipped (docs/milvus.md), the probe's as much as a client's (seen at 100 collections);
    3. a probe insert on the new MQ reaches a segment: FlushAll, and the probe collection's stored
       rows grew by exactly one;
    4. every other collection's stored rows (datacoord) equal those after the FlushAll on the source
       (`flush_step`): compaction was held off, nothing could write.
    """
    from concurrent.futures import ThreadPoolExecutor

    from migrator.config import FORCE_DENY
    from migrator.milvus.client import retry

    snapshot = Snapshot.from_dict(ctx.journal.recall(flush_step, "snapshot"))
    collections = [CollectionChannels(key, int(cid), int(shards))
                   for key, (cid, shards) in (ctx.journal.recall(flush_step, "collections") or {}).items()]
    # The streams are read meanwhile: NATS answers long before the proxy does.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-nats")
    streams = pool.submit(check_nats, ctx, start_step) if mq == Mq.NATSMQ else None
    pool.shutdown(wait=False)
    deadline = Deadline(ctx.deadlines.verify_s)
    consumed = wait_for_checkpoints(ctx, mq, positions_steps, collections or None)
    # Writes denied as found (forceDeny in the config): the probe would be refused, as clients are.
    probe_id = None if ctx.effective().get(FORCE_DENY).value is True else time.time_ns() // 1000
    with ctx.milvus(timeout=deadline.seconds, private=True) as milvus:
        probe_before = None
        if probe_id is not None:
            milvus.ensure_probe(deadline_s=deadline.left(), load=False)
            # Read on the new MQ, before the insert: every row of it was flushed before the switch.
            probe_before = milvus.probe_rows()
            if not retry(lambda: milvus.probe_insert(probe_id), deadline_s=deadline.left(), what="probe insert",
                         alive=milvus.alive):
                raise VerificationFailed("a probe insert was refused as denied, though writes were not denied "
                                         "when the run began")
        flushed = milvus.flush_all(deadline_s=deadline.left())
        stored = milvus.stored_counts(snapshot.collections, deadline_s=deadline.left())
        probe_after = milvus.probe_rows() if probe_id is not None else None
    parts = [streams.result()] if streams is not None else []
    problems = count_mismatches(snapshot.collections, stored)
    # A resumed verify may find the probe of its killed attempt still unflushed before its own insert.
    resumed = ctx.journal.step(step_id).attempts > 1
    if probe_after is not None and probe_before is not None and (
            probe_after < probe_before + 1 if resumed else probe_after != probe_before + 1):
        problems.append(f"the probe collection holds {probe_after} stored rows after one insert on {mq}, "
                        f"{probe_before + 1} expected: the new MQ did not carry it into a segment")
    if problems:
        raise VerificationFailed("stored rows differ from those after the FlushAll on the source: "
                                 + "; ".join(problems[:5])
                                 + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""))
    parts.append(consumed)
    ctx.journal.remember(step_id, stored=stored, probe_id=probe_id, flush_s=round(flushed.seconds, 2))
    probe = "a probe insert reached a segment" if probe_id is not None else "no probe (writes denied as found)"
    parts.append(f"{len(snapshot.collections)} collections hold the stored rows they held before the switch; "
                 f"{probe} (FlushAll {flushed.seconds:.1f} s)")
    return "; ".join(parts)
