"""Config steps: bring the config files to one of the run's named states (migration/configstates.py).

The first one computes every state from the files as found (Milvus stopped), saves them and
journals them; the private client port is chosen then, once, for the whole run.
"""

from __future__ import annotations

import time
from pathlib import Path

from migrator.config import write_atomic
from migrator.migration.configstates import HELD_SOURCE, ConfigStates, free_port, states_dir
from migrator.migration.steps.base import RunContext


def ensure_states(ctx: RunContext) -> ConfigStates:
    if ctx.journal.marks.config_states is None:
        port = ctx.playbook.migration.isolation_port or free_port()
        states = ConfigStates.compute(ctx.effective(), ctx.plan.changes, port)
        recorded = states.save(states_dir(ctx.state_dir, ctx.journal.run_id))
        ctx.journal.mark("config_states", recorded)  # journaled before any file is written
        ctx.use_config_states(states)
    return ctx.config_states()


def write_state(ctx: RunContext, name: str) -> str:
    states = ensure_states(ctx)
    written = states.write(name, lambda path, text: write_atomic(Path(path), text))
    ctx.env.log.info("config.state", state=name, files=written)
    where = ", ".join(written) if written else "every file already was"
    if name.startswith("isolated"):
        return f"{name}: clients isolated (client port {states.private_port}, HTTP off) in {where}"
    return f"{name}: {where}"


# Milvus reads its config files again every 5 s (a fixed interval, docs/milvus.md): one period and a
# margin after a write, a refreshable key holds.
CONFIG_REFRESH_S = 6.0


def hold_compaction(ctx: RunContext, state: str = HELD_SOURCE) -> str:
    """Automatic compaction held off (`state`: held-source or held-target), one refresh before the
    gate closes: outside the write window."""
    summary = write_state(ctx, state)
    if not summary.endswith("every file already was"):
        time.sleep(CONFIG_REFRESH_S)
        summary += f"; waited {CONFIG_REFRESH_S:g} s for Milvus to read it again"
    return summary


def would_write(ctx: RunContext, name: str) -> str:
    return f"bring the config to {name}"
