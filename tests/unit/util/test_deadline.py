"""One bound for every wait of a step (util/deadline.py), and check-writes keeping to it: when
Milvus stops answering a Strong query (2.3.2's time ticks stopped once, docs/compatibility.md), the
step fails within its deadline instead of after every wait's own (a stand-in waits as long as it
is let; no Milvus here)."""

from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace

import pytest

from migrator.errors import NotRolledBack
from migrator.migration.steps import check_writes
from migrator.util.deadline import Deadline


def test_the_waits_share_what_is_left_and_a_last_call_still_gets_the_floor() -> None:
    deadline = Deadline(0.3, floor_s=0.05)
    assert 0.25 < deadline.left() <= 0.3 and not deadline.passed()
    time.sleep(0.32)
    assert deadline.passed() and deadline.left() == 0.05


class HungReads:
    """Writes are acknowledged; loading and Strong queries take as long as they are allowed."""

    def probe_insert(self, probe_id: int) -> bool:
        return True

    def ensure_probe(self, *, deadline_s: float, load: bool = True) -> None:
        if load:
            time.sleep(deadline_s)

    def probe_visible(self, probe_id: int, *, deadline_s: float) -> bool:
        time.sleep(deadline_s)
        return False


def test_check_writes_fails_within_one_deadline_for_the_read_when_reads_hang() -> None:
    marks = SimpleNamespace(clients_back_at=None)
    ctx = SimpleNamespace(
        effective=lambda: SimpleNamespace(get=lambda key: SimpleNamespace(value=False)),
        milvus=lambda: contextlib.nullcontext(HungReads()),
        deadlines=SimpleNamespace(verify_s=2.0),
        journal=SimpleNamespace(marks=marks, mark=lambda name, at: setattr(marks, name, at)),
        budget=object(),
    )
    started = time.monotonic()
    with pytest.raises(NotRolledBack, match="Strong query does not see it"):
        check_writes.check_writes(ctx, "check-writes")  # type: ignore[arg-type]
    # Loading the probe took the whole 2 s; the query got the 1 s floor, not 2 s of its own.
    assert time.monotonic() - started < 3.6
    assert marks.clients_back_at is not None and ctx.budget is None
