"""verify: the new MQ really carries Milvus, every loaded collection loads again, no row is lost."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext
from migrator.migration.steps.deny_writes import wait_for_write_state
from migrator.milvus.client import CollectionFacts, Snapshot


class VerificationFailed(NotRolledBack):
    """A post-switch check found a difference."""


def _count(ctx: RunContext, facts: CollectionFacts, deadline_s: float) -> tuple[CollectionFacts, int, float]:
    started = time.monotonic()
    with ctx.milvus(timeout=deadline_s) as milvus:
        if facts.loaded:
            milvus.load(facts.database, facts.name, deadline_s=deadline_s)
        rows = milvus.count(facts.database, facts.name, loaded=facts.loaded, deadline_s=deadline_s)
    return facts, rows, time.monotonic() - started


def compare_counts(ctx: RunContext, snapshot: Snapshot) -> dict[str, Any]:
    """Load and count every collection, in parallel: the first seek of each channel on a new MQ
    is slow, and sequential loads would add those waits up inside the write-downtime."""
    deadline = ctx.deadlines.verify_s
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: _count(ctx, c, deadline), snapshot.collections))
    mismatches = [f"{c.key}: {c.rows} before, {rows} after" for c, rows, _ in results if rows != c.rows]
    if mismatches:
        raise VerificationFailed("row counts differ: " + "; ".join(mismatches))
    return {
        "collections": {c.key: {"rows": rows, "loaded": c.loaded, "seconds": round(s, 2)} for c, rows, s in results},
        "all_answer_strong_s": round(time.monotonic() - started, 2),
    }


def check_nats(ctx: RunContext, start_step: str = "start") -> str:
    """JetStream holds one stream per channel, with the retention asked. Read over the network where
    this tool reaches Milvus's loopback (for a container, through its network namespace), else from
    the store on disk through the path map (only streams made by this start count); says which."""
    from datetime import datetime, timezone

    from migrator.milvus.nats import NatsStoreUnreadable, check_store, check_streams
    from migrator.runtime.base import ReachUnavailable

    effective = ctx.effective()
    port = ctx.journal.recall(start_step, "nats_port") or int(effective.get("natsmq.server.port").value)
    max_age_min = float(effective.get("natsmq.server.retention.maxAge").value or 4320)
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


def reprove_deny(ctx: RunContext) -> None:
    """After a restart with forceDeny already true, inserts pass for a few seconds (until the quota
    center's first cycle): prove the deny again before counting, or a stray write could hide a
    lost row, and a later 'accepted' probe could be that window rather than the allow."""
    with ctx.milvus() as milvus:
        milvus.ensure_probe()
        wait_for_write_state(ctx, milvus, denied=True, deadline_s=ctx.deadlines.deny_s * 2)


def verify(ctx: RunContext) -> str:
    snapshot = Snapshot.from_dict(ctx.journal.recall("snapshot", "snapshot"))
    reprove_deny(ctx)
    parts = []
    if ctx.plan.target_mq == "natsmq":
        parts.append(check_nats(ctx))
    counts = compare_counts(ctx, snapshot)
    started_at = ctx.journal.recall("start", "started_at")
    if started_at is not None:
        counts["restart_to_all_strong_s"] = round(time.time() - started_at, 2)
    ctx.journal.remember("verify", counts=counts)
    parts.append(f"{len(snapshot.collections)} collections, counts equal; every loaded collection answers a "
                 f"Strong query {counts.get('restart_to_all_strong_s', 0):.1f} s after the restart")
    return "; ".join(parts)
