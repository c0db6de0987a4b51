"""`apply --dry-run` checks every step instead of running it (migration/dryrun.py), on real files and
programs, with no Milvus: a stop command that does not exist, or is `false`, is refused, naming it;
the report says dry-run and each step `checked`, never `done`."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.errors import Refused
from migrator.migration.dryrun import check_argv
from migrator.migration.engine import run_steps
from migrator.migration.report import build_report
from migrator.migration.steps.base import RunContext, Step
from tests.support.dryrun import dry_context


def never(ctx: RunContext) -> str:
    raise AssertionError("a dry run ran a step with side effects")


STEPS = [Step("stop", "stop Milvus", never, would=lambda ctx: "stop Milvus through the command runtime"),
         Step("rewrite-config", "mq.type", never), Step("start", "start Milvus", never)]


def test_dry_run_refuses_a_stop_command_that_does_not_exist(tmp_path: Path) -> None:
    ctx = dry_context(tmp_path, ["/nonexistent/bin/milvus-stop", "--now"])
    with pytest.raises(Refused) as refused:
        run_steps(ctx, STEPS, rollback=lambda c: [])
    assert refused.value.exit_code == 3
    assert "stop command: `/nonexistent/bin/milvus-stop --now`: /nonexistent/bin/milvus-stop not found" \
        in refused.value.message
    assert "nothing was changed" in refused.value.message
    assert build_report(ctx.journal, dry_run=True)["status"] == "dry-run refused"
    assert not (tmp_path / "journal.json").exists()


def test_dry_run_refuses_false_as_a_stop_command(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="always fails"):
        run_steps(dry_context(tmp_path, ["/bin/false"]), STEPS, rollback=lambda c: [])
    assert not check_argv("stop", ["true"], "/usr/bin:/bin").ok  # stops nothing
    assert not check_argv("stop", ["no-such-program-here"], "/usr/bin:/bin").ok


def test_a_dry_run_that_passes_shows_each_command_and_says_dry_run(tmp_path: Path) -> None:
    ctx = dry_context(tmp_path, ["/bin/sh", "-c", "exit 0"])
    run_steps(ctx, STEPS, rollback=lambda c: [])
    report = build_report(ctx.journal, dry_run=True)
    assert report["status"] == "dry-run"
    assert {step["state"] for step in report["steps"]} == {"checked"}
    stop = ctx.journal.steps["stop"].summary
    assert stop.startswith("would stop Milvus through the command runtime")
    for shown in ("stop command: `/bin/sh -c exit 0`", "log source", "NATS port", "is free", "config write",
                  "disk room", "client gate: port isolation"):
        assert shown in stop, shown
    assert "config write" in ctx.journal.steps["rewrite-config"].summary
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())
