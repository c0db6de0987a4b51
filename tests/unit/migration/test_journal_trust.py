"""The journal is data the tool checks, never instructions it follows (issue 20, findings 1, 2, 9):
typed and validated on load, its run id one strict shape, its config states only the playbook's
files with copies in the run's own directory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from migrator.errors import BadInput, ExitCode
from migrator.migration.journal import Journal, RunStatus
from migrator.util.files import child_path
from tests.support.cli import run_cli
from tests.support.plans import make_plan
from tests.support.playbooks import offline_playbook

RUN_ID = "20261130T000000Z"


def _journal(tmp_path: Path, status: RunStatus = RunStatus.INTERRUPTED) -> Journal:
    """An unfinished run of `offline_playbook(tmp_path)`, its plan one that playbook could make."""
    plan = make_plan(tmp_path, tmp_path / "configs" / "milvus.yaml")
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id=RUN_ID, plan=plan.to_dict())
    journal.set_status(status)
    return journal


def _raw(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "state" / "journal.json").read_text())


def _write_raw(tmp_path: Path, data: object) -> None:
    (tmp_path / "state" / "journal.json").write_text(json.dumps(data) if not isinstance(data, str) else data)


def test_a_journal_round_trips_every_typed_field(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.begin("stop")
    journal.remember("stop", checkpoints={"ch": [1, 2]})
    journal.finish("stop", 1.25, "stopped")
    journal.mark("clients_off_at", 100.5)
    journal.add_client_view({"writes": 3, "acknowledged": 2, "refused": {"denied": 1}})
    journal.add_write({"action": "allow", "at": "t", "unix": 1.0, "file": "f", "changed": True, "proof": "p",
                       "during": "interrupted"})
    journal.set_status(RunStatus.FAILED, error="boom")
    again = Journal.load(journal.path)
    assert again is not None and again.document == journal.document
    assert again.steps["stop"].seconds == 1.25 and again.recall("stop", "checkpoints") == {"ch": [1, 2]}
    assert again.marks.client_view[0].refused == {"denied": 1} and again.writes[0].during == RunStatus.INTERRUPTED
    # The statuses are written as the same strings as before the model existed.
    raw = _raw(tmp_path)
    assert raw["status"] == "failed" and raw["steps"]["stop"]["state"] == "done" and raw["run_id"] == RUN_ID


@pytest.mark.parametrize("field, damage", [
    ("steps.stop.seconds", lambda raw: raw["steps"].update(stop={"state": "done", "seconds": "1.5", "data": {}})),
    ("steps.stop.state", lambda raw: raw["steps"].update(stop={"state": "exploded", "data": {}})),
    ("steps.stop.data", lambda raw: raw["steps"].update(stop={"state": "done", "data": []})),
    ("marks.config_states", lambda raw: raw.update(marks={"config_states": ["/tmp/victim"]})),
    ("marks.config_states.files", lambda raw: raw.update(marks={"config_states": {"private_port": 1, "files": []}})),
    ("marks.client_view", lambda raw: raw.update(marks={"client_view": {"writes": 1}})),
    ("marks.clients_off_at", lambda raw: raw.update(marks={"clients_off_at": "soon"})),
    ("writes.0", lambda raw: raw.update(writes=["allow"])),
    ("writes.0.unix", lambda raw: raw.update(writes=[{"action": "allow", "at": "t", "unix": "now", "file": "f",
                                                      "changed": True, "proof": "p"}])),
    ("status", lambda raw: raw.update(status="exploded")),
    ("run_id", lambda raw: raw.update(run_id="../../../../escaped/pwn")),
])
def test_a_journal_value_of_the_wrong_type_is_bad_input_naming_the_field(tmp_path: Path, field: str, damage) -> None:
    playbook = offline_playbook(tmp_path)
    _journal(tmp_path)
    raw = _raw(tmp_path)
    damage(raw)
    _write_raw(tmp_path, raw)
    for args in (["status", "-p", str(playbook)], ["rollback", "-p", str(playbook), "--yes"],
                 ["apply", "--resume", "-p", str(playbook), "--yes"]):
        result = run_cli(args)
        assert result.exit_code == ExitCode.BAD_INPUT, (args, result.stderr)
        assert str(tmp_path / "state" / "journal.json") in result.stderr and field in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_a_journal_nested_100k_deep_is_bad_input(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    (tmp_path / "state").mkdir()
    _write_raw(tmp_path, '{"schema_version": 1, "plan": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = run_cli(["status", "-p", str(playbook)])
    assert result.exit_code == ExitCode.BAD_INPUT and "unreadable journal" in result.stderr, result.stderr


def test_a_journal_of_another_schema_says_so(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    _journal(tmp_path)
    _write_raw(tmp_path, {**_raw(tmp_path), "schema_version": 7})
    result = run_cli(["status", "-p", str(playbook)])
    assert result.exit_code == ExitCode.BAD_INPUT and "schema 7 is not 1" in result.stderr, result.stderr


def test_a_run_id_outside_its_one_shape_is_refused_when_made() -> None:
    with pytest.raises(BadInput, match="run_id"):
        Journal.create(Path("/nonexistent/journal.json"), run_id="../x", plan={}, dry_run=True)


def test_a_child_path_never_leaves_its_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "dir" / "link").symlink_to(tmp_path / "outside")
    assert child_path(tmp_path / "dir", "run", "copy", what="x") == tmp_path / "dir" / "run" / "copy"
    for parts in (("..", "outside"), ("../outside",), ("/etc",), ("",), ("link", "copy")):
        with pytest.raises(BadInput, match="x: "):
            child_path(tmp_path / "dir", *parts, what="x")


def _forge_config_states(tmp_path: Path, target: Path, copy_dir: Path) -> None:
    """A journal recording `target` as a config file of the run, each state's copy in `copy_dir`
    holding attacker text with its true sha256: what a forged journal would carry."""
    text = "attacker: text\n"
    copy_dir.mkdir(parents=True, exist_ok=True)
    states = {}
    for name in ("original", "isolated-source", "isolated-target", "final-target"):
        (copy_dir / f"0-{target.name}.{name}").write_text(text)
        states[name] = {"copy": str(copy_dir / f"0-{target.name}.{name}"),
                        "sha256": hashlib.sha256(text.encode()).hexdigest()}
    raw = _raw(tmp_path)
    raw["marks"] = {"config_states": {"private_port": 19539, "files": {str(target): states}}, "clients_off_at": 1.0}
    raw["steps"] = {"isolate": {"state": "done", "data": {}}, "stop": {"state": "done", "data": {}}}
    _write_raw(tmp_path, raw)


def _run_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "config-states" / RUN_ID


@pytest.mark.parametrize("where", ["a file outside the config dir", "copies outside the run's dir"])
def test_forged_config_states_make_rollback_and_resume_write_nothing(tmp_path: Path, where: str) -> None:
    playbook = offline_playbook(tmp_path)
    config = tmp_path / "configs" / "milvus.yaml"
    before = config.read_bytes()
    _journal(tmp_path)
    victim = tmp_path / "victim"
    if where == "a file outside the config dir":
        _forge_config_states(tmp_path, victim, _run_dir(tmp_path))
    else:
        _forge_config_states(tmp_path, config, tmp_path / "elsewhere")
    journal_before = (tmp_path / "state" / "journal.json").read_bytes()
    for args in (["rollback", "-p", str(playbook), "--yes"], ["apply", "--resume", "-p", str(playbook), "--yes"],
                 ["status", "-p", str(playbook)]):
        result = run_cli(args)
        assert result.exit_code == ExitCode.BAD_INPUT, (args, result.stderr)
        assert "marks.config_states" in result.stderr, result.stderr
        assert not victim.exists() and config.read_bytes() == before
        assert (tmp_path / "state" / "journal.json").read_bytes() == journal_before
        assert not (tmp_path / "state" / "reports").exists()


def test_a_journal_plan_of_another_playbook_is_refused_before_a_rollback(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    _journal(tmp_path)
    raw = _raw(tmp_path)
    from migrator.migration.plan import Plan

    plan = Plan.from_dict(raw["plan"])
    plan.config_target = "/etc/passwd"
    raw["plan"] = plan.to_dict()
    _write_raw(tmp_path, raw)
    result = run_cli(["rollback", "-p", str(playbook), "--yes"])
    assert result.exit_code == ExitCode.BAD_INPUT and "config_target /etc/passwd" in result.stderr, result.stderr


# --- the plan's typed parts (issue 20, finding 9) ----------------------------------------------------


def _resealed(raw: dict, **changes: object) -> dict:
    from migrator.migration.plan import digest_of

    content = {key: value for key, value in {**raw, **changes}.items() if key != "digest"}
    return {**content, "digest": digest_of(content)}


@pytest.mark.parametrize("field, change", [
    ("snapshot", {"snapshot": {"version": "v2.3.5"}}),  # no collections
    ("snapshot", {"snapshot": {"version": "v2.3.5", "collections": [{"name": "a"}]}}),
    ("estimate.write_downtime_budget_s", {"estimate": {"write_downtime_budget_s": "soon"}}),
    ("facts.force_deny", {"facts": {"force_deny": True}}),
    ("facts.surprise", {"facts": {"surprise": 1}}),
])
def test_a_plan_missing_or_mistyping_a_field_is_bad_input_naming_it(tmp_path: Path, field: str, change: dict) -> None:
    playbook = offline_playbook(tmp_path)
    plan = make_plan(tmp_path, tmp_path / "configs" / "milvus.yaml")
    (tmp_path / "plan.json").write_text(json.dumps(_resealed(plan.to_dict(), **change)))
    result = run_cli(["apply", str(tmp_path / "plan.json"), "--yes"])
    assert result.exit_code == ExitCode.BAD_INPUT and field in result.stderr, result.stderr
    # The same plan inside a journal: status and rollback say so too.
    _journal(tmp_path)
    _write_raw(tmp_path, {**_raw(tmp_path), "plan": _resealed(plan.to_dict(), **change)})
    for args in (["status", "-p", str(playbook)], ["rollback", "-p", str(playbook), "--yes"]):
        result = run_cli(args)
        assert result.exit_code == ExitCode.BAD_INPUT and field in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
