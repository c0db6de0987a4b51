"""The journal, a plan and a report are replaced atomically (a new inode renamed in), never written in
place: a reader that holds the old file (or a kill -9 in the middle) sees the whole old content."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from migrator.migration.journal import Journal
from migrator.migration.report import build_report, write_report
from tests.support.plans import make_plan


def _replaced_atomically(path: Path, write: Callable[[], None]) -> None:
    before = path.read_bytes()
    with open(path, "rb") as held:
        inode = os.fstat(held.fileno()).st_ino
        write()
        assert os.stat(path).st_ino != inode, f"{path.name} was written in place"
        held.seek(0)
        assert held.read() == before  # the old file, whole, for whoever still reads it
    assert path.read_bytes() != before
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []  # no temp file


def test_journal_save_replaces_the_file(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "journal.json", run_id="20261130T000000Z", plan={})
    _replaced_atomically(journal.path, lambda: journal.mark("clients_off_at", 1.0))


def test_plan_save_replaces_the_file(tmp_path: Path) -> None:
    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    plan = make_plan(tmp_path, layer)
    out = tmp_path / "plans" / "plan.json"
    plan.save(out)
    plan.target_mq = "rocksmq"
    _replaced_atomically(out, lambda: plan.save(out))


@pytest.mark.parametrize("which", ["json", "md"])
def test_report_files_are_replaced(tmp_path: Path, which: str) -> None:
    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    journal = Journal.create(tmp_path / "j.json", run_id="20261130T000000Z", plan=make_plan(tmp_path, layer).to_dict())
    state = tmp_path / "state"
    json_path, md_path = write_report(build_report(journal), state)
    journal.set_status("done")
    _replaced_atomically(json_path if which == "json" else md_path, lambda: write_report(build_report(journal), state))
