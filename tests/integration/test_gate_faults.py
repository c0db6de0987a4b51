"""The faults the firewall gate's checks exist for, injected for real into a real Milvus while
clients write, each refusing the switch (decision 0022): a count that drops, a write acknowledged
after the FlushAll (a flush that never reached storage), a checkpoint that did not move, a gate
opened behind the tool's back (a client that can still write), and a rule left behind by a
killed run. Judged by the clients' own ledgers, by `nft` and by connections of the test's own,
never by the tool's report.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from migrator.migration.journal import Journal
from migrator.runtime import firewall
from migrator.runtime.netns import relay
from migrator.verbs import sandbox as lifecycle
from tests.support.cli import run_cli, run_tool
from tests.support.ledger import Clients
from tests.support.sandbox import Sandbox, quiet_env, use_gate

pytestmark = pytest.mark.milvus


def clients(sandbox: Sandbox, tag: str) -> Clients:
    return Clients(sandbox.uri, f"http://127.0.0.1:{sandbox.ports['metrics']}", tag)


def journal_of(sandbox: Sandbox) -> Journal:
    journal = Journal.load(sandbox.dir / "migrate" / "journal.json")
    assert journal is not None
    return journal


@contextmanager
def behind_the_gate(sandbox: Sandbox) -> Iterator[str]:
    """A uri through the closed gate: the test's own relay from the run's exempt address."""
    from pymilvus import MilvusClient

    rule = firewall.GateRule.checked(journal_of(sandbox).marks.gate, where="journal")
    with relay(os.getpid(), sandbox.ports["proxy"], what="the test's way in", source=rule.exempt) as address:
        client = MilvusClient(uri=f"http://{address}", timeout=30, dedicated=True)
        try:
            yield client
        finally:
            client.close()


def public_port_refuses(sandbox: Sandbox) -> bool:
    try:
        socket.create_connection(("127.0.0.1", sandbox.ports["proxy"]), timeout=2).close()
    except OSError:
        return True
    return False


def make_collection(sandbox: Sandbox, name: str, partitions: tuple[str, ...] = ()) -> None:
    """A loaded collection of the test's own with 100 rows per partition, flushed."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=sandbox.uri, timeout=60, dedicated=True)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    for number, partition in enumerate(partitions or ("_default",)):
        if partition != "_default":
            client.create_partition(name, partition)
        client.insert(name, [{"id": number * 1000 + i, "vector": [0.1] * 4} for i in range(100)],
                      partition_name=partition)
    client.flush(name)
    client.close()


def failed_step(events: list[dict]) -> dict:
    return next(event for event in events if event.get("event") == "step.failed")


def pause_the_tool_at(step: str, action) -> tuple:
    """An on_event hook: when `step` ends, the tool is frozen (SIGSTOP), `action()` runs, the tool goes on."""
    done: list[bool] = []

    def hook(event: dict, process: subprocess.Popen) -> None:
        if event.get("event") == "step.end" and event.get("step") == step and not done:
            process.send_signal(signal.SIGSTOP)
            try:
                action()
            finally:
                done.append(True)
                process.send_signal(signal.SIGCONT)

    return hook, done


def test_a_count_that_drops_refuses_the_switch(fresh_sandbox: Sandbox) -> None:
    use_gate(fresh_sandbox, "firewall")
    make_collection(fresh_sandbox, "victim", ("p1", "p2"))

    def drop_a_partition() -> None:  # rows vanish between the FlushAll on the source and verify
        with behind_the_gate(fresh_sandbox) as client:
            client.release_partitions("victim", ["p2"])
            client.drop_partition("victim", "p2")
            # The datanode drops p2's segments when it consumes the DropPartition message; the tool,
            # frozen now, kills the source 0 s after it goes on, so wait until datacoord's stored
            # rows show the drop (else the message is switched away unconsumed and no count drops).
            until = time.monotonic() + 60
            while int(client.get_collection_stats("victim")["row_count"]) != 100:
                assert time.monotonic() < until, "datacoord never counted the dropped partition's rows out"
                time.sleep(0.2)

    hook, injected = pause_the_tool_at("flush-all", drop_a_partition)
    with clients(fresh_sandbox, "drop") as load:
        code, events = run_tool("apply", "--playbook", str(fresh_sandbox.playbook), "--yes", on_event=hook)
        # The rows are gone for good: the rollback's own verify finds them missing too and does not
        # let clients back on a Milvus that lost rows (exit 4); the operator decides.
        assert injected and code == 4, events[-3:]
        failed = failed_step(events)
        assert failed["step"] == "verify" and "default.victim: 200 before, 100 after" in failed["error"], failed
        rollback_failed = [e for e in events if e.get("event") == "step.failed" and e["step"] == "rollback-verify"]
        assert rollback_failed and "default.victim: 200 before, 100 after" in rollback_failed[0]["error"]
        assert public_port_refuses(fresh_sandbox)
        allowed = run_cli(["writes", "allow", "--playbook", str(fresh_sandbox.playbook), "--yes"])
        assert allowed.exit_code == 0, allowed.stdout + allowed.stderr
        problems = load.judge()
    assert problems == []
    assert lifecycle.status(quiet_env(), fresh_sandbox.dir).mq_config == "rocksmq"


def test_a_write_acknowledged_after_the_flush_refuses_the_switch_and_is_kept(fresh_sandbox: Sandbox) -> None:
    """A write Milvus acknowledged after the FlushAll's timestamp is in no segment: the stopped
    store shows it (the drained check), the switch is refused, and the source replays it."""
    use_gate(fresh_sandbox, "firewall")
    make_collection(fresh_sandbox, "late")
    acknowledged: list[int] = []

    def write_after_the_flush() -> None:
        with behind_the_gate(fresh_sandbox) as client:
            ids = list(range(50_000, 50_020))
            client.insert("late", [{"id": i, "vector": [0.2] * 4} for i in ids])
            acknowledged.extend(ids)

    hook, injected = pause_the_tool_at("flush-all", write_after_the_flush)
    with clients(fresh_sandbox, "late") as load:
        code, events = run_tool("apply", "--playbook", str(fresh_sandbox.playbook), "--yes", on_event=hook)
        problems = load.judge()
    assert injected and acknowledged and code == 1, events[-3:]
    failed = failed_step(events)
    assert failed["step"] == "drained" and "newer than its checkpoint" in failed["error"], failed
    assert problems == []
    from pymilvus import MilvusClient

    client = MilvusClient(uri=fresh_sandbox.uri, timeout=60, dedicated=True)
    found = client.query("late", filter=f"id in {acknowledged}", output_fields=["id"], consistency_level="Strong")
    assert sorted(row["id"] for row in found) == acknowledged


def _etcd_put(endpoint: str, key: str, value: bytes) -> None:
    body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                       "value": base64.b64encode(value).decode()}).encode()
    urllib.request.urlopen(urllib.request.Request(endpoint.rstrip("/") + "/v3/kv/put", data=body), timeout=5).read()


def test_a_checkpoint_that_did_not_move_refuses_the_switch(fresh_sandbox: Sandbox) -> None:
    """One live channel's checkpoint is held at its position before the switch (written back into
    etcd again and again while verify looks): verify refuses, the rollback brings RocksMQ back."""
    from migrator.milvus.etcd import read_prefix

    use_gate(fresh_sandbox, "firewall")
    playbook = fresh_sandbox.playbook
    playbook.write_text(playbook.read_text().replace("  cleanup: false", "  cleanup: false\n  deadlines: {verify_s: 25}"))
    endpoint = f"http://127.0.0.1:{fresh_sandbox.ports['etcd_client']}"
    prefix = "by-dev/meta/datacoord-meta/channel-cp/"
    stale: dict[str, bytes] = {}
    holding = threading.Event()
    stopped = threading.Event()
    articles = _collection_id(fresh_sandbox.uri, "articles")

    def hold() -> None:
        key, value = next(iter(stale.items()))
        while not stopped.is_set():
            if holding.is_set():
                with suppress(OSError):
                    _etcd_put(endpoint, key, value)
            time.sleep(0.05)

    def keep_the_position_before_the_switch() -> None:
        stale.update({k: v for k, v in read_prefix(endpoint, prefix) if k.endswith(f"_{articles}v0")})
        threading.Thread(target=hold, daemon=True).start()

    pause, _ = pause_the_tool_at("flush-all", keep_the_position_before_the_switch)

    def on_event(event: dict, process: subprocess.Popen) -> None:
        pause(event, process)
        step, kind = event.get("step"), event.get("event")
        if kind == "step.end" and step == "healthy":
            holding.set()
        if kind == "rollback.start":
            holding.clear()

    try:
        with clients(fresh_sandbox, "stale") as load:
            code, events = run_tool("apply", "--playbook", str(playbook), "--yes", on_event=on_event)
            problems = load.judge()
    finally:
        stopped.set()
    assert stale and code == 1, events[-3:]
    failed = failed_step(events)
    assert failed["step"] == "verify" and "checkpoint not moved since the switch" in failed["error"], failed
    assert problems == []
    assert lifecycle.status(quiet_env(), fresh_sandbox.dir).mq_config == "rocksmq"


def _collection_id(uri: str, name: str) -> int:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, timeout=60, dedicated=True)
    try:
        return int(client.describe_collection(name)["collection_id"])
    finally:
        client.close()


def test_a_gate_opened_behind_the_tool_s_back_refuses_the_switch(fresh_sandbox: Sandbox) -> None:
    """Someone reloads the firewall while the gate is closed: a client can write again. The next
    step sees the gate does not hold and refuses; nothing was switched, nothing is lost."""
    use_gate(fresh_sandbox, "firewall")
    reopened: list[float] = []

    def remove_the_rule(event: dict, process: subprocess.Popen) -> None:
        if event.get("event") == "step.end" and event.get("step") == "close-gate" and not reopened:
            process.send_signal(signal.SIGSTOP)
            rule = firewall.GateRule.checked(journal_of(fresh_sandbox).marks.gate, where="journal")
            firewall.remove(rule)
            reopened.append(time.time())
            time.sleep(2.0)  # long enough for the clients to write again, as a client outside sees
            process.send_signal(signal.SIGCONT)

    with clients(fresh_sandbox, "hole") as load:
        code, events = run_tool("apply", "--playbook", str(fresh_sandbox.playbook), "--yes", on_event=remove_the_rule)
        written_in_the_hole = load.acknowledged_after(reopened[0]) if reopened else 0
        problems = load.judge()
    assert reopened and code == 1, events[-3:]
    assert written_in_the_hole > 0  # the fault is real: a client outside the tool wrote while it was "closed"
    failed = failed_step(events)
    assert failed["step"] == "flush-all" and "does not hold" in failed["error"], failed
    assert problems == []
    assert not public_port_refuses(fresh_sandbox)  # the rollback opened the gate again


def test_a_rule_left_by_a_killed_run_is_reported_and_removed(fresh_sandbox: Sandbox) -> None:
    use_gate(fresh_sandbox, "firewall")

    def kill_after_the_gate(event: dict, process: subprocess.Popen) -> None:
        if event.get("event") == "step.end" and event.get("step") == "close-gate":
            process.send_signal(signal.SIGKILL)

    code, events = run_tool("apply", "--playbook", str(fresh_sandbox.playbook), "--yes", on_event=kill_after_the_gate)
    assert code == -signal.SIGKILL, events[-3:]
    rule = firewall.GateRule.checked(journal_of(fresh_sandbox).marks.gate, where="journal")
    listed = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    if rule.tool == firewall.NFT:
        assert f"table inet {rule.name}" in listed  # the kernel still holds it
    assert public_port_refuses(fresh_sandbox)
    status = run_cli(["--output", "json", "status", "--playbook", str(fresh_sandbox.playbook)])
    assert status.exit_code == 4
    assert status.json()["gate"]["closed_now"] is True and status.json()["writes_denied"] is True
    allowed = run_cli(["--output", "json", "writes", "allow", "--playbook", str(fresh_sandbox.playbook), "--yes"])
    assert allowed.exit_code == 0, allowed.stdout + allowed.stderr
    assert "removed the firewall rule" in allowed.json()["gate"]
    assert not firewall.installed(rule) and not public_port_refuses(fresh_sandbox)
    # Writes were allowed by hand: the run cannot resume, its rollback finishes cleanly.
    code, events = run_tool("rollback", "--playbook", str(fresh_sandbox.playbook), "--yes")
    assert code == 0, events[-3:]
    assert journal_of(fresh_sandbox).status == "rolled-back"
