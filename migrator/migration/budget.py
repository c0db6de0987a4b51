"""The write-downtime budget: one figure bounds how long a run keeps clients cut off (decision 0016).

From the first stop (the journal's `clients_off_at` mark) every step gets at most what is left of
the plan's `write_downtime_budget_s`: each of its deadlines is cut to it, and a step that would start
with nothing left fails at once, which starts the rollback. The rollback has a bound of its own
(`rollback_budget_s`), counted from its start, and says up front when it gives up at the latest.
A resumed run counts from its resumption: how long to keep clients away is the operator's call again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from migrator.errors import NotRolledBack
from migrator.migration.journal import Journal, Marks, Phase, RunStatus

WRITE_DOWNTIME = "write-downtime"
ROLLBACK = "rollback"


class BudgetSpent(NotRolledBack):
    """Nothing is left of the budget for the next step."""


@dataclass(frozen=True)
class Budget:
    what: str  # WRITE_DOWNTIME or ROLLBACK
    seconds: float
    since: float  # unix time the budget started counting

    def left(self, now: float | None = None) -> float:
        return self.seconds - ((time.time() if now is None else now) - self.since)

    def cap(self, seconds: float, now: float | None = None) -> float:
        """`seconds`, or what is left of the budget when that is less (never below zero)."""
        return max(min(seconds, self.left(now)), 0.0)

    def until(self) -> float:
        """The unix time the budget runs out."""
        return self.since + self.seconds

    def check(self, step_id: str, now: float | None = None) -> None:
        """Refuse to start a step with nothing left of the budget."""
        if self.left(now) <= 0:
            raise BudgetSpent(f"the {self.what} budget of {self.seconds:.0f} s is spent before {step_id}",
                              hint="raise migration.write_downtime_budget_s (or rollback_budget_s) in the playbook "
                              "if the deployment needs longer; the plan's estimate says how long it should take")


class CappedDeadlines:
    """The playbook's deadlines (playbook.Deadlines), each cut to what is left of a budget."""

    def __init__(self, deadlines: Any, budget: Budget) -> None:
        self._deadlines, self._budget = deadlines, budget

    def __getattr__(self, name: str) -> float:
        return self._budget.cap(getattr(self._deadlines, name))


def budget_for(phase: Phase, marks: Marks, estimate: Mapping[str, Any], run_started_at: float) -> Budget | None:
    """The budget a step of `phase` runs under, or None (before the first stop, or a plan made
    before budgets existed)."""
    if phase == Phase.ROLLBACK:
        seconds, started_at = estimate.get("rollback_budget_s"), marks.rollback_started_at
        if seconds is None or started_at is None:
            return None
        return Budget(ROLLBACK, float(seconds), float(started_at))
    seconds, cut_off_at = estimate.get("write_downtime_budget_s"), marks.clients_off_at
    if seconds is None or cut_off_at is None or clients_cut_off_for(marks) is None:
        return None
    return Budget(WRITE_DOWNTIME, float(seconds), max(float(cut_off_at), run_started_at))


def clients_cut_off_for(marks: Marks, now: float | None = None) -> float | None:
    """Seconds since the run cut clients off, while they still are (journal marks `clients_off_at` and
    `clients_back_at`, unix times); None when they are not cut off."""
    off, back = marks.clients_off_at, marks.clients_back_at
    if off is None or (back is not None and back >= off):
        return None
    return max((time.time() if now is None else now) - off, 0.0)


def cut_off_view(journal: Journal, estimate: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """What a journal says about clients being cut off: for how long so far, the budget (from the
    plan's `estimate`) and what is left of it, the rollback's bound; for a run that ended, the
    write-downtime."""
    now = time.time() if now is None else now
    marks = journal.marks
    view: dict[str, Any] = {"write_downtime_budget_s": estimate.get("write_downtime_budget_s"),
                            "rollback_budget_s": estimate.get("rollback_budget_s")}
    off, back = marks.clients_off_at, marks.clients_back_at
    rollback_at = marks.rollback_started_at if journal.phase == Phase.ROLLBACK else None
    if rollback_at is not None and back is not None and back >= (off or 0) and journal.status != RunStatus.ROLLED_BACK:
        # Clients had come back, and the rollback's first step cuts them off again.
        view["clients_cut_off_s"] = round(max(now - rollback_at, 0.0), 1)
    elif (seconds := clients_cut_off_for(marks, now)) is not None:
        view["clients_cut_off_s"] = round(seconds, 1)
    elif off is not None and back is not None:
        view["write_downtime_s"] = round(back - off, 1)
    if rollback_at is not None and view["rollback_budget_s"] is not None:
        bound = Budget(ROLLBACK, float(view["rollback_budget_s"]), float(rollback_at))
        view["rollback_ends_by"] = _iso(bound.until())
        view["rollback_left_s"] = round(max(bound.left(now), 0.0), 1)
    elif "clients_cut_off_s" in view and view["write_downtime_budget_s"] is not None:
        view["budget_left_s"] = round(max(float(view["write_downtime_budget_s"]) - view["clients_cut_off_s"], 0.0), 1)
    return view


def _iso(unix: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(unix, timezone.utc).isoformat(timespec="seconds")
