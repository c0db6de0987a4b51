"""Pure parts of the migration: journal, lock, plan file and staleness, report, playbook errors, secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrator.errors import Refused
from migrator.migration.journal import DeploymentLock, Journal, RunStatus, write_json_atomic
from tests.support import REPO


def _reloaded(path: Path) -> Journal:
    again = Journal.load(path)
    assert again is not None
    return again


def test_every_journal_mutation_is_on_disk_when_it_returns(tmp_path: Path) -> None:
    """Each call is checked against a fresh load before the next one: a later save cannot hide a
    mutation that forgot its own (a kill -9 right after it would lose it)."""
    path = tmp_path / "state" / "journal.json"
    journal = Journal.create(path, run_id="20261130T000000Z", plan={"x": 1})
    assert _reloaded(path).run_id == "20261130T000000Z" and _reloaded(path).document.schema_version == 1
    journal.begin("deny-writes")
    assert _reloaded(path).steps["deny-writes"].state == "running"
    journal.remember("deny-writes", original=False)
    assert _reloaded(path).recall("deny-writes", "original") is False
    journal.finish("deny-writes", 1.5, "denied")
    assert _reloaded(path).is_done("deny-writes")
    journal.fail("stop", 0.2, "boom")
    assert _reloaded(path).steps["stop"].error == "boom"
    journal.mark("clients_off_at", 12.5)
    assert _reloaded(path).marks.clients_off_at == 12.5
    journal.set_status(RunStatus.DONE)
    assert _reloaded(path).status == RunStatus.DONE
    assert [p.name for p in path.parent.iterdir()] == ["journal.json"]  # no temp file left


def test_dry_run_journal_writes_nothing(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "j.json", run_id="20261130T000000Z", plan={}, dry_run=True)
    journal.begin("stop")
    journal.finish("stop", 0.1)
    assert not (tmp_path / "j.json").exists()


def test_atomic_write_keeps_the_old_file_when_the_disk_write_dies(tmp_path: Path) -> None:
    """The write fails in the middle of writing bytes (a file size limit stands in for a full disk):
    the old journal is whole and no temp file is left."""
    path = tmp_path / "journal.json"
    write_json_atomic(path, {"v": 1})
    script = (
        f"import resource, signal, sys; sys.path.insert(0, {str(REPO)!r})\n"
        "from pathlib import Path\n"
        "from migrator.migration.journal import write_json_atomic\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        f"    write_json_atomic(Path({str(path)!r}), {{'v': 'x' * 100000}})\n"
        "except Exception as error:\n"  # Refused (exit 3) naming the path and the OS error
        "    print('died:', error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("died:") and "File too large" in done.stdout, done.stdout + done.stderr
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]


def test_lock_refuses_a_second_holder_and_is_freed_by_death(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        f"import sys, time; sys.path.insert(0, {str(REPO)!r}); from migrator.migration.journal import DeploymentLock; "
        f"l = DeploymentLock(__import__('pathlib').Path({str(path)!r})); l.acquire(); print('held', flush=True); time.sleep(60)"
    )], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(Refused, match=f"pid {holder.pid}"):
        DeploymentLock(path).acquire()
    assert DeploymentLock(path).held_by_other() is not None
    holder.kill()
    holder.wait()
    lock = DeploymentLock(path)
    lock.acquire()  # kill -9 of the holder released it
    assert f"pid {os.getpid()}" in path.read_text()
    lock.release()
