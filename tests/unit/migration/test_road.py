"""The road off NATS before Milvus 2.6: which steps, in which order, and what 2.6 offers instead.

Milvus here is 2.3.5 (the sandbox), so the 2.5 and 2.6 rules run on versions passed in and on the
config shapes under tests/fixtures/road/ (tests/integration/test_road_live.py runs plan live)."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.config import load_layers
from migrator.config.layers import parse_release
from migrator.migration import preflight
from migrator.migration.road import Deployment, road_for
from migrator.playbook import load_playbook

ROAD = Path(__file__).parents[2] / "fixtures" / "road"
COMPOSE = Deployment("compose", True, "local", "http://milvus:9091")


def _steps(version: str, source: str, target: str, deployment: Deployment = COMPOSE) -> list[tuple[str, str]]:
    road = road_for(version, parse_release(version), source, target, deployment)
    assert road is not None
    return [(step.id, step.when) for step in road.steps]


def test_nats_on_2_5_below_2_5_16_upgrades_within_2_5_first() -> None:
    assert _steps("v2.5.4", "natsmq", "rocksmq") == [
        ("upgrade-within-2.5", "first"), ("nats-to-rocksmq", "this plan"), ("upgrade-to-2.6", "later"),
        ("alter-wal", "optional")]


def test_nats_on_2_5_16_switches_then_upgrades() -> None:
    assert _steps("v2.5.16", "natsmq", "rocksmq") == [
        ("nats-to-rocksmq", "this plan"), ("upgrade-to-2.6", "later"), ("alter-wal", "optional")]
    assert _steps("2.5.17-gpu", "natsmq", "natsmq")[0] == ("nats-to-rocksmq", "next")  # nothing to do: next is the way back


@pytest.mark.parametrize("version", ["v2.3.5-lite", "2.4.13"])
def test_nats_on_2_3_and_2_4_switches_before_the_upgrades(version: str) -> None:
    assert _steps(version, "natsmq", "rocksmq") == [
        ("nats-to-rocksmq", "this plan"), ("upgrade-to-road-start", "later"), ("upgrade-to-2.6", "later"),
        ("alter-wal", "optional")]


def test_going_to_nats_shows_the_way_back_before_2_6() -> None:
    assert _steps("v2.5.4", "rocksmq", "natsmq") == [
        ("to-nats", "this plan"), ("upgrade-within-2.5", "later"), ("nats-to-rocksmq", "later"),
        ("upgrade-to-2.6", "later"), ("alter-wal", "optional")]


def test_no_road_for_a_rocksmq_deployment_staying_there() -> None:
    assert road_for("2.4.13", (2, 4, 13), "rocksmq", "rocksmq", COMPOSE) is None


def test_alter_wal_preconditions_are_judged_on_the_deployment() -> None:
    road = road_for("v2.5.16", (2, 5, 16), "natsmq", "rocksmq", COMPOSE)
    assert road.alter_wal["url"] == "http://milvus:9091/management/wal/alter"
    assert road.alter_wal["body"] == {"target_wal_name": "woodpecker"}
    assert [c["met"] for c in road.alter_wal["preconditions"]] == [True, True, True, True]

    systemd = Deployment("systemd", False, None, "http://127.0.0.1:9091")
    unmet = road_for("v2.5.16", (2, 5, 16), "natsmq", "rocksmq", systemd).alter_wal["preconditions"]
    assert [c["met"] for c in unmet] == [False, False, False, True]
    assert "docker compose standalone only" in unmet[0]["detail"]
    assert "add `woodpecker.storage.type` to user.yaml" in unmet[2]["detail"]
    on_nats = road_for("2.6.0", (2, 6, 0), "natsmq", "natsmq", COMPOSE).alter_wal["preconditions"]
    assert on_nats[3]["met"] is False and "does not support natsmq" in on_nats[3]["detail"]


def test_the_road_reads_alter_wal_preconditions_from_the_2_6_shape(tmp_path: Path) -> None:
    """user.yaml's woodpecker.storage.type wins over milvus.yaml's; compose with an external etcd."""
    from migrator.migration.planner import road_deployment

    playbook = tmp_path / "pb.yaml"
    playbook.write_text(f"""\
version: 1
name: compose
config:
  dir: {ROAD / "2.6"}
runtime:
  kind: compose
  file: {tmp_path / "docker-compose.yml"}
migration:
  state_dir: {tmp_path / "state"}
""")
    effective = load_layers(ROAD / "2.6", "2.6.2", {}, None, check=False)
    deployment = road_deployment(load_playbook(playbook), effective)
    assert deployment == Deployment("compose", True, "local", "http://127.0.0.1:9091")


@pytest.mark.parametrize("version, message", [
    ("v2.2.14", "natsmq exists from 2.3.0"),
    ("v2.6.0", "pins its MQ in etcd at by-dev/config/mqtype (it holds 'rocksmq')"),
    ("2.7.1", "AlterWAL (POST /management/wal/alter {\"target_wal_name\": \"woodpecker\"})"),
])
def test_versions_outside_2_3_to_2_5_are_refused(version: str, message: str) -> None:
    (finding,) = preflight.version_findings(version, pin="rocksmq", pin_key="by-dev/config/mqtype")
    assert finding.level == "error" and message in finding.message


@pytest.mark.parametrize("version", ["v2.3.5-lite", "2.4.13", "v2.5.4", "v2.5.16"])
def test_versions_with_natsmq_pass(version: str) -> None:
    assert preflight.version_findings(version) == []


def test_road_findings() -> None:
    below = preflight.road_findings("v2.5.4", "natsmq", "rocksmq")
    assert [(f.level, f.key) for f in below] == [("warning", "milvus.version"), ("info", "road")]
    assert "upgrade within 2.5 to 2.5.16 or later first, keeping NATS" in below[0].message
    assert [(f.level, f.key) for f in preflight.road_findings("v2.5.16", "natsmq", "rocksmq")] == [("info", "road")]
    assert [(f.level, f.key) for f in preflight.road_findings("2.4.13", "natsmq", "rocksmq")] == [("info", "road")]
    (deprecated,) = preflight.road_findings("v2.3.5-lite", "rocksmq", "natsmq")
    assert deprecated.level == "warning" and "removed in 2.6" in deprecated.message
    assert preflight.road_findings("2.4.13", "rocksmq", "rocksmq") == []
    assert preflight.road_findings("2.6.0", "natsmq", "rocksmq") == []  # version_findings refuses 2.6


def test_a_2_6_plan_refuses_and_says_what_2_6_offers(tmp_path: Path) -> None:
    """plan on Milvus 2.6 (version passed in: the sandbox is 2.3.5) on the 2.6 compose shape."""
    import io
    import json

    from migrator.cli.render import render_plan
    from migrator.config import EtcdSource
    from migrator.context import Environment
    from migrator.migration.planner import refused_on_pinned_release
    from tests.support.etcd import fake_etcd

    playbook = tmp_path / "pb.yaml"
    playbook.write_text(f"""\
version: 1
name: compose
milvus:
  uri: http://milvus:19530
config:
  dir: {ROAD / "2.6"}
runtime:
  kind: compose
  file: {tmp_path / "docker-compose.yml"}
migration:
  state_dir: {tmp_path / "state"}
""")
    with fake_etcd({"by-dev/config/mqtype": "rocksmq"}) as endpoint:
        effective = load_layers(ROAD / "2.6", "v2.6.2", {"MQ_TYPE": "natsmq"}, EtcdSource(endpoint), check=False)
    env = Environment(stdout=io.StringIO(), stderr=io.StringIO(), stdin=None)
    plan = refused_on_pinned_release(env, load_playbook(playbook), effective, "v2.6.2", {}, "rocksmq")

    (error,) = plan.errors
    assert "pins its MQ in etcd at by-dev/config/mqtype (it holds 'rocksmq')" in error.message
    assert plan.source_mq == "rocksmq" and plan.steps == [] and plan.changes == {}
    assert plan.facts["mq_pin"] == {"key": "by-dev/config/mqtype", "value": "rocksmq"}
    assert [(s["key"], s["status"]) for s in plan.facts["config_sources"] if s["key"] == "mq.type"] == [
        ("mq.type", "wins"), ("mq.type", "overridden"), ("mq.type", "overridden"), ("mq.type", "overridden")]
    road = plan.facts["road"]
    assert [step["id"] for step in road["steps"]] == ["alter-wal"]
    assert road["alter_wal"]["url"] == "http://milvus:9091/management/wal/alter"
    assert [c["met"] for c in road["alter_wal"]["preconditions"]] == [True, True, True, True]
    json.dumps(plan.to_dict())  # the plan file can be written
    text = render_plan(plan, None)
    assert "config change" not in text and "2.6 MQ pin by-dev/config/mqtype: rocksmq" in text
    assert "[yes] woodpecker.storage.type set (local or minio) in user.yaml: set to local" in text
