"""Issue 20: a plan or a state dir is data the tool checks, never an instruction it follows.

A plan names a playbook, and a playbook names the commands root runs: so the playbook apply acts
through is always the operator's (`--playbook`, or the one the plan names when it is the file the
plan was made from and no other user could have written it). Paths a plan carries that apply would
move, write or hand to Milvus (natsmq.server.storeDir, its log file) never reach a system directory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from migrator.errors import Refused
from migrator.migration.plan import Plan, check_fresh, digest_of
from migrator.playbook import load_playbook
from tests.support.cli import run_cli
from tests.support.config import fixture_dir
from tests.support.plans import fitting_plan
from tests.support.rocksmq import tree_snapshot

NOBODY = 65534


def foreign_deployment(tmp_path: Path, name: str = "evil") -> tuple[Path, Path, Path]:
    """(playbook, plan file, marker): a playbook whose every command touches `marker`, and a plan
    that fits it exactly (digest, layers, playbook sha256): what someone else could leave around."""
    root = tmp_path / name
    config_dir = root / "configs"
    shutil.copytree(fixture_dir("v2.3-single"), config_dir)
    marker = root / "RAN"
    touch = f'["sh", "-c", "echo ran >> {marker}"]'
    playbook = root / "pb.yaml"
    playbook.write_text(f"""version: 1
name: {name}
milvus: {{uri: "http://127.0.0.1:1", metrics_url: "http://127.0.0.1:1"}}
config: {{dir: {config_dir}, version: "2.3.5"}}
runtime: {{kind: command, stop: {touch}, start: {touch}, running: {touch}, logs: ["sh", "-c", "echo ran >> {marker}; echo {{since}}"]}}
migration: {{state_dir: {root / 'state'}}}
""")
    plan_file = root / "plan.json"
    fitting_plan(load_playbook(playbook)).save(plan_file)
    return playbook, plan_file, marker


def reseal(path: Path, **edits) -> None:
    raw = json.loads(path.read_text())
    content = {key: value for key, value in {**raw, **edits}.items() if key != "digest"}
    path.write_text(json.dumps({**content, "digest": digest_of(content)}))


# --- 4. the playbook is always the operator's ---------------------------------------------------


@pytest.mark.parametrize("flags", [["--dry-run"], ["--yes"]])
def test_a_plan_naming_a_playbook_another_user_wrote_runs_nothing(tmp_path, flags):
    playbook, plan_file, marker = foreign_deployment(tmp_path)
    os.chown(playbook, NOBODY, NOBODY)
    result = run_cli(["apply", str(plan_file), *flags])
    assert result.exit_code == 3, result.stderr
    assert "--playbook" in result.stderr and f"uid {NOBODY}" in result.stderr, result.stderr
    assert not marker.exists(), "a command of a playbook the operator did not give ran"
    assert not (playbook.parent / "state").exists()


def test_a_plan_naming_a_playbook_in_a_directory_others_may_write_runs_nothing(tmp_path):
    playbook, plan_file, marker = foreign_deployment(tmp_path)
    os.chmod(playbook.parent, 0o777)  # anyone could have put that playbook there (no sticky bit)
    result = run_cli(["apply", str(plan_file), "--dry-run"])
    assert result.exit_code == 3, result.stderr
    assert "writable by others" in result.stderr and "--playbook" in result.stderr, result.stderr
    assert not marker.exists()


def test_a_group_writable_playbook_named_by_a_plan_runs_nothing(tmp_path):
    playbook, plan_file, marker = foreign_deployment(tmp_path)
    os.chown(playbook, 0, NOBODY)
    os.chmod(playbook, 0o664)
    result = run_cli(["apply", str(plan_file), "--dry-run"])
    assert result.exit_code == 3 and not marker.exists(), result.stderr


def test_with_playbook_the_plan_must_have_been_made_from_that_file(tmp_path):
    """The operator's --playbook is used, and a plan made from another playbook (another digest)
    is refused before anything runs: neither playbook's commands run."""
    mine, _mine_plan, my_marker = foreign_deployment(tmp_path, "mine")
    _theirs, their_plan, their_marker = foreign_deployment(tmp_path, "theirs")
    result = run_cli(["apply", str(their_plan), "--playbook", str(mine), "--dry-run"])
    assert result.exit_code == 3, result.stderr
    assert "was not made from" in result.stderr, result.stderr
    assert not my_marker.exists() and not their_marker.exists()


def test_with_playbook_the_plan_may_name_a_copy_of_it(tmp_path):
    """Identity by content: the operator's copy of the playbook the plan was made from is that playbook."""
    from migrator.verbs.apply import operator_playbook

    playbook, plan_file, _marker = foreign_deployment(tmp_path)
    copy = tmp_path / "copy.yaml"
    copy.write_bytes(playbook.read_bytes())
    assert operator_playbook(Plan.load(plan_file), plan_file, copy).path == copy.resolve()


def test_the_playbook_a_plan_names_is_taken_when_only_root_could_have_written_it(tmp_path):
    from migrator.verbs.apply import operator_playbook

    playbook, plan_file, _marker = foreign_deployment(tmp_path)
    assert operator_playbook(Plan.load(plan_file), plan_file, None).path == playbook.resolve()


def test_the_playbook_a_plan_names_must_still_be_the_file_it_was_made_from(tmp_path):
    playbook, plan_file, marker = foreign_deployment(tmp_path)
    playbook.write_text(playbook.read_text().replace("name: evil", "name: changed"))
    result = run_cli(["apply", str(plan_file), "--dry-run"])
    assert result.exit_code == 3 and "changed since" in result.stderr, result.stderr
    assert not marker.exists()


# --- 4. paths in a plan never reach a system directory ------------------------------------------


SYSTEM_STORES = ["/", "/etc", "/etc/milvus", "/usr/local/nats", "/var/lib", "/var", "/tmp", "/root", "/home",
                 "/boot", "/var/lib/milvus/../../../etc", "/proc/self"]


@pytest.mark.parametrize("store", SYSTEM_STORES)
def test_a_resealed_plan_with_a_system_store_dir_is_refused(tmp_path, store):
    playbook, plan_file, marker = foreign_deployment(tmp_path)
    reseal(plan_file, changes={"mq.type": "natsmq", "natsmq.server.storeDir": store})
    with pytest.raises(Refused, match="natsmq.server.storeDir"):
        check_fresh(Plan.load(plan_file), load_playbook(playbook))
    result = run_cli(["apply", str(plan_file), "--playbook", str(playbook), "--yes"])
    assert result.exit_code == 3 and "natsmq.server.storeDir" in result.stderr, result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("where", ["state", "configs", "."])
def test_a_store_dir_over_the_playbooks_own_dirs_is_refused(tmp_path, where):
    playbook, plan_file, _marker = foreign_deployment(tmp_path)
    store = str((playbook.parent / where).resolve())
    reseal(plan_file, changes={"mq.type": "natsmq", "natsmq.server.storeDir": store})
    with pytest.raises(Refused, match="natsmq.server.storeDir"):
        check_fresh(Plan.load(plan_file), load_playbook(playbook))


@pytest.mark.parametrize("log_file", ["/etc/passwd", "/etc/cron.d/x", "/usr/lib/x.log", "/boot/x"])
def test_a_resealed_plan_pointing_the_nats_log_into_a_system_dir_is_refused(tmp_path, log_file):
    playbook, plan_file, _marker = foreign_deployment(tmp_path)
    reseal(plan_file, changes={"mq.type": "natsmq", "natsmq.server.monitor.logFile": log_file})
    with pytest.raises(Refused, match="natsmq.server.monitor.logFile"):
        check_fresh(Plan.load(plan_file), load_playbook(playbook))


def test_an_ordinary_store_dir_fits(tmp_path):
    playbook, plan_file, _marker = foreign_deployment(tmp_path)
    reseal(plan_file, changes={"mq.type": "natsmq", "natsmq.server.storeDir": "/var/lib/milvus/nats"})
    check_fresh(Plan.load(plan_file), load_playbook(playbook))


@pytest.mark.parametrize("store", ["/etc", "/var/lib", "/usr/share/nats"])
def test_planning_a_system_store_dir_is_an_error_finding(store):
    from migrator.config import natsmq_findings
    from migrator.config.layers import EffectiveConfig

    findings = natsmq_findings(EffectiveConfig(config_dir=Path("/nonexistent"), version="2.3.5", layers=[], env={}, etcd={}, etcd_state=""),
                               {"natsmq.server.storeDir": store}, "natsmq", port_is_free=lambda port: True)
    assert any(f.level == "error" and f.key == "natsmq.server.storeDir" and "system directory" in f.message
               for f in findings), findings


def test_moving_a_store_aside_never_moves_a_system_directory(monkeypatch):
    from migrator.migration import stores
    from migrator.migration.stores import Store, move_aside

    # The guard is judged with the rename disarmed: broken on purpose (a mutation), this test must
    # fail, never move the real /etc aside (it did once, while a guard was being written).
    renamed: list[tuple[object, object]] = []
    monkeypatch.setattr(stores.os, "rename", lambda source, target: renamed.append((source, target)))
    with pytest.raises(Refused, match="system directory"):
        move_aside(Store("natsmq", (Path("/etc"),)), "20260101T000000Z")
    assert renamed == [] and Path("/etc").is_dir()


# --- 3. the unfinished-run check holds under the lock --------------------------------------------


def test_an_apply_never_replaces_a_journal_that_became_unfinished_before_it_took_the_lock(tmp_path, monkeypatch):
    """Two applies: the other one starts and is interrupted while this one waits at its prompt.
    This one's check before the prompt saw no journal; under the lock it must see the other's."""
    from migrator.migration.journal import Journal, RunStatus
    from tests.support.playbooks import offline_playbook

    playbook = offline_playbook(tmp_path)
    loaded = load_playbook(playbook)
    plan_file = tmp_path / "plan.json"
    fitting_plan(loaded).save(plan_file)
    journal_path = tmp_path / "state" / "journal.json"

    def the_other_apply_meanwhile(env, plan, yes, **kwargs):
        other = Journal.create(journal_path, run_id="20261130T000000Z", plan=fitting_plan(loaded).to_dict())
        other.mark("clients_off_at", 1764460800.0)
        other.set_status(RunStatus.INTERRUPTED)

    monkeypatch.setattr("migrator.verbs.apply._confirm_migration", the_other_apply_meanwhile)
    # apply asks Milvus its version before the run; the race is what is tested here, not Milvus.
    monkeypatch.setattr("migrator.verbs.apply.milvus_version", lambda deployment: "v2.3.5")
    result = run_cli(["apply", str(plan_file), "--yes"])
    assert result.exit_code == 3, result.stderr
    assert "an earlier migration is interrupted" in result.stderr, result.stderr
    kept = Journal.load(journal_path)
    assert kept.run_id == "20261130T000000Z" and kept.status == RunStatus.INTERRUPTED
    assert kept.marks.clients_off_at == 1764460800.0


def test_a_rollback_never_continues_from_a_journal_that_changed_before_it_took_the_lock(tmp_path, monkeypatch):
    from migrator.migration.journal import Journal, RunStatus
    from tests.support.playbooks import offline_playbook

    playbook = offline_playbook(tmp_path)
    journal_path = tmp_path / "state" / "journal.json"
    failed = Journal.create(journal_path, run_id="20261130T000000Z", plan=fitting_plan(load_playbook(playbook)).to_dict())
    failed.set_status(RunStatus.FAILED, error="boom")

    def another_rollback_finishes_meanwhile(env, plan, yes, **kwargs):
        other = Journal.load(journal_path)
        other.set_status(RunStatus.ROLLED_BACK)

    monkeypatch.setattr("migrator.verbs.apply._confirm_migration", another_rollback_finishes_meanwhile)
    result = run_cli(["rollback", "-p", str(playbook), "--yes"])
    assert result.exit_code == 3 and "changed while this command waited" in result.stderr, result.stderr
    assert Journal.load(journal_path).status == RunStatus.ROLLED_BACK


# --- a property: no plan shape makes apply write outside its state dir or run a foreign command --


@pytest.fixture(scope="module")
def two_deployments(tmp_path_factory):
    """The operator's deployment (an offline playbook only root could write) and a foreign one in
    a directory anyone may write, owned by another user, whose every command leaves a mark."""
    from tests.support.playbooks import offline_playbook

    root = tmp_path_factory.mktemp("trust-property")
    (root / "mine").mkdir()
    mine = offline_playbook(root / "mine")
    theirs, _plan_file, marker = foreign_deployment(root, "theirs")
    os.chmod(theirs.parent, 0o777)
    os.chown(theirs, NOBODY, NOBODY)
    victim = root / "victim.txt"
    victim.write_text("the operator's file\n")
    return {"root": root, "mine": load_playbook(mine), "theirs": load_playbook(theirs), "marker": marker,
            "victim": victim}


HOSTILE_PATHS = ["/", "/etc", "/etc/cron.d", "/usr/lib", "/var/lib", "/tmp", "/root", "/boot/x",
                 "/var/lib/milvus/../../../etc", "/proc/self/cwd", "relative/dir", "", "/var/lib/milvus/nats"]


def _plan_shapes(deployments):
    """A plan that fits one of the two playbooks, with up to three hostile edits, resealed."""
    from hypothesis import strategies as st

    mine, theirs, victim = deployments["mine"], deployments["theirs"], deployments["victim"]
    edits = st.one_of(
        st.tuples(st.just("playbook_path"), st.sampled_from([str(mine.path), str(theirs.path), "/etc/passwd",
                                                             str(victim), "/nonexistent.yaml"])),
        st.tuples(st.just("playbook_sha256"), st.sampled_from([mine.sha256, theirs.sha256, "0" * 64])),
        st.tuples(st.just("natsmq.server.storeDir"),
                  st.sampled_from([*HOSTILE_PATHS, str(victim.parent), str(mine.spec.migration.state_dir)])),
        st.tuples(st.just("natsmq.server.monitor.logFile"),
                  st.sampled_from(["/etc/passwd", "/root/.bashrc", str(victim), "/tmp/milvus/nats.log"])),
        st.tuples(st.just("config_target"), st.sampled_from(["/etc/passwd", str(victim)])),
        st.tuples(st.just("layer"), st.sampled_from(["/etc/passwd", str(victim)])),
        st.tuples(st.just("target_mq"), st.sampled_from(["rocksmq", "kafka"])),
    )
    return st.tuples(
        st.sampled_from(["mine", "theirs"]),
        st.lists(edits, max_size=3),
        st.sampled_from([["--dry-run"], ["--yes"], ["--yes", "--playbook", str(mine.path)],
                         ["--dry-run", "--playbook", str(mine.path)]]),
    )


def _hostile_plan(deployments, made_from: str, edits: list) -> Plan:
    plan = fitting_plan(deployments[made_from])
    for field, value in edits:
        if field in ("playbook_path", "playbook_sha256", "config_target"):
            setattr(plan, field, value)
            if field == "config_target":
                plan.isolation_target = value
        elif field == "target_mq":
            plan.target_mq = value
            plan.changes = {**plan.changes, "mq.type": value}
        elif field == "layer":
            plan.layers = {**plan.layers, value: "0" * 64}
        else:
            plan.changes = {**plan.changes, field: value}
    return plan


def test_no_plan_shape_writes_outside_the_state_dir_or_runs_a_foreign_command(two_deployments, monkeypatch):
    """Whatever a resealed plan says (another playbook, another digest, a system store dir or log
    file, a config file outside the config dir, another MQ), with or without --dry-run or the
    operator's --playbook: the foreign playbook's commands never run, nothing outside the
    operator's state dir is written, and the exit is a refusal or a failure (0 only for "nothing to do")."""
    from hypothesis import HealthCheck, example, given, settings

    # Milvus is asked its version before a run; say it answers, so that plans which pass every
    # check go on into the steps (which then meet no Milvus): the property must hold there too.
    monkeypatch.setattr("migrator.verbs.apply.milvus_version", lambda deployment: "v2.3.5")
    deployments = two_deployments
    root, marker, victim = deployments["root"], deployments["marker"], deployments["victim"]
    state_dir = str(deployments["mine"].spec.migration.state_dir)
    passwd = Path("/etc/passwd").read_bytes()

    def outside_the_state_dir() -> dict[str, bytes]:
        return {path: seen for path, seen in tree_snapshot(root).items() if not path.startswith(state_dir + "/")}

    @given(_plan_shapes(deployments))
    @example(("theirs", [], ["--dry-run"]))  # the plain attack: a plan that fits the foreign playbook
    @example(("theirs", [], ["--yes"]))
    @example(("theirs", [], ["--yes", "--playbook", str(deployments["mine"].path)]))
    @example(("mine", [("playbook_path", str(deployments["theirs"].path)),
                       ("playbook_sha256", deployments["theirs"].sha256)], ["--dry-run"]))
    @example(("mine", [("natsmq.server.storeDir", "/etc")], ["--yes"]))
    @example(("mine", [], ["--yes"]))  # the operator's own plan: it runs (and meets no Milvus)
    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    def check(shape):
        made_from, edits, flags = shape
        plan_file = root / "plan.json"
        _hostile_plan(deployments, made_from, edits).save(plan_file)
        before = outside_the_state_dir()
        result = run_cli(["apply", str(plan_file), *flags])
        nothing_to_do = result.exit_code == 0 and "nothing to do" in result.stdout
        assert nothing_to_do or result.exit_code in (1, 2, 3), (shape, result.stdout, result.stderr)
        assert "unexpected error" not in result.stderr, (shape, result.stderr)
        assert not marker.exists(), f"a foreign command ran: {shape}"
        assert outside_the_state_dir() == before, f"something was written outside the state dir: {shape}"
        assert victim.read_text() == "the operator's file\n" and Path("/etc/passwd").read_bytes() == passwd

    check()
