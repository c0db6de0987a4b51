"""Pure parts of the migration: journal, lock, plan file and staleness, report, playbook errors, secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrator.errors import Refused
from migrator.migration.journal import DONE, DeploymentLock, Journal, write_json_atomic
from tests.support import REPO


def test_journal_records_steps_and_survives_reload(tmp_path: Path) -> None:
    path = tmp_path / "state" / "journal.json"
    journal = Journal.create(path, run_id="r1", plan={"x": 1})
    journal.begin("deny-writes")
    journal.remember("deny-writes", original=False)
    journal.finish("deny-writes", 1.5, "denied")
    journal.set_status(DONE)
    again = Journal.load(path)
    assert again is not None
    assert again.is_done("deny-writes") and again.recall("deny-writes", "original") is False
    assert again.status == DONE and again.data["schema_version"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["journal.json"]  # no temp file left


def test_dry_run_journal_writes_nothing(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "j.json", run_id="r", plan={}, dry_run=True)
    journal.begin("stop")
    journal.finish("stop", 0.1)
    assert not (tmp_path / "j.json").exists()


def test_atomic_write_keeps_the_old_file_when_a_write_dies(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": object.__new__(type("Unserializable", (), {"__str__": None}))})
    assert json.loads(path.read_text()) == {"v": 1}


def test_lock_refuses_a_second_holder_and_is_freed_by_death(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r); from migrator.migration.journal import DeploymentLock; "
        "l = DeploymentLock(__import__('pathlib').Path(%r)); l.acquire(); print('held', flush=True); time.sleep(60)"
    ) % (str(REPO), str(path))], stdout=subprocess.PIPE, text=True)
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
