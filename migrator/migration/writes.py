"""forceDeny: deny or allow writes in the winning config layer, each proved by a probe insert.

The migration itself does not rely on forceDeny (Milvus 2.3.5's HTTP API ignores it, and a
restarted Milvus accepts writes before its quota center applies it: docs/decisions/0008); it
serves `writes deny|allow` and the verify command's probe.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from migrator.config import FORCE_DENY, plan_edit, write_atomic
from migrator.errors import NotRolledBack

_probe_ids = itertools.count(int(time.time() * 1000))


class WritesNotControlled(NotRolledBack):
    """forceDeny was written but Milvus did not follow it before the deadline."""


def next_probe_id() -> int:
    return next(_probe_ids)


def set_force_deny(ctx: Any, value: bool) -> bool:
    """Write forceDeny=value where it wins; True when the file changed."""
    edit = plan_edit(ctx.effective(), {FORCE_DENY: value})
    edit.raise_if_refused()
    if edit.changed:
        write_atomic(edit.target, edit.text)
    ctx.env.log.info("config.force_deny", value=value, file=str(edit.target), changed=edit.changed)
    return edit.changed


def wait_for_write_state(milvus: Any, *, denied: bool, deadline_s: float, pause_s: float = 0.5) -> tuple[float, int]:
    """Insert probes until Milvus rejects (denied=True) or accepts one; (seconds, last probe id)."""
    started = time.monotonic()
    while True:
        probe_id = next_probe_id()
        accepted = milvus.probe_insert(probe_id)
        if accepted != denied:
            return time.monotonic() - started, probe_id
        if time.monotonic() - started > deadline_s:
            state = "still accepted" if denied else "still rejected"
            raise WritesNotControlled(f"probe inserts were {state} after {deadline_s:.0f} s "
                                      f"(forceDeny={str(denied).lower()} expected)")
        time.sleep(pause_s)
