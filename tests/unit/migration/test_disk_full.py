"""Issue 20, finding 10: a full disk in the state dir never makes the tool lie about what happened.

Each test mounts a small tmpfs of its own as the state dir (the tool runs as root; without the
right to mount, the test is skipped) and fills it at the moment it names: before the lock, or in
the middle of a run. The run's steps are plain steps (no Milvus): what is tested is the journal,
the lock and the exit code against a real full file system.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from migrator.migration.journal import Journal, RunStatus
from migrator.migration.steps.base import Step
from migrator.playbook import load_playbook
from tests.support.cli import run_cli
from tests.support.plans import fitting_plan
from tests.support.playbooks import offline_playbook


@pytest.fixture
def small_disk(tmp_path: Path):
    """A mounter of tmpfs file systems of a given size under tmp_path; unmounted at the end."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                                               capture_output=True).returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(directory: Path) -> None:
    """Write until the file system says it is full."""
    descriptor = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(descriptor, b"x" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC, error
    finally:
        os.close(descriptor)


@pytest.fixture(autouse=True)
def milvus_answers(monkeypatch):
    """apply asks Milvus its version before a run begins (a Milvus that does not answer refuses
    it): these runs' steps are plain steps that need no Milvus, so its answer is given here."""
    monkeypatch.setattr("migrator.verbs.apply.milvus_version", lambda deployment: "v2.3.5")


def deployment_on(tmp_path: Path, state_dir: Path) -> tuple[Path, Path]:
    playbook = offline_playbook(tmp_path)
    playbook.write_text(playbook.read_text().replace(f"state_dir: {tmp_path / 'state'}", f"state_dir: {state_dir}"))
    plan_file = tmp_path / "plan.json"
    fitting_plan(load_playbook(playbook)).save(plan_file)
    return playbook, plan_file


def test_a_full_state_dir_refuses_apply_with_3_and_changes_nothing(tmp_path, small_disk):
    state_dir = small_disk("64k") / "state"
    state_dir.mkdir()
    _playbook, plan_file = deployment_on(tmp_path, state_dir)
    fill(state_dir.parent)
    result = run_cli(["apply", str(plan_file), "--yes"])
    assert result.exit_code == 3, result.stderr
    assert "No space left on device" in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert "unexpected error" not in result.stderr
    assert not (state_dir / "journal.json").exists()


def test_a_state_dir_with_too_little_room_for_a_run_is_refused_before_the_journal(tmp_path, small_disk):
    """Less room than a run's journal and reports need: refused before it begins, not half-way."""
    state_dir = small_disk("256k") / "state"
    state_dir.mkdir()
    _playbook, plan_file = deployment_on(tmp_path, state_dir)
    result = run_cli(["apply", str(plan_file), "--yes"])
    assert result.exit_code == 3, result.stderr
    assert "room" in result.stderr, result.stderr
    assert not (state_dir / "journal.json").exists()


def test_a_rollback_that_succeeded_on_a_full_disk_exits_1_with_the_journal_rolled_back(tmp_path, small_disk, monkeypatch):
    state_dir = small_disk("8m") / "state"
    state_dir.mkdir()
    _playbook, plan_file = deployment_on(tmp_path, state_dir)
    ran: list[str] = []

    def stop_then_the_disk_fills(ctx):
        ran.append("stop")
        fill(state_dir.parent)
        raise RuntimeError("the runtime failed")

    def restart_source(ctx):
        ran.append("source-start")
        return "the source runs again"

    monkeypatch.setattr("migrator.migration.steps.pipeline.forward_steps",
                        lambda plan, spec: [Step("stop", "stop Milvus", stop_then_the_disk_fills)])
    monkeypatch.setattr("migrator.migration.steps.pipeline.rollback_steps",
                        lambda ctx: [Step("source-start", "start the source", restart_source)])
    monkeypatch.setattr("migrator.migration.clientview.ClientView", _NoClientView)
    result = run_cli(["apply", str(plan_file), "--yes"])
    assert ran == ["stop", "source-start"]
    assert result.exit_code == 1, result.stderr
    journal = Journal.load(state_dir / "journal.json")
    assert journal.status == RunStatus.ROLLED_BACK, journal.document
    assert journal.steps["stop"].state == "failed"


class _NoClientView:
    """The tool's own writing client needs a Milvus; these runs have none."""

    def __init__(self, uri, token):
        pass

    def start(self):
        pass

    def wait_for_first_write(self):
        pass

    def stop(self, **kwargs):
        return {}


def test_a_journal_write_that_fails_mid_run_is_never_reported_as_nothing_changed(tmp_path, monkeypatch):
    """Injected at the write boundary: every write of the state dir fails once the run has begun
    (no reserve can help): the exit is 4 (the journal may not say where the deployment stands), never 3."""
    import migrator.util.files as files

    _playbook, plan_file = deployment_on(tmp_path, tmp_path / "state")
    real_write = files.os.replace

    def stop_then_no_write_succeeds(ctx):
        def full(source, destination):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(files.os, "replace", full)
        raise RuntimeError("the runtime failed")

    monkeypatch.setattr("migrator.migration.steps.pipeline.forward_steps",
                        lambda plan, spec: [Step("stop", "stop Milvus", stop_then_no_write_succeeds)])
    monkeypatch.setattr("migrator.migration.steps.pipeline.rollback_steps",
                        lambda ctx: [Step("source-start", "start the source", lambda ctx: "ok")])
    monkeypatch.setattr("migrator.migration.clientview.ClientView", _NoClientView)
    result = run_cli(["apply", str(plan_file), "--yes"])
    monkeypatch.setattr(files.os, "replace", real_write)
    assert result.exit_code == 4, result.stderr
    assert "journal" in result.stderr and "No space left on device" in result.stderr, result.stderr
