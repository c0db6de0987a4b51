"""The write-downtime budget on plain steps (no Milvus): deadlines cut to what is left, a spent budget
fails the step and starts the rollback, the rollback runs under its own bound and says it first."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from migrator.context import Environment
from migrator.errors import NotRolledBack, RolledBack
from migrator.migration.budget import (
    Budget,
    budget_for,
    clients_cut_off_for,
    cut_off_view,
)
from migrator.migration.engine import run_rollback, run_steps
from migrator.migration.journal import Journal, JournalDocument, Marks, Phase, RunStatus
from migrator.migration.steps.base import RunContext, Step
from migrator.playbook import Deadlines

ESTIMATE = {"write_downtime_budget_s": 30.0, "rollback_budget_s": 20.0}


def context(tmp_path: Path, *, estimate: dict | None = None, stderr: io.StringIO | None = None) -> RunContext:
    journal = Journal.create(tmp_path / "journal.json", run_id="20261130T000000Z", plan={"estimate": estimate or ESTIMATE})
    env = Environment(stdout=io.StringIO(), stderr=stderr or io.StringIO(), stdin=None, log_format="json")
    return RunContext(env=env, playbook=SimpleNamespace(migration=SimpleNamespace(deadlines=Deadlines()),
                                                         runtime=SimpleNamespace(stop_timeout_s=45.0)),
                      plan=SimpleNamespace(source_mq="rocksmq", target_mq="natsmq", estimate=estimate or ESTIMATE),
                      journal=journal, runtime=SimpleNamespace(), milvus_environ={},
                      run_started_at=time.time() - 3600)  # the steps below fake instants before "now"


def cut_off(seconds_ago: float):
    """A first stop that cut clients off `seconds_ago` seconds before it returned."""
    def do(ctx: RunContext) -> str:
        ctx.journal.mark("clients_off_at", time.time() - seconds_ago)
        return "stopped"

    return do


def test_budget_arithmetic() -> None:
    budget = Budget("write-downtime", 30.0, since=1000.0)
    assert budget.left(now=1010.0) == 20.0
    assert budget.cap(300.0, now=1010.0) == 20.0  # a deadline longer than what is left is cut
    assert budget.cap(5.0, now=1010.0) == 5.0  # a shorter one is kept
    assert budget.cap(300.0, now=1040.0) == 0.0  # never below zero
    assert budget.until() == 1030.0


def test_no_budget_before_the_first_stop_and_after_clients_are_back() -> None:
    assert budget_for(Phase.APPLY, Marks(), ESTIMATE, run_started_at=0.0) is None
    assert budget_for(Phase.APPLY, Marks(clients_off_at=100.0), {}, run_started_at=0.0) is None  # an old plan
    during = budget_for(Phase.APPLY, Marks(clients_off_at=100.0), ESTIMATE, run_started_at=50.0)
    assert during == Budget("write-downtime", 30.0, 100.0)
    assert budget_for(Phase.APPLY, Marks(clients_off_at=100.0, clients_back_at=120.0), ESTIMATE,
                      run_started_at=50.0) is None


def test_a_resumed_run_counts_from_its_resumption() -> None:
    assert budget_for(Phase.APPLY, Marks(clients_off_at=100.0), ESTIMATE, run_started_at=500.0).since == 500.0


def test_the_rollback_counts_from_its_own_start() -> None:
    marks = Marks(clients_off_at=100.0, rollback_started_at=160.0)
    assert budget_for(Phase.ROLLBACK, marks, ESTIMATE, run_started_at=50.0) == Budget("rollback", 20.0, 160.0)


def test_steps_after_the_first_stop_get_deadlines_cut_to_what_is_left(tmp_path: Path) -> None:
    seen: dict[str, float] = {}

    def record(ctx: RunContext) -> str:
        seen["verify_s"] = ctx.deadlines.verify_s
        seen["stop"] = ctx.cap(ctx.playbook.runtime.stop_timeout_s)
        return "ok"

    before: dict[str, float] = {}
    ctx = context(tmp_path)
    run_steps(ctx, [Step("preflight", "", lambda c: before.setdefault("verify_s", c.deadlines.verify_s) and "ok",
                         side_effects=False),
                    Step("stop", "", cut_off(10.0)), Step("verify", "", record)],
              rollback=lambda c: [])
    assert before["verify_s"] == 300.0  # before the first stop: the playbook's deadline
    assert 19.0 < seen["verify_s"] <= 20.0  # 30 s budget, 10 s spent
    assert 19.0 < seen["stop"] <= 20.0


def test_a_spent_budget_fails_the_next_step_and_the_rollback_runs(tmp_path: Path) -> None:
    calls: list[str] = []
    stderr = io.StringIO()
    ctx = context(tmp_path, stderr=stderr)

    def step(name: str):
        return Step(name, "", lambda c: calls.append(name) or "ok")

    def rollback(c: RunContext) -> list[Step]:
        return [step("rollback-restart"), step("rollback-check-writes")]

    with pytest.raises(RolledBack, match="the write-downtime budget of 30 s is spent before flush-all") as error:
        run_steps(ctx, [Step("stop", "", cut_off(31.0)), step("flush-all"), step("verify")], rollback=rollback)
    assert error.value.exit_code == 1
    assert calls == ["rollback-restart", "rollback-check-writes"]  # flush-all never ran
    journal = Journal.load(tmp_path / "journal.json")
    assert journal.status == RunStatus.ROLLED_BACK and journal.steps["flush-all"].state == "failed"
    events = [json.loads(line) for line in stderr.getvalue().splitlines() if line.startswith("{")]
    start = next(e for e in events if e["event"] == "rollback.start")
    assert start["bound_s"] == 20.0 and start["ends_by"]  # said before its first step
    assert [e["event"] for e in events].index("rollback.start") < \
        [e.get("step") for e in events].index("rollback-restart")


def test_a_step_that_ran_out_of_budget_says_so(tmp_path: Path) -> None:
    def slow(ctx: RunContext) -> str:
        ctx.budget = Budget("write-downtime", 30.0, time.time() - 40.0)  # it ran out during the step
        raise NotRolledBack("FlushAll not complete within 12 s")

    ctx = context(tmp_path)
    with pytest.raises(RolledBack, match=r"within 12 s \(the write-downtime budget of 30 s is spent\)"):
        run_steps(ctx, [Step("stop", "", cut_off(1.0)), Step("flush-all", "", slow)], rollback=lambda c: [])


def test_the_rollback_gives_up_when_its_bound_is_spent(tmp_path: Path) -> None:
    calls: list[str] = []
    ctx = context(tmp_path)

    def slow_stop(c: RunContext) -> str:
        c.journal.mark("rollback_started_at", time.time() - 25.0)  # as if it had taken 25 s
        calls.append("rollback-stop")
        return "stopped"

    steps = [Step("rollback-stop", "", slow_stop), Step("rollback-start", "", lambda c: calls.append("start") or "ok")]
    with pytest.raises(NotRolledBack, match="rollback budget of 20 s is spent before rollback-start"):
        run_rollback(ctx, steps)
    assert calls == ["rollback-stop"]


def test_a_dry_run_has_no_budget(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    def record(c: RunContext) -> str:
        seen.update(budget=c.budget, verify_s=c.deadlines.verify_s, stop_s=c.cap(45.0))
        return "ok"

    ctx = context(tmp_path)
    ctx.dry_run = True
    # 100 s since clients were cut off, with a 30 s budget: a real run would refuse to start verify.
    run_steps(ctx, [Step("stop", "", cut_off(100.0), side_effects=False),
                    Step("verify", "", record, side_effects=False)],
              rollback=lambda c: [])
    assert seen == {"budget": None, "verify_s": 300.0, "stop_s": 45.0}  # the playbook's deadlines, uncut
    assert Journal.load(tmp_path / "journal.json").status == "done"


def _journal(status: str, phase: str, **marks: float) -> Journal:
    return Journal(Path("journal.json"), JournalDocument(schema_version=1, run_id="20261130T000000Z", status=status,
                                                         phase=phase, started_at="t", plan={}, marks=Marks(**marks)))


def test_status_view_of_the_time_clients_are_cut_off() -> None:
    now = 1000.0
    running = _journal("running", "apply", clients_off_at=960.0)
    assert cut_off_view(running, ESTIMATE, now) == {"write_downtime_budget_s": 30.0, "rollback_budget_s": 20.0,
                                                    "clients_cut_off_s": 40.0, "budget_left_s": 0.0}
    rolling = _journal("rolling-back", "rollback", clients_off_at=900.0, rollback_started_at=990.0)
    view = cut_off_view(rolling, ESTIMATE, now)
    assert view["clients_cut_off_s"] == 100.0 and view["rollback_left_s"] == 10.0 and view["rollback_ends_by"]
    # Clients had come back to the target; the rollback cut them off again.
    again = _journal("rolling-back", "rollback", clients_off_at=900.0, clients_back_at=950.0, rollback_started_at=995.0)
    assert cut_off_view(again, ESTIMATE, now)["clients_cut_off_s"] == 5.0
    done = _journal("done", "apply", clients_off_at=900.0, clients_back_at=935.5)
    assert cut_off_view(done, ESTIMATE, now)["write_downtime_s"] == 35.5
    assert clients_cut_off_for(done.marks, now) is None


# --- the plan's estimate ------------------------------------------------------------------------


def scale(loaded: int, *, segments: int | None = None, rows: int = 0, unflushed: int = 0) -> dict:
    return {"collections": loaded, "loaded": loaded, "partitions": loaded,
            "loaded_segments": loaded if segments is None else segments, "rows": rows, "unflushed_rows": unflushed}


def estimate_of(found: dict, **options) -> dict:
    from migrator.migration.costs import estimate

    arguments = {"source": "rocksmq", "target": "natsmq", "stop_deadline_s": 2.0, "budget_s": None,
                 "rollback_budget_s": None} | options
    return estimate(found, **arguments)


def test_the_estimate_grows_with_what_the_plan_finds() -> None:
    small, big = estimate_of(scale(5))["write_downtime_s"], estimate_of(scale(200))["write_downtime_s"]
    assert big > small
    more_segments = estimate_of(scale(5, segments=500))["write_downtime_s"]
    assert more_segments > small  # 16 partitions each: a flushed segment per partition to reload
    assert estimate_of(scale(5, rows=1_000_000))["write_downtime_s"] > small
    assert estimate_of(scale(5, unflushed=1_000_000))["write_downtime_s"] > small
    # Three restarts whatever the size; a RocksMQ stop with loaded collections lasts its deadline.
    parts = estimate_of(scale(0))["parts"]
    assert parts["restarts"] > 0 and parts["stops"] < estimate_of(scale(5))["parts"]["stops"]
    assert estimate_of(scale(5), stop_deadline_s=30.0)["parts"]["stops"] > 60


def test_the_budget_is_the_playbooks_or_room_above_the_estimate() -> None:
    from migrator.migration.costs import budget_for_estimate

    derived = estimate_of(scale(50))
    assert derived["budget_from"] == "estimate"
    assert derived["write_downtime_budget_s"] == budget_for_estimate(derived["write_downtime_s"])
    assert derived["write_downtime_budget_s"] > derived["write_downtime_s"]
    assert derived["rollback_budget_s"] > derived["write_downtime_budget_s"]  # the longest rollback does more
    given = estimate_of(scale(50), budget_s=45.0, rollback_budget_s=90.0)
    assert (given["write_downtime_budget_s"], given["rollback_budget_s"], given["budget_from"]) == (45.0, 90.0, "playbook")


def test_apply_stops_before_the_first_stop_when_the_estimate_exceeds_the_budget(tmp_path: Path) -> None:
    from migrator.migration.preflight import budget_findings
    from migrator.migration.steps.preflight import preflight_step

    estimate = {"write_downtime_s": 80.0, "write_downtime_budget_s": 60.0, "rollback_budget_s": 200.0}
    assert [f.key for f in budget_findings(estimate, 300.0)] == ["migration.write_downtime_budget_s"]
    assert budget_findings({**estimate, "write_downtime_budget_s": 90.0}, 300.0) == []
    # A reload estimated near the snapshot's and verify's deadline: raise it before the window.
    assert [f.key for f in budget_findings({**estimate, "write_downtime_budget_s": 90.0, "reload_s": 200.0}, 300.0)] \
        == ["migration.deadlines.verify_s"]
    calls: list[str] = []
    ctx = context(tmp_path, estimate=estimate)
    with pytest.raises(RolledBack, match="exceeds the budget of 60 s; nothing had been changed") as error:
        run_steps(ctx, [Step("preflight", "", preflight_step, side_effects=False),
                        Step("stop", "", lambda c: calls.append("stop") or "stopped")], rollback=lambda c: [])
    assert error.value.exit_code == 1 and calls == []


def test_the_plan_shows_the_estimate_its_parts_the_budget_and_the_rollback_bound() -> None:
    from migrator.cli.render import _estimate_lines, render_status

    lines = _estimate_lines(estimate_of(scale(50), budget_s=200.0))
    assert lines[0].startswith("write-downtime estimate: ") and "restarts" in lines[0] and "reloads" in lines[0]
    assert "write-downtime budget: 200 s (from the playbook); a rollback is bounded by" in lines[1]
    shown = render_status({"status": "running", "clients_cut_off_s": 42.0, "write_downtime_budget_s": 120.0,
                           "budget_left_s": 78.0})
    assert "clients cut off for: 42 s of a 120 s budget (78 s left)" in shown
    shown = render_status({"status": "rolling-back", "clients_cut_off_s": 130.0, "rollback_ends_by": "T",
                           "rollback_left_s": 50.0})
    assert "clients cut off for: 130 s (the rollback gives up by T, 50 s from now, at the latest)" in shown
