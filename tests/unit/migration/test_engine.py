"""The engine's loop on plain steps (no Milvus): journal after each step, interrupts, resume, dry-run gate."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from migrator.errors import Interrupted, NotRolledBack, RolledBack
from migrator.migration.engine import run_steps
from migrator.migration.journal import Journal, RunStatus
from migrator.migration.steps.base import RunContext, Step
from tests.support.sandbox import quiet_env


def context(tmp_path: Path, *, dry_run: bool = False) -> RunContext:
    journal = Journal.create(tmp_path / "journal.json", run_id="20261130T000000Z", plan={}, dry_run=dry_run)
    return RunContext(env=quiet_env(), playbook=SimpleNamespace(), plan=SimpleNamespace(source_mq="rocksmq", target_mq="natsmq"), journal=journal,
                      runtime=SimpleNamespace(), milvus_environ={}, dry_run=dry_run)


def no_rollback_steps(ctx: RunContext) -> list[Step]:
    return []


def recorder(calls: list[str], name: str, fail: BaseException | None = None):
    def do(ctx: RunContext) -> str:
        calls.append(name)
        if fail is not None:
            raise fail
        return f"{name} ok"

    return do


def test_steps_run_in_order_and_are_journaled(tmp_path: Path) -> None:
    calls: list[str] = []
    ctx = context(tmp_path)
    run_steps(ctx, rollback=no_rollback_steps, steps=[Step(n, n, recorder(calls, n)) for n in ("preflight", "snapshot")])
    assert calls == ["preflight", "snapshot"]
    journal = Journal.load(tmp_path / "journal.json")
    assert journal.status == RunStatus.DONE and journal.phase == "apply"
    assert journal.steps["snapshot"].summary == "snapshot ok"


def test_interrupt_saves_the_journal_and_resume_skips_done_steps(tmp_path: Path) -> None:
    calls: list[str] = []
    ctx = context(tmp_path)
    steps = [Step("preflight", "", recorder(calls, "preflight")),
             Step("flush-all", "", recorder(calls, "flush-all", KeyboardInterrupt()))]
    with pytest.raises(Interrupted):
        run_steps(ctx, rollback=no_rollback_steps, steps=steps)
    journal = Journal.load(tmp_path / "journal.json")
    assert journal.status == RunStatus.INTERRUPTED and journal.steps["flush-all"].state == "interrupted"

    resumed = context(tmp_path)
    resumed.journal = journal
    run_steps(resumed, rollback=no_rollback_steps, steps=[steps[0], Step("flush-all", "", recorder(calls, "flush-all"))])
    assert calls == ["preflight", "flush-all", "flush-all"]  # preflight not run twice
    assert Journal.load(tmp_path / "journal.json").status == RunStatus.DONE


def test_failure_before_any_change_is_reported_as_nothing_changed(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with pytest.raises(RolledBack, match="nothing had been changed"):
        run_steps(ctx, rollback=no_rollback_steps, steps=[Step("preflight", "", recorder([], "preflight", NotRolledBack("Milvus says no")), side_effects=False)])
    assert Journal.load(tmp_path / "journal.json").status == RunStatus.ROLLED_BACK


def test_preflight_refusal_at_apply_time_exits_3(tmp_path: Path) -> None:
    from migrator.errors import Refused

    ctx = context(tmp_path)
    with pytest.raises(Refused, match="nothing was changed"):
        run_steps(ctx, rollback=no_rollback_steps, steps=[Step("preflight", "", recorder([], "preflight", Refused("configured for kafka")), side_effects=False)])


def test_no_rollback_leaves_it_for_the_operator(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    steps = [Step("deny-writes", "", recorder([], "deny-writes")),
             Step("flush-all", "", recorder([], "flush-all", RuntimeError("boom")))]
    with pytest.raises(NotRolledBack, match="left as is") as error:
        run_steps(ctx, rollback=no_rollback_steps, steps=steps, rollback_on_failure=False)
    assert "RuntimeError: boom" in error.value.message
    assert error.value.exit_code == 4


def test_dry_run_gate_closes_before_side_effects(tmp_path: Path) -> None:
    from tests.support.dryrun import dry_context

    calls: list[str] = []
    ctx = dry_context(tmp_path, ["/bin/sh", "-c", "exit 0"])
    run_steps(ctx, rollback=no_rollback_steps, steps=[Step("snapshot", "", recorder(calls, "snapshot"), side_effects=False),
                    Step("stop", "stop Milvus", recorder(calls, "stop"), would=lambda c: "stop it")])
    assert calls == ["snapshot"]
    assert ctx.journal.steps["stop"].summary.startswith("would stop it; ")
    assert not (tmp_path / "journal.json").exists()


def test_dead_sessions_are_the_lower_server_ids_of_reregistered_roles() -> None:
    from migrator.milvus.etcd import dead_session_keys

    prefix = "by-dev/meta/session/"
    keys = [prefix + name for name in ("datacoord", "id", "querycoord", "rootcoord", "querynode-6", "querynode-7",
                                       "datanode-6", "datanode-7", "proxy-7", "indexnode-5")]
    assert dead_session_keys(keys) == [prefix + "querynode-6", prefix + "datanode-6"]
    # Nothing re-registered yet (the new process still starting): nothing is dead.
    assert dead_session_keys([prefix + "querynode-6", prefix + "datanode-6"]) == []
    # Knowing the stopped process's ServerID: all of its sessions, once any newer one exists.
    assert dead_session_keys(keys, stopped_up_to=6) == [prefix + "querynode-6", prefix + "datanode-6",
                                                        prefix + "indexnode-5"]
    assert dead_session_keys([prefix + "querynode-6"], stopped_up_to=6) == []


def test_a_failure_after_a_change_runs_the_rollback_steps_and_exits_1(tmp_path: Path) -> None:
    calls: list[str] = []
    ctx = context(tmp_path)

    def rollback(c: RunContext) -> list[Step]:
        return [Step("rollback-start", "", recorder(calls, "rollback-start")),
                Step("rollback-check-writes", "", recorder(calls, "rollback-check-writes"))]

    steps = [Step("stop", "", recorder(calls, "stop")), Step("start", "", recorder(calls, "start", RuntimeError("x")))]
    with pytest.raises(RolledBack, match="start failed: RuntimeError: x; rolled back") as error:
        run_steps(ctx, steps, rollback=rollback)
    assert error.value.exit_code == 1
    assert calls == ["stop", "start", "rollback-start", "rollback-check-writes"]
    journal = Journal.load(tmp_path / "journal.json")
    assert journal.status == RunStatus.ROLLED_BACK and journal.phase == "rollback"
    assert journal.is_done("rollback-start") and journal.is_done("rollback-check-writes")


def test_a_failing_rollback_is_not_reported_as_rolled_back(tmp_path: Path) -> None:
    ctx = context(tmp_path)

    def rollback(c: RunContext) -> list[Step]:
        return [Step("rollback-start", "", recorder([], "rollback-start", NotRolledBack("Milvus will not start")))]

    steps = [Step("stop", "", recorder([], "stop")), Step("start", "", recorder([], "start", RuntimeError("x")))]
    with pytest.raises(NotRolledBack, match="the automatic rollback failed too") as error:
        run_steps(ctx, steps, rollback=rollback)
    assert error.value.exit_code == 4
    assert Journal.load(tmp_path / "journal.json").status == "failed"


def test_a_failure_before_any_side_effect_runs_no_rollback(tmp_path: Path) -> None:
    calls: list[str] = []
    ctx = context(tmp_path)
    steps = [Step("preflight", "", recorder(calls, "preflight"), side_effects=False),
             Step("snapshot", "", recorder(calls, "snapshot", RuntimeError("x")), side_effects=False)]
    with pytest.raises(RolledBack, match="nothing had been changed"):
        run_steps(ctx, steps, rollback=lambda c: [Step("rollback-x", "", recorder(calls, "rollback-x"))])
    assert calls == ["preflight", "snapshot"]


def test_a_failure_after_the_switch_keeps_the_migration(tmp_path: Path) -> None:
    """A backup that fails once clients are back is reported (exit 4), not undone by a rollback."""
    calls: list[str] = []
    ctx = context(tmp_path)
    steps = [Step("stop", "", recorder(calls, "stop")),
             Step("backup", "", recorder(calls, "backup", RuntimeError("disk full")), after_switch=True)]
    with pytest.raises(NotRolledBack, match="itself is done and verified") as error:
        run_steps(ctx, steps, rollback=lambda c: [Step("rollback-x", "", recorder(calls, "rollback-x"))])
    assert error.value.exit_code == 4
    assert calls == ["stop", "backup"]
    assert Journal.load(tmp_path / "journal.json").status == "failed"


def test_a_first_stop_that_fails_half_way_is_a_change_and_is_rolled_back(tmp_path: Path) -> None:
    """The stop may have stopped Milvus before it failed: that is not 'nothing changed'."""
    calls: list[str] = []
    ctx = context(tmp_path)

    def rollback(c: RunContext) -> list[Step]:
        return [Step("rollback-start", "", recorder(calls, "rollback-start"))]

    steps = [Step("preflight", "", recorder(calls, "preflight"), side_effects=False),
             Step("stop", "", recorder(calls, "stop", NotRolledBack("Milvus still running after SIGKILL")))]
    with pytest.raises(RolledBack, match="stop failed: Milvus still running after SIGKILL; rolled back to rocksmq"):
        run_steps(ctx, steps, rollback=rollback)
    assert calls == ["preflight", "stop", "rollback-start"]


# A run whose second step (with side effects) is cut off by SIGKILL half-way, in a process of its own.
_KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from types import SimpleNamespace
from migrator.migration.engine import run_steps
from migrator.migration.journal import Journal
from migrator.migration.steps.base import RunContext, Step
from tests.support.sandbox import quiet_env

journal = Journal.create(Path(sys.argv[1]), run_id="20260101T000000Z", plan={})
ctx = RunContext(env=quiet_env(), playbook=SimpleNamespace(), journal=journal, runtime=SimpleNamespace(),
                 plan=SimpleNamespace(source_mq="rocksmq", target_mq="natsmq"), milvus_environ={})
run_steps(ctx, [Step("preflight", "", lambda c: "ok", side_effects=False),
                Step("stop", "", lambda c: os.kill(os.getpid(), signal.SIGKILL))], rollback=lambda c: [])
"""


def test_a_step_cut_off_by_kill_9_runs_again_on_resume(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from tests.support import REPO

    path = tmp_path / "killed" / "journal.json"
    path.parent.mkdir()
    killed = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(path)], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    calls: list[str] = []
    resumed = context(tmp_path)
    resumed.journal = Journal.load(path)
    run_steps(resumed, rollback=no_rollback_steps,
              steps=[Step("preflight", "", recorder(calls, "preflight"), side_effects=False),
                     Step("stop", "", recorder(calls, "stop"))])
    assert calls == ["stop"]  # preflight had finished; the stop had not
    assert Journal.load(path).status == RunStatus.DONE
