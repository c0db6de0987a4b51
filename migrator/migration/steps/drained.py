"""drained: the stopped MQ's store holds no insert or delete that no segment has (migration/drained.py)."""

from __future__ import annotations

from migrator.errors import NotRolledBack
from migrator.migration.drained import StoreUnreadable, unflushed
from migrator.migration.steps.base import RunContext
from migrator.migration.stores import store_of
from migrator.milvus.etcd import ChannelCheckpoint, pchannel_of
from migrator.mq import Mq


class NotDrained(NotRolledBack):
    """The stopped MQ holds writes Milvus acknowledged that no segment holds."""


def drained(ctx: RunContext, mq: Mq, flush_step: str) -> str:
    """`flush_step` recorded the channel checkpoints after its FlushAll and the live collections."""
    recorded = ctx.journal.recall(flush_step, "checkpoints") or {}
    collections = ctx.journal.recall(flush_step, "collections") or {}
    checkpoints = [ChannelCheckpoint(vchannel, pchannel_of(vchannel), int(msg_id), int(timestamp))
                   for vchannel, (msg_id, timestamp) in recorded.items()]
    store = store_of(mq, ctx.effective(), ctx.playbook.host_path)
    try:
        found = unflushed(mq, store.paths, checkpoints, (int(cid) for cid, _shards in collections.values()))
    except StoreUnreadable as error:
        raise NotDrained(f"the {mq} store at {store.paths[0]} cannot be read to prove it is drained: {error}",
                         hint="the rollback restarts the source MQ on it as it is; see docs/troubleshooting.md"
                         ) from None
    if found:
        shown = "; ".join(item.describe() for item in found[:5]) + (" ..." if len(found) > 5 else "")
        raise NotDrained(f"the stopped {mq} store holds writes no segment has (acknowledged after the FlushAll's "
                         f"timestamp): {shown}",
                         hint="nothing is lost: the rollback restarts the source MQ on that store, which replays them")
    return f"the {mq} store holds nothing newer than its {len(checkpoints)} channel checkpoints"

