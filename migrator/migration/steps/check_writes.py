"""check-writes: clients are back. A probe insert through the public client port is acknowledged and
a Strong query sees it: the MQ carries writes end to end."""

from __future__ import annotations

import time

from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext
from migrator.migration.writes import wait_for_write_state
from migrator.util.deadline import Deadline


def check_writes(ctx: RunContext, step_id: str) -> str:
    from migrator.config import FORCE_DENY

    if ctx.effective().get(FORCE_DENY).value is True:
        ctx.journal.mark("clients_back_at", time.time())
        return "writes stay denied, as they were found (forceDeny is true); clients can read again"
    with ctx.milvus() as milvus:
        # The insert first: loading the probe waits behind querycoord's reload of every loaded
        # collection, and clients' writes do not (docs/milvus.md, "At scale").
        acknowledged = Deadline(ctx.deadlines.verify_s)
        milvus.ensure_probe(deadline_s=acknowledged.left(), load=False)
        seconds, probe_id = wait_for_write_state(milvus, denied=False, deadline_s=acknowledged.left())
        if ctx.journal.marks.clients_back_at is None:
            ctx.journal.mark("clients_back_at", time.time())
        ctx.budget = None  # clients are back: what remains is no write-downtime
        # Loading the probe and reading it share one bound: Milvus 2.3.2 once stopped its time
        # ticks here (docs/compatibility.md), and each wait on its own would have added up.
        seen = Deadline(ctx.deadlines.verify_s)
        milvus.ensure_probe(deadline_s=seen.left())
        if not milvus.probe_visible(probe_id, deadline_s=seen.left()):
            raise NotRolledBack(f"probe {probe_id} was acknowledged but a Strong query does not see it")
        milvus.drop_probe()
    return f"writes work again: a probe insert was acknowledged after {seconds:.1f} s and a Strong query sees it"
