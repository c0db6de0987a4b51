"""Real Milvus 2.3.5 sandboxes for tests: start one in a directory, always bring it down."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from migrator.context import Environment


@dataclass
class Sandbox:
    dir: Path
    uri: str
    playbook: Path
    config_dir: Path
    rocksmq_path: Path
    ports: dict[str, int]


def quiet_env() -> Environment:
    import io

    return Environment(stdout=io.StringIO(), stderr=io.StringIO(), stdin=None)


def start_sandbox(root: Path, mq: str = "rocksmq") -> Sandbox:
    from migrator.verbs import sandbox as lifecycle

    lifecycle.up(quiet_env(), root, mq=mq)
    layout, state = lifecycle.load(root)
    return Sandbox(
        dir=layout.root,
        uri=f"http://127.0.0.1:{state.ports['proxy']}",
        playbook=layout.playbook,
        config_dir=layout.config_dir,
        rocksmq_path=layout.rocksmq_path,
        ports=state.ports,
    )


def stop_sandbox(root: Path) -> None:
    """Bring a test's sandbox down; if `sandbox down` fails, kill what is left and say so (the test
    run must not leave a Milvus behind, nor hide that it could not stop one)."""
    from migrator.verbs import sandbox as lifecycle

    if not (root / "sandbox.json").exists():
        return  # it never got as far as being created
    remove_gate_left_by(root)
    try:
        lifecycle.down(quiet_env(), root, timeout_s=3.0)  # test data is disposable: no graceful wait
    except Exception as error:
        layout, state = lifecycle.load(root)
        pid = lifecycle.runtime_for(layout, state).running_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"`sandbox down` of {root} failed (pid {pid} killed): {error}") from error


def a_user_write_is_visible(sandbox: Sandbox, row_id: int) -> bool:
    """An insert into a user collection (the seed's shop.reviews) is acknowledged and a Strong query
    sees it; the row is deleted again. The operator's check, not the tool's probe."""
    from migrator.milvus.client import MilvusAdapter

    with MilvusAdapter.connect(sandbox.uri, timeout=60) as milvus:
        client = milvus.client("shop")
        client.insert("reviews", [{"id": row_id, "vector": [0.1] * 8, "title": "after", "price": 1.0}])
        seen = client.query("reviews", filter=f"id == {row_id}", output_fields=["id"], consistency_level="Strong")
        client.delete("reviews", filter=f"id == {row_id}")
    return [row["id"] for row in seen] == [row_id]


def use_gate(sandbox: Sandbox, kind: str) -> None:
    """Make the sandbox's playbook ask for a gate (`migration.gate`: firewall or isolation); skip the
    test when this machine cannot set a firewall and the test asks for one."""
    from migrator.runtime import firewall

    if kind == "firewall":
        tool, why = firewall.usable_tool()
        if tool is None:
            import pytest

            pytest.skip(f"no firewall gate on this machine: {why}")
    text = sandbox.playbook.read_text()
    assert "\n  cleanup: false\n" in text, "the sandbox playbook template changed"
    sandbox.playbook.write_text(text.replace("\n  cleanup: false\n", f"\n  cleanup: false\n  gate: {kind}\n", 1))


def remove_gate_left_by(root: Path) -> None:
    """A test that failed half-way may leave its run's firewall rule in this host's namespace: remove
    it with the sandbox, or a later sandbox on the same ports would find its clients refused."""
    from migrator.migration.journal import Journal
    from migrator.runtime import firewall

    try:
        journal = Journal.load(root / "migrate" / "journal.json")
    except Exception:  # noqa: BLE001 - a test may have damaged it on purpose; nothing to remove then
        return
    if journal is not None and journal.marks.gate is not None:
        firewall.remove(firewall.GateRule.checked(journal.marks.gate, where=str(journal.path)))
