"""Fuzz-style: hypothesis over playbooks, milvus.yaml shapes, manifests, plans and journals (issue 14).

Whatever the input, the tool answers with one of its own errors (a MigrateError: a message and a
documented exit code), never another exception (a traceback), and changes nothing on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.errors import MigrateError
from tests.support.cli import run_cli
from tests.support.plans import PLAYBOOK, make_plan

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

# JSON/YAML-like values: the shapes a hand-edited or damaged file takes.
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                    st.text(max_size=30))
values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=5)), max_leaves=25)
yaml_noise = st.text(alphabet=st.sampled_from(list("ab:-&*<>{}[]!|#'\" \n\t,?%@`0.9~\\")), max_size=200)


def _tree(root: Path) -> dict[str, bytes]:
    found = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            found[str(path)] = b"<link>" if path.is_symlink() else path.read_bytes()
    return found


def _only_migrate_errors(call: Any) -> Any:
    try:
        return call()
    except MigrateError as error:
        assert error.message and "Traceback" not in error.message
        return None


def _mutations(base: dict[str, Any]):
    """A valid document with one field replaced, removed, or the whole thing replaced."""
    return st.one_of(
        st.tuples(st.sampled_from(sorted(base)), values).map(lambda kv: {**base, kv[0]: kv[1]}),
        st.sampled_from(sorted(base)).map(lambda key: {k: v for k, v in base.items() if k != key}),
        values,
    )


@pytest.fixture(scope="module")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="fuzz-hostile-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- playbooks -------------------------------------------------------------------------------


@given(st.one_of(yaml_noise, values.map(json.dumps),
                 st.tuples(st.sampled_from(PLAYBOOK.splitlines()), yaml_noise).map(
                     lambda pair: PLAYBOOK.replace(pair[0], pair[1]))))
@FUZZ
def test_any_playbook_text_is_loaded_or_refused(workdir, text):
    from migrator.playbook import load_playbook

    (workdir / "pb.yaml").write_text(text)
    before = _tree(workdir)
    _only_migrate_errors(lambda: load_playbook(workdir / "pb.yaml"))
    result = run_cli(["playbook", "check", str(workdir / "pb.yaml")])
    assert result.exit_code in (0, 2) and "Traceback" not in result.stderr
    assert _tree(workdir) == before


# --- milvus.yaml -----------------------------------------------------------------------------


@given(st.one_of(yaml_noise, values.map(json.dumps),
                 st.dictionaries(st.sampled_from(["mq", "natsmq", "rocksmq", "quotaAndLimits", "Mq", "MQ", "<<"]),
                                 values, max_size=4).map(json.dumps)))
@FUZZ
def test_any_milvus_yaml_is_read_or_refused_and_never_edited_blindly(workdir, text):
    from migrator.config import load_layers, plan_edit

    config = workdir / "configs"
    config.mkdir(exist_ok=True)
    (config / "milvus.yaml").write_text(text)
    before = _tree(workdir)

    def read_and_plan():
        effective = load_layers(config, "2.3.5", {}, None)
        effective.mq_type()
        return plan_edit(effective, {"mq.type": "natsmq", "natsmq.server.port": 4222})

    _only_migrate_errors(read_and_plan)
    result = run_cli(["config", "set", "--config-dir", str(config), "--to", "natsmq"])  # no --write
    assert result.exit_code in (0, 2, 3) and "Traceback" not in result.stderr
    assert _tree(workdir) == before


# --- backup manifests ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_rocksmq(workdir):
    from tests.support.rocksmq import write_rocksmq

    path = workdir / "live" / "rdb_data"
    path.parent.mkdir()
    write_rocksmq(path, {"by-dev-rootcoord-dml_0": [100] * 10})
    return path


@pytest.fixture(scope="module")
def good_manifest(workdir, live_rocksmq):
    from migrator.rocksmq import create_backup

    create_backup(live_rocksmq, workdir / "good-backup", milvus_running=True)
    return json.loads((workdir / "good-backup" / "manifest.json").read_text())


@given(data=st.data())
@FUZZ
def test_any_manifest_never_authorises_a_deletion_or_a_restore(workdir, live_rocksmq, good_manifest, data):
    from migrator.rocksmq import clean, restore_backup, verify_backup

    manifest = data.draw(_mutations(good_manifest))
    backup = workdir / "fuzzed-backup"
    shutil.rmtree(backup, ignore_errors=True)
    shutil.copytree(workdir / "good-backup", backup)
    (backup / "manifest.json").write_text(json.dumps(manifest))
    live_before = _tree(live_rocksmq.parent)
    _only_migrate_errors(lambda: verify_backup(backup))
    # A mutated manifest still describing the live data exactly would be a valid one: the only
    # change left is in a field clean does not read (e.g. created_at). Then the delete is right only
    # if that very backup, not the good one, gives back everything that was deleted.
    deleted = _only_migrate_errors(lambda: clean(live_rocksmq, backup_dir=backup))
    if deleted is not None:
        restore_backup(backup, live_rocksmq)
        # RocksDB's LOCK holds nothing and is not backed up: everything else is back, byte for byte.
        assert _tree(live_rocksmq.parent) == {k: v for k, v in live_before.items() if not k.endswith("/LOCK")}
        for part in (live_rocksmq, live_rocksmq.with_name("rdb_data_meta_kv")):
            (part / "LOCK").touch()
        return
    assert _tree(live_rocksmq.parent) == live_before
    target = workdir / "restore-target" / "rdb_data"
    restored = _only_migrate_errors(lambda: restore_backup(backup, target))
    if restored is None:
        assert not target.exists() and not target.with_name("rdb_data_meta_kv").exists()
    shutil.rmtree(target.parent, ignore_errors=True)


# --- plans -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_plan(workdir):
    from tests.support.plans import write_playbook

    layer = workdir / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    loaded = write_playbook(workdir)
    plan = make_plan(workdir, layer)
    plan.playbook_sha256 = loaded.sha256
    return plan.to_dict(), loaded


@given(data=st.data(), reseal=st.booleans())
@FUZZ
def test_any_plan_file_is_refused_unless_it_fits(workdir, good_plan, data, reseal):
    from migrator.migration.plan import Plan, check_fresh, digest_of

    base, loaded = good_plan
    mutated = data.draw(_mutations(base))
    if reseal and isinstance(mutated, dict):
        content = {key: value for key, value in mutated.items() if key != "digest"}
        mutated = {**content, "digest": digest_of(content)}
    (workdir / "plan.json").write_text(json.dumps(mutated))
    before = _tree(workdir)
    plan = _only_migrate_errors(lambda: Plan.load(workdir / "plan.json"))
    if plan is not None:
        _only_migrate_errors(lambda: check_fresh(plan, loaded))
    assert _tree(workdir) == before


# --- journals --------------------------------------------------------------------------------


@given(data=st.data())
@FUZZ
def test_any_journal_is_loaded_and_reported_or_refused(workdir, good_plan, data):
    from migrator.migration.journal import Journal
    from migrator.migration.report import build_report, render_markdown
    from migrator.verbs.deployment import recorded_plan

    base = {"schema_version": 1, "run_id": "20261130T000000Z", "status": "failed", "started_at": "t", "ended_at": None,
            "plan": good_plan[0], "steps": {"stop": {"state": "done", "data": {}, "seconds": 1.0}},
            "rollback": {}, "error": "x", "marks": {"clients_off_at": 1.0}}
    state = workdir / "state"
    state.mkdir(exist_ok=True)
    (state / "journal.json").write_text(json.dumps(data.draw(_mutations(base))))
    before = _tree(workdir)
    journal = _only_migrate_errors(lambda: Journal.load(state / "journal.json"))
    if journal is not None and _only_migrate_errors(lambda: recorded_plan(journal)) is not None:
        render_markdown(build_report(journal))
    assert _tree(workdir) == before


def test_fuzz_inputs_reach_the_code_they_aim_at(workdir, good_plan):
    # Guard against a fuzz run that only ever exercises the JSON parser: a valid plan loads.
    from migrator.migration.plan import Plan

    (workdir / "plan.json").write_text(json.dumps(good_plan[0]))
    assert Plan.load(workdir / "plan.json").target_mq == "natsmq"
