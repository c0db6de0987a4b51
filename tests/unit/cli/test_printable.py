"""Issue 20, finding 8: nothing the tool prints carries a raw control character.

Each input puts an ESC sequence (which would clear the terminal) and a newline followed by a
forged line into a value the tool shows: the lock file's holder, a journal's run_id, a file name
in rocksmq.path, a collection name in a report, a playbook's name.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from migrator.migration.journal import Journal, RunStatus
from migrator.playbook import load_playbook
from tests.support.cli import run_cli
from tests.support.plans import fitting_plan
from tests.support.playbooks import offline_playbook
from tests.support.rocksmq import milvus_topics, write_rocksmq

HOSTILE = "x\x1b[2J\x1b]0;owned\x07\r\nstatus: done\u202e"
FORGED_LINE = "\nstatus: done"


def clean(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text and "\u202e" not in text, repr(text)
    assert FORGED_LINE not in text, repr(text)


def test_the_lock_holder_is_shown_escaped(tmp_path):
    playbook = offline_playbook(tmp_path)
    (tmp_path / "state").mkdir()
    lock = tmp_path / "state" / "lock"
    lock.write_text(HOSTILE)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, sys, time
        handle = open({str(lock)!r}, "r")
        fcntl.flock(handle, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        plan_file = tmp_path / "plan.json"
        fitting_plan(load_playbook(playbook)).save(plan_file)
        status = run_cli(["status", "-p", str(playbook)])
        clean(status.stdout + status.stderr)
        assert "\\x1b" in status.stdout  # shown, escaped
        writes = run_cli(["writes", "allow", "-p", str(playbook), "--yes"])
        clean(writes.stdout + writes.stderr)
    finally:
        holder.kill()
        holder.wait()


def test_a_run_id_and_a_journals_error_are_shown_escaped(tmp_path):
    import json

    playbook = offline_playbook(tmp_path, running=True)
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z",
                             plan=fitting_plan(load_playbook(playbook)).to_dict())
    journal.set_status(RunStatus.FAILED, error=f"boom {HOSTILE}")
    result = run_cli(["status", "-p", str(playbook)])
    clean(result.stdout + result.stderr)
    forged = json.loads(journal.path.read_text())
    forged["run_id"] = HOSTILE  # a journal's shape refuses it; what is printed about it is escaped
    journal.path.write_text(json.dumps(forged))
    result = run_cli(["status", "-p", str(playbook)])
    assert result.exit_code == 2, result.stderr
    clean(result.stdout + result.stderr)


def test_a_file_name_in_backup_cleans_refusal_is_shown_escaped(tmp_path):
    rocksmq = tmp_path / "rdb_data"
    write_rocksmq(rocksmq, milvus_topics(1, [100] * 5))
    (rocksmq / HOSTILE).write_text("x")
    result = run_cli(["backup", "clean", str(rocksmq), "--i-have-no-backup"])
    assert result.exit_code == 3, result.stderr
    clean(result.stdout + result.stderr)
    assert (rocksmq / HOSTILE).exists()


def test_collection_names_in_a_report_are_escaped_on_screen_and_on_disk(tmp_path):
    from migrator.cli.render import render_report
    from migrator.migration.report import build_report, write_report

    playbook = offline_playbook(tmp_path)
    plan = fitting_plan(load_playbook(playbook), snapshot={"version": "v2.3.5", "collections": [
        {"database": "default", "name": HOSTILE, "loaded": True, "rows": 1, "key": f"default.{HOSTILE}"}]})
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z", plan=plan.to_dict())
    journal.begin("preflight")
    journal.fail("preflight", 1.0, f"collection {HOSTILE} is gone")
    journal.set_status(RunStatus.FAILED, error=HOSTILE)
    report = build_report(journal)
    clean(render_report(report))
    _json_path, md_path = write_report(report, tmp_path / "state")
    clean(md_path.read_text())


@pytest.mark.parametrize("output", ["text"])
def test_a_playbooks_name_is_shown_escaped(tmp_path, output):
    playbook = offline_playbook(tmp_path, etcd=True)
    text = playbook.read_text().replace("name: offline", 'name: "' + HOSTILE.encode("unicode_escape").decode() + '"')
    playbook.write_text(text)
    assert load_playbook(playbook).spec.name == HOSTILE
    result = run_cli(["--output", output, "playbook", "check", str(playbook)])
    assert result.exit_code == 0, result.stderr
    clean(result.stdout + result.stderr)


def test_the_sanitiser_escapes_and_keeps_lines_apart():
    from migrator.util.printable import one_line, printable

    assert printable("a\x1b[31mb\nc\td") == "a\\x1b[31mb\nc\td"
    assert one_line("a\nb\rc\u202e") == "a\\x0ab\\x0dc\\u202e"
