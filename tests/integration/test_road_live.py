"""The road's live parts against real Milvus 2.3.5 processes: target stores a real Milvus wrote, and
etcd config keys in a real etcd (the sandbox's embedded one, and an external etcd where there is one).

Judged by independent means: the store's own files (directory listing, meta.inf, the RocksDB
meta read with rocksdict), and the `try to init mq` line of Milvus's own log. 2.5/2.6 behaviour
cannot run here (the sandbox is 2.3.5): the 2.6 reading of the pin is checked as the tool's reading
of a real etcd, with the version passed in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrator.errors import ExitCode
from migrator.util.ports import free_ports
from tests.support.cli import run_cli
from tests.support.etcd import etcd_delete, etcd_get, etcd_put
from tests.support.sandbox import Sandbox, start_sandbox, stop_sandbox

pytestmark = pytest.mark.milvus

PIN = "by-dev/config/mqtype"


@dataclass
class Stores:
    nats: Sandbox  # stopped; `PIN=rocksmq` was put into its embedded etcd while it ran
    rocks: Sandbox  # stopped


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    """A NATS store and a RocksMQ, each written by a real Milvus that is stopped again."""
    root = tmp_path_factory.mktemp("road")
    try:
        nats = start_sandbox(root / "nats", mq="natsmq")
        etcd_put(_etcd(nats), PIN, "rocksmq")
        stop_sandbox(root / "nats")
        rocks = start_sandbox(root / "rocks")
        stop_sandbox(root / "rocks")
        yield Stores(nats, rocks)
    finally:
        stop_sandbox(root / "nats")
        stop_sandbox(root / "rocks")


def _etcd(sandbox: Sandbox) -> str:
    return f"127.0.0.1:{sandbox.ports['etcd_client']}"


def _nats_store(sandbox: Sandbox) -> Path:
    return sandbox.dir / "data" / "nats"


def _logged_mq_since(log: Path, offset: int) -> list[str]:
    """mqType of every `try to init mq` line Milvus wrote after `offset`."""
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    return re.findall(r'"try to init mq".*\[mqType=(\w+)\]', text)


def test_plan_reports_a_real_nats_store_and_that_it_is_moved_aside(milvus_sandbox: Sandbox, stores: Stores) -> None:
    store = _nats_store(stores.nats)
    result = run_cli(["--output", "json", "plan", "--playbook", str(milvus_sandbox.playbook),
                      "--set", f"natsmq.server.storeDir={store}", "--set", "natsmq.server.retention.maxAge=60"])
    assert result.exit_code == ExitCode.OK, result.stderr
    plan = result.json()
    fact = plan["facts"]["target_store"]
    assert (fact["kind"], fact["paths"], fact["empty"], fact["action"]) == ("natsmq", [str(store)], False, "move-aside")

    streams_dir = store / "jetstream" / "$G" / "streams"
    on_disk = {name: json.loads((streams_dir / name / "meta.inf").read_text()) for name in os.listdir(streams_dir)}
    assert "by-dev-rootcoord-dml_0" in on_disk
    reported = {s["name"]: s for s in fact["contents"]["streams"]}
    assert sorted(reported) == sorted(on_disk)
    assert all(reported[name]["max_age_ns"] == meta["max_age"] == 4320 * 60 * 10**9 for name, meta in on_disk.items())
    msgs_bytes = sum(f.stat().st_size for name in on_disk for f in (streams_dir / name / "msgs").iterdir())
    assert sum(s["bytes_on_disk"] for s in reported.values()) == msgs_bytes > 0

    findings = {(f["level"], f["key"]): f["message"] for f in plan["findings"]}
    assert "apply moves it aside" in findings[("warning", "natsmq.server.storeDir")]
    assert "moved aside, so NATS creates its streams anew" in findings[("info", "natsmq.server.retention")]
    assert [step["id"] for step in plan["facts"]["road"]["steps"]][:2] == ["to-nats", "nats-to-rocksmq"]


def test_back_to_rocksmq_on_a_real_nats_milvus(stores: Stores, tmp_path: Path) -> None:
    """The NATS sandbox runs again with the other Milvus's RocksMQ where its rocksmq.path points: plan
    --to rocksmq reports that store; and Milvus ignored the etcd key put while it last ran."""
    nats, rocks = stores.nats, stores.rocks
    for suffix in ("", "_meta_kv"):
        shutil.copytree(f"{rocks.rocksmq_path}{suffix}", f"{nats.rocksmq_path}{suffix}", dirs_exist_ok=True)
    log = nats.dir / "logs" / "stdout.log"
    offset = log.stat().st_size
    start_sandbox(nats.dir)
    try:
        # etcd.use.embed is true in the sandbox: Milvus 2.3.5 does not read its etcd's config keys.
        assert etcd_get(_etcd(nats), PIN) == "rocksmq"
        assert set(_logged_mq_since(log, offset)) == {"natsmq"}

        result = run_cli(["--output", "json", "plan", "--playbook", str(nats.playbook), "--to", "rocksmq"])
        assert result.exit_code == ExitCode.OK, result.stderr
        plan = result.json()
        fact = plan["facts"]["target_store"]
        assert fact["paths"] == [str(nats.rocksmq_path), f"{nats.rocksmq_path}_meta_kv"]
        assert (fact["kind"], fact["empty"], fact["action"]) == ("rocksmq", False, "move-aside")
        assert fact["contents"]["topic_names"] == _topics(nats.rocksmq_path, tmp_path) != []
        assert next((s["id"], s["when"]) for s in plan["facts"]["road"]["steps"]) == ("nats-to-rocksmq", "this plan")
        assert any(f["key"] == "road" and f["level"] == "info" for f in plan["findings"])

        show = run_cli(["--output", "json", "config", "show", "--config-dir", str(nats.config_dir), "--version",
                        "2.3.5", "--etcd", _etcd(nats)], environ={})
        assert show.exit_code == ExitCode.OK, show.stderr
        data = show.json()
        assert data["mq_type"] == "natsmq" and data["mq_pin"]["value"] == "rocksmq"
        etcd_sources = [s for s in data["sources"] if s["where"]["kind"] == "etcd"]
        assert [(s["key"], s["status"]) for s in etcd_sources] == [("mq.type", "ignored")]
    finally:
        stop_sandbox(nats.dir)


def test_the_2_6_pin_read_from_a_real_etcd(stores: Stores) -> None:
    """The sandbox's etcd holds `by-dev/config/mqtype`; read as 2.6 would (version passed in), it is the MQ."""
    nats = stores.nats
    start_sandbox(nats.dir)
    try:
        etcd_put(_etcd(nats), "by-dev/config/natsmq/server/port", "4999")
        show = run_cli(["--output", "json", "config", "show", "--config-dir", str(nats.config_dir), "--version",
                        "v2.6.0", "--etcd", _etcd(nats)], environ={})
        assert show.exit_code == ExitCode.OK, show.stderr
        data = show.json()
        assert data["mq_type"] == "rocksmq" and data["mq_pin"]["key"] == PIN
        assert [(s["raw"], s["status"]) for s in data["sources"] if s["key"] == "mq.type"] == [
            ("rocksmq", "wins"), ("natsmq", "overridden")]
        assert next((s["raw"], s["status"]) for s in data["sources"] if s["key"] == "natsmq.server.port") == (
            "4999", "ignored")
        before = nats.config_dir.joinpath("milvus.yaml").read_bytes()
        refused = run_cli(["config", "set", "--config-dir", str(nats.config_dir), "--version", "v2.6.0",
                           "--etcd", _etcd(nats), "--to", "rocksmq", "--write"], environ={})
        assert refused.exit_code == ExitCode.REFUSED and f"{PIN} (it holds 'rocksmq')" in refused.stderr
        assert nats.config_dir.joinpath("milvus.yaml").read_bytes() == before
    finally:
        etcd_delete(_etcd(nats), "by-dev/config/natsmq/server/port")
        stop_sandbox(nats.dir)


@pytest.mark.skipif(shutil.which("etcd") is None, reason="needs an etcd binary for an external etcd")
def test_milvus_obeys_config_mqtype_in_an_external_etcd_as_the_tool_says(stores: Stores, tmp_path: Path) -> None:
    """With an external etcd (etcd.use.embed: false) Milvus formats `config/mqtype` to mq.type: the
    key 2.6 pins its MQ in is an mq.type override to 2.3.5 too. The tool must say the same."""
    rocks = stores.rocks
    client, peer = free_ports(2)
    endpoint = f"127.0.0.1:{client}"
    etcd = subprocess.Popen(
        ["etcd", "--data-dir", str(tmp_path / "etcd"), "--listen-client-urls", f"http://{endpoint}",
         "--advertise-client-urls", f"http://{endpoint}", "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    milvus_yaml = rocks.config_dir / "milvus.yaml"
    original = milvus_yaml.read_text()
    try:
        _wait_for_etcd(endpoint)
        etcd_put(endpoint, PIN, "natsmq")
        external = re.sub(r"(?m)^  endpoints: .*$", f"  endpoints: {endpoint}", original, count=1)
        milvus_yaml.write_text(external.replace("    embed: true", "    embed: false", 1))

        show = run_cli(["--output", "json", "config", "show", "--config-dir", str(rocks.config_dir), "--version",
                        "2.3.5", "--etcd", endpoint], environ={})
        assert show.exit_code == ExitCode.OK, show.stderr
        assert show.json()["mq_type"] == "natsmq"
        assert [(s["source"].split(":")[0], s["status"]) for s in show.json()["sources"] if s["key"] == "mq.type"] == [
            (f"etcd key {PIN}", "wins"), (str(milvus_yaml), "overridden")]

        log = rocks.dir / "logs" / "stdout.log"
        offset = log.stat().st_size
        start_sandbox(rocks.dir)
        assert set(_logged_mq_since(log, offset)) == {"natsmq"}
    finally:
        stop_sandbox(rocks.dir)
        milvus_yaml.write_text(original)
        etcd.terminate()
        etcd.wait(timeout=30)


def _wait_for_etcd(endpoint: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            etcd_get(endpoint, "probe")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _topics(rocksmq_path: Path, scratch: Path) -> list[str]:
    """Topic names from the RocksMQ meta's `topic_id/` keys, read here with rocksdict from a copy
    (rocksdict writes a file into what it opens)."""
    from rocksdict import AccessType, Options, Rdict

    copy = shutil.copytree(f"{rocksmq_path}_meta_kv", scratch / "meta_kv")
    meta = Rdict(str(copy), Options(raw_mode=True), access_type=AccessType.read_only())
    try:
        # keys(): an Rdict has no __iter__, and Python's fallback asks meta[0], which raw mode refuses.
        keys = meta.keys()
        return sorted(key[len(b"topic_id/"):].decode() for key in keys if key.startswith(b"topic_id/"))
    finally:
        meta.close()
