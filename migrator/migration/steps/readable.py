"""readable: writes are back; wait until every loaded collection answers a search again.

After the restart querycoord loads every loaded collection again, which grows with their flushed
segments (docs/milvus.md, "At scale"). The switch needs none of it: writes reopened before. This
step measures the read-downtime, from the moment clients were cut off to the moment the last
loaded collection answered, under a bound of its own (deadlines.readable_s), outside the
write-downtime budget.
"""

from __future__ import annotations

import time

from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext
from migrator.milvus.client import CollectionFacts, Snapshot

_POLL_S = 0.5


class NotReadable(NotRolledBack):
    """Loaded collections did not answer a search within the bound."""


def wait_readable(ctx: RunContext, snapshot_step: str) -> str:
    snapshot = Snapshot.from_dict(ctx.journal.recall(snapshot_step, "snapshot"))
    loaded = [facts for facts in snapshot.collections if facts.loaded]
    bound = ctx.playbook.migration.deadlines.readable_s
    until = time.monotonic() + bound
    waiting: list[CollectionFacts] = list(loaded)
    with ctx.milvus(timeout=30.0) as milvus:
        while waiting:
            answered = milvus.in_parallel(lambda facts, _until: milvus.answers_a_search(facts.database, facts.name),
                                          waiting, deadline_s=max(until - time.monotonic(), 5.0), what="search")
            waiting = [facts for facts, ok in zip(waiting, answered, strict=True) if not ok]
            if not waiting:
                break
            if time.monotonic() > until:
                shown = ", ".join(facts.key for facts in waiting[:5]) + (" ..." if len(waiting) > 5 else "")
                raise NotReadable(f"{len(waiting)} of {len(loaded)} loaded collections did not answer a search within "
                                  f"{bound:.0f} s after writes came back: {shown}",
                                  hint="writes work; querycoord is still loading them: watch `milvus-migrate status`, "
                                       "then `apply --resume --playbook PB` waits again")
            time.sleep(_POLL_S)
    now = time.time()
    if ctx.journal.marks.all_readable_at is None:
        ctx.journal.mark("all_readable_at", now)
    off = ctx.journal.marks.clients_off_at
    read_downtime = f"; read-downtime {now - off:.1f} s" if off is not None else ""
    return f"all {len(loaded)} loaded collections answer a search{read_downtime}"
