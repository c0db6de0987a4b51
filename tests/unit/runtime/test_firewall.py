"""The firewall gate's rule set (runtime/firewall.py), installed for real with nft and iptables in a
network namespace of the test's own (`ip netns`), judged by connections made there: a client's
is refused, the tool's (from the exempt address) goes through, established ones are cut. And what
a journal says of a rule is checked before any of it reaches a command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from migrator.errors import BadInput
from migrator.runtime import firewall
from migrator.runtime.firewall import GateRule

GOOD = {"tool": "nft", "name": "milvus_migrate_20261206t101010z", "ports": [19530, 9091], "exempt": "127.120.3.4",
        "netns": None}


@pytest.mark.parametrize(("field", "value"), [
    ("tool", "sh"), ("name", "milvus_migrate_x; nft flush ruleset"), ("name", "other_table"),
    ("ports", [0]), ("ports", ["19530"]), ("ports", []), ("ports", [True]), ("exempt", "127.0.0.1"),
    ("exempt", "10.0.0.1"), ("exempt", "127.0.0.1 accept"), ("netns", "/etc/passwd"), ("netns", "/proc/1/ns/net/../x"),
])
def test_a_journal_s_rule_is_checked_before_it_reaches_a_command(field: str, value: object) -> None:
    with pytest.raises(BadInput, match=f"gate.{field}"):
        GateRule.checked({**GOOD, field: value}, where="journal.json")
    assert GateRule.checked(GOOD, where="journal.json").ports == (19530, 9091)


def test_exempt_addresses_and_names_are_the_run_s_own() -> None:
    exempt = firewall.exempt_address_for("20261206T101010Z")
    assert firewall.is_exempt_address(exempt) and exempt == firewall.exempt_address_for("20261206T101010Z")
    assert exempt != firewall.exempt_address_for("20261206T101011Z")
    assert firewall.rule_name("20261206T101010Z") == "milvus_migrate_20261206t101010z"


# --- installed for real, in a namespace of the test's own ------------------------------------

def _can_run_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "iproute2 is not installed"
    return None


@pytest.fixture
def netns() -> str:
    why = _can_run_namespaces()
    if why:
        pytest.skip(f"a network namespace needs root and iproute2: {why}")
    name = f"mmtest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "delete", name], check=False)


SERVER = """
import socket, sys, threading
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1]))); server.listen(16)
print("ready", flush=True)
def echo(conn):
    try:
        while data := conn.recv(100):
            conn.sendall(data)
    except OSError:
        pass
while True:
    conn, _ = server.accept(); threading.Thread(target=echo, args=(conn,), daemon=True).start()
"""

CLIENT = """
import socket, sys
source, port = sys.argv[1], int(sys.argv[2])
held = socket.create_connection(("127.0.0.1", port), timeout=2) if sys.argv[3] == "hold" else None
if held:
    held.sendall(b"x"); held.recv(10)
    print("held", flush=True); sys.stdin.readline()
    try:
        held.sendall(b"y"); print("established:", held.recv(10) or b"closed")
    except OSError as error:
        print("established: cut", type(error).__name__)
try:
    conn = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(source, 0) if source else None)
    conn.sendall(b"z"); print("new:", conn.recv(10))
except OSError as error:
    print("new: refused", type(error).__name__)
"""


def _in(netns: str, *argv: str, **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", netns, *argv], text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _connect(netns: str, source: str, port: int) -> str:
    client = _in(netns, "python3", "-c", CLIENT, source, str(port), "new")
    out, err = client.communicate(timeout=20)
    return out.strip() or err


@pytest.mark.parametrize("tool", [firewall.NFT, firewall.IPTABLES])
def test_the_rule_refuses_clients_cuts_established_ones_and_lets_the_tool_through(netns: str, tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/install-system-packages.sh installs it)")
    namespace = f"/run/netns/{netns}"
    server = _in(netns, "python3", "-c", SERVER, "19530")
    try:
        assert server.stdout.readline().strip() == "ready"
        rule = GateRule(tool, firewall.rule_name(f"t-{tool}"), (19530, 9091), firewall.exempt_address_for(tool),
                        netns=_proc_path(server.pid, namespace))
        held = _in(netns, "python3", "-c", CLIENT, "", "19530", "hold")
        assert held.stdout.readline().strip() == "held"
        firewall.install(rule)
        assert firewall.installed(rule)
        firewall.install(rule)  # again: a resumed run installs it once more, never twice
        out, _ = held.communicate("\n", timeout=20)
        assert "established: cut" in out or "established: b'closed'" in out, out
        assert "new: refused" in _connect(netns, "", 19530)
        assert _connect(netns, rule.exempt, 19530) == "new: b'z'"
        # The host's own namespace never saw the rule.
        assert rule.name not in firewall.leftover_tables(None)
        assert firewall.remove(rule) and not firewall.installed(rule) and not firewall.remove(rule)
        assert _connect(netns, "", 19530) == "new: b'z'"
    finally:
        server.kill()
        server.wait()


def _proc_path(pid: int, fallback: str) -> str:
    """/proc/<pid>/ns/net of a process in the test's namespace (`ip netns exec` runs it there)."""
    path = f"/proc/{pid}/ns/net"
    return path if Path(path).exists() else fallback
