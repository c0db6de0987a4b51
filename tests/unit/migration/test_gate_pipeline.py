"""Which gate a run uses and the steps that follow from it (migration/gate.py, steps/pipeline.py):
the firewall where this machine and the deployment shape allow it, port isolation otherwise; the
rollback's shape follows from what the journal says started, never from what finished."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from migrator.migration import gate, preflight
from migrator.migration.journal import Journal
from migrator.migration.steps.pipeline import forward_steps, rollback_steps
from migrator.runtime import firewall
from tests.support.plans import make_plan

FIREWALL = {"kind": "firewall", "tool": "nft", "why": "nft in Milvus's network namespace"}


@pytest.fixture
def nft_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(firewall, "usable_tool", lambda netns=None: ("nft", "nft answers"))


def test_the_firewall_where_the_host_runs_milvus_and_can_set_a_rule(nft_usable: None) -> None:
    for kind in gate.HOST_NETWORK_KINDS:
        choice = gate.choose("auto", kind, "http://127.0.0.1:19530")
        assert (choice.kind, choice.tool) == (gate.GateKind.FIREWALL, "nft")


@pytest.mark.parametrize(("setting", "kind", "uri", "why"), [
    ("isolation", "process", "http://127.0.0.1:19530", "the playbook asks for port isolation"),
    ("auto", "docker", "http://127.0.0.1:19530", "new network namespace at every start"),
    ("auto", "compose", "http://127.0.0.1:19530", "new network namespace at every start"),
    ("auto", "systemd", "http://[::1]:19530", "is IPv6"),
])
def test_port_isolation_otherwise_and_why(nft_usable: None, setting: str, kind: str, uri: str, why: str) -> None:
    choice = gate.choose(setting, kind, uri)
    assert choice.kind == gate.GateKind.ISOLATION and why in choice.why


def test_no_firewall_tool_means_isolation_and_a_playbook_that_insists_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(firewall, "usable_tool", lambda netns=None: (None, "nft is not installed; iptables is not installed"))
    choice = gate.choose("firewall", "process", "http://127.0.0.1:19530")
    assert choice.kind == gate.GateKind.ISOLATION and "nft is not installed" in choice.why
    findings = preflight.gate_findings("firewall", choice)
    assert [(f.level, f.key) for f in findings] == [("error", "migration.gate")]
    assert [f.level for f in preflight.gate_findings("auto", choice)] == ["info"]


def test_the_rule_covers_the_client_and_metrics_ports_from_the_playbook() -> None:
    choice = gate.GateChoice(gate.GateKind.FIREWALL, "nft", "")
    rule = gate.rule_for("20261206T101010Z", choice, "http://root:secret/x@10.0.0.5:29530", "http://10.0.0.5:29091")
    assert rule.ports == (29091, 29530) and firewall.is_exempt_address(rule.exempt)
    assert gate.client_address("http://root:secret/x@10.0.0.5:29530") == ("10.0.0.5", 29530)


def _plan(tmp_path: Path, gate_fact: dict):
    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    return dataclasses.replace(make_plan(tmp_path, layer), gate=gate_fact)


PLAYBOOK = SimpleNamespace(migration=SimpleNamespace(backup=False, cleanup=False))


def test_behind_the_firewall_one_restart_and_no_reload_in_the_window(tmp_path: Path) -> None:
    ids = [step.id for step in forward_steps(_plan(tmp_path, FIREWALL), PLAYBOOK)]
    assert ids == ["preflight", "hold-compaction", "close-gate", "flush-all", "stop", "drained", "rewrite-config",
                   "move-target-aside", "start", "expire-sessions", "confirm", "healthy", "verify", "open-config",
                   "open-gate", "check-writes", "readable"]


def test_behind_isolation_three_restarts_each_removing_the_dead_sessions_first(tmp_path: Path) -> None:
    ids = [step.id for step in forward_steps(_plan(tmp_path, {"kind": "isolation", "tool": None, "why": ""}), PLAYBOOK)]
    assert [i for i in ids if i.endswith("start")] == ["source-start", "start", "public-start"]
    for prefix in ("source-", "", "public-"):
        assert ids.index(f"{prefix}expire-sessions") == ids.index(f"{prefix}start") + 1
        assert ids.index(f"{prefix}confirm") == ids.index(f"{prefix}expire-sessions") + 1


def _rollback_ids(tmp_path: Path, started: list[str], done: list[str]) -> list[str]:
    journal = Journal.create(tmp_path / "journal.json", run_id="20261206T101010Z",
                             plan=_plan(tmp_path, FIREWALL).to_dict())
    for step_id in started:
        journal.begin(step_id)
        if step_id in done:
            journal.finish(step_id, 1.0)
    ctx = SimpleNamespace(plan=_plan(tmp_path, FIREWALL), journal=journal)
    return [step.id for step in rollback_steps(ctx)]


FORWARD = ["preflight", "hold-compaction", "close-gate", "flush-all", "stop", "drained", "rewrite-config",
           "move-target-aside", "start", "expire-sessions", "confirm", "healthy", "verify", "open-config",
           "open-gate", "check-writes"]


def test_before_the_flush_the_rollback_only_opens_the_gate_again(tmp_path: Path) -> None:
    assert _rollback_ids(tmp_path, FORWARD[:3], FORWARD[:2]) == \
        ["rollback-restore-config", "rollback-open-gate", "rollback-check-writes"]


@pytest.mark.parametrize("started", [4, 5])  # a FlushAll that failed (Milvus frozen?); a stop cut half-way
def test_once_the_flush_began_the_source_starts_again_on_its_own_store(tmp_path: Path, started: int) -> None:
    ids = _rollback_ids(tmp_path, FORWARD[:started], FORWARD[:started - 1])
    assert ids[0] == "rollback-stop" and "rollback-start" in ids
    assert ids[-2:] == ["rollback-open-gate", "rollback-check-writes"]
    assert "rollback-move-source-aside" not in ids  # the source's own store: its checkpoints are its own


def test_once_the_target_started_the_source_starts_on_an_empty_store_and_is_verified(tmp_path: Path) -> None:
    ids = _rollback_ids(tmp_path, FORWARD[:9], FORWARD[:8])
    assert ids.index("rollback-move-source-aside") < ids.index("rollback-start") < ids.index("rollback-verify")
    assert "rollback-flush-target" not in ids  # no client reached the target


def test_a_gate_opening_that_began_means_clients_may_have_written_to_the_target(tmp_path: Path) -> None:
    # open-gate began and was cut off: the rule may be gone already, clients may have written.
    ids = _rollback_ids(tmp_path, FORWARD[:15], FORWARD[:14])
    flush = ["rollback-hold-target", "rollback-close-gate", "rollback-revive-target", "rollback-flush-target",
             "rollback-stop", "rollback-drained"]
    assert ids[:len(flush)] == flush
    assert ids.index("rollback-drained") < ids.index("rollback-switch-config") < ids.index("rollback-verify")


def test_behind_isolation_a_public_start_that_began_means_the_target_is_flushed_first(tmp_path: Path) -> None:
    isolation = {"kind": "isolation", "tool": None, "why": ""}
    plan = _plan(tmp_path, isolation)
    forward = [step.id for step in forward_steps(plan, PLAYBOOK)]
    journal = Journal.create(tmp_path / "journal.json", run_id="20261206T101010Z", plan=plan.to_dict())
    for step_id in forward[:forward.index("public-start") + 1]:
        journal.begin(step_id)
        if step_id != "public-start":  # cut off half-way: clients may have written already
            journal.finish(step_id, 1.0)
    ids = [step.id for step in rollback_steps(SimpleNamespace(plan=plan, journal=journal))]
    assert ids.index("rollback-flush-target") < ids.index("rollback-stop") < ids.index("rollback-verify")


@pytest.mark.parametrize(("gate_fact", "held_by", "live"), [
    (FIREWALL, "flush-all", False), ({"kind": "isolation", "tool": None, "why": ""}, "snapshot", True),
])
def test_each_gate_names_the_step_that_recorded_the_collections_and_that_step_records_them(
        tmp_path: Path, gate_fact: dict, held_by: str, live: bool) -> None:
    # `verify`, the report and the readable step read the collections from this step: a name that
    # is not a step of the pipeline (make demo's crash) fails here.
    from migrator.migration.steps.pipeline import snapshot_step

    found = snapshot_step(gate_fact)
    assert (found.step_id, found.live_rows) == (held_by, live)
    assert held_by in [step.id for step in forward_steps(_plan(tmp_path, gate_fact), PLAYBOOK)]
    assert snapshot_step(_plan(tmp_path, gate_fact).to_dict()["gate"]) == found
