"""The plan's road, target store and MQ sources as a terminal shows them."""

from __future__ import annotations

from pathlib import Path

from migrator.cli.render import render_plan
from migrator.migration.road import Deployment, road_for
from tests.support.plans import make_plan


def _setting(key: str, raw: str, where: str, status: str = "wins", note: str = "") -> dict:
    return {"key": key, "raw": raw, "source": where, "where": {}, "status": status, "note": note}


def test_plan_text_shows_sources_store_and_road(tmp_path: Path) -> None:
    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: natsmq\n")
    plan = make_plan(tmp_path, layer)
    plan.source_mq, plan.target_mq, plan.milvus_version = "natsmq", "rocksmq", "v2.5.4"
    plan.facts = {
        "config_sources": [
            _setting("mq.type", "natsmq", "environment variable MQ_TYPE (env)"),
            _setting("mq.type", "rocksmq", f"{layer}:2:3", "overridden", "environment variable MQ_TYPE (env) wins"),
            _setting("natsmq.server.port", "4222", f"{layer}:9:5"),
            _setting("natsmq.server.storeDir", "/x", f"{layer}:10:5"),
        ],
        "target_store": {"kind": "rocksmq", "paths": ["/v/rdb_data", "/v/rdb_data_meta_kv"], "empty": False,
                         "action": "move-aside",
                         "contents": {"topics": 17, "messages": 1200, "bytes": 3 * 2**20, "bytes_on_disk": 2**21,
                                      "oldest_time": "2026-11-01T00:00:00+00:00",
                                      "newest_time": "2026-11-02T00:00:00+00:00", "topic_names": []}},
        "road": road_for("v2.5.4", (2, 5, 4), "natsmq", "rocksmq",
                         Deployment("process", False, None, "http://127.0.0.1:9091")).to_dict(),
    }
    text = render_plan(plan, None)
    assert "who sets mq.type and natsmq.*" in text
    assert "  mq.type = rocksmq  " in text and "[overridden: environment variable MQ_TYPE (env) wins]" in text
    assert "(and 2 natsmq key(s) set by one file each" in text and "natsmq.server.port" not in text
    assert ("target store (RocksMQ): /v/rdb_data + /v/rdb_data_meta_kv: NOT empty, 2.0 MiB on disk; "
            "apply moves it aside (kept) before the restart") in text
    assert "17 topic(s), 1200 message(s), 3.0 MiB of payload" in text
    assert "the road to Milvus 2.6 (Milvus v2.5.4, on natsmq now; tested live: Milvus 2.3.5 only" in text
    assert "1. [first] upgrade Milvus within 2.5 to 2.5.16 or later, keeping NATS" in text
    assert "2. [this plan] NATS -> RocksMQ with this tool" in text
    assert "AlterWAL: POST http://127.0.0.1:9091/management/wal/alter" in text
    assert "[ NO] docker compose standalone" in text and "[yes] the MQ is RocksMQ, not NATS" in text


def test_a_refused_2_6_plan_shows_no_empty_config_change(tmp_path: Path) -> None:
    layer = tmp_path / "milvus.yaml"
    layer.write_text("")
    plan = make_plan(tmp_path, layer)
    plan.config_target, plan.config_diff, plan.steps = "", "", []
    plan.facts = {"mq_pin": {"key": "by-dev/config/mqtype", "value": "rocksmq"}}
    text = render_plan(plan, None)
    assert "config change" not in text and "2.6 MQ pin by-dev/config/mqtype: rocksmq" in text
