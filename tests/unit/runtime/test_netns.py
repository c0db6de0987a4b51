"""The relay into another network namespace (runtime/netns.py), against a real nats-server that
listens on 127.0.0.1 inside its own namespace (`unshare --net`), as Milvus's NATS does in a
container: unreachable from here, reached through the relay; the relay ends with its context,
and with this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.milvus.nats import list_streams
from migrator.runtime.base import ReachUnavailable
from migrator.runtime.netns import SharedRelays, relay
from tests.unit.milvus.test_nats import _free_port, _make_streams, _nats_server_binary

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="entering a network namespace needs root")

RELAY = str(Path(sys.modules["migrator.runtime.netns"].__file__).resolve())


def _relays_of(namespace_pid: int) -> list[int]:
    """Pids of relay processes entering the namespace of `namespace_pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if RELAY.encode() in argv and f"/proc/{namespace_pid}/ns/net".encode() in argv:
            found.append(int(entry))
    return found


@pytest.fixture
def isolated_nats(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(pid, port) of a JetStream nats-server on 127.0.0.1 in a network namespace of its own."""
    port = _free_port()
    server = subprocess.Popen(
        ["unshare", "--net", "sh", "-c",
         f"ip link set lo up && exec '{_nats_server_binary()}' -js -a 127.0.0.1 -p {port} -sd '{tmp_path / 'store'}'"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until = time.monotonic() + 10
        while not (tmp_path / "store" / "jetstream").exists():
            assert time.monotonic() < until and server.poll() is None, "nats-server did not start"
            time.sleep(0.05)
        yield server.pid, port
    finally:
        server.kill()
        server.wait()


def test_the_relay_reaches_a_loopback_the_host_cannot(isolated_nats: tuple[int, int]) -> None:
    pid, port = isolated_nats
    with pytest.raises(Exception, match="cannot connect|did not answer"):
        list_streams(f"127.0.0.1:{port}", timeout_s=2)  # this host's loopback: nothing there
    with relay(pid, port, what="the test's namespace") as address:
        assert address != f"127.0.0.1:{port}"
        _make_streams(int(address.rsplit(":", 1)[1]), ["by-dev-rootcoord-dml_0"], 60.0, {"by-dev-rootcoord-dml_0": 3})
        [stream] = list_streams(address)
        assert (stream.name, stream.messages) == ("by-dev-rootcoord-dml_0", 3)
        assert len(_relays_of(pid)) == 1
    assert _relays_of(pid) == []  # ended with the context


def test_a_closed_port_inside_is_a_reset_and_concurrent_users_share_one_relay(isolated_nats: tuple[int, int]) -> None:
    import socket

    pid, port = isolated_nats
    shared, failures, counts = SharedRelays(), [], []

    def use() -> None:
        try:
            with shared.reach(pid, port, what="the test's namespace") as address:
                counts.append(len(_relays_of(pid)))
                list_streams(address)
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            failures.append(error)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and set(counts) == {1}
    assert _relays_of(pid) == []
    with relay(pid, _free_port(), what="the test's namespace") as address:
        host, relayed = address.rsplit(":", 1)
        with socket.create_connection((host, int(relayed))) as client, pytest.raises(ConnectionResetError):
            client.recv(1)


def test_the_relay_ends_when_the_tool_dies(isolated_nats: tuple[int, int]) -> None:
    pid, port = isolated_nats
    tool = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom migrator.runtime.netns import relay\n"
         f"with relay({pid}, {port}, what='x') as address:\n    print(address, flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert tool.stdout is not None and tool.stdout.readline().startswith("127.0.0.1:")
    [child] = _relays_of(pid)
    tool.send_signal(signal.SIGKILL)
    tool.wait()
    until = time.monotonic() + 5
    while _relays_of(pid):
        assert time.monotonic() < until, f"relay {child} outlived the tool"
        time.sleep(0.05)


def test_not_root_or_not_visible_is_refused_clearly(isolated_nats: tuple[int, int]) -> None:
    pid, port = isolated_nats
    script = (f"from migrator.runtime.netns import relay\n"
              f"with relay({pid}, {port}, what='container milvus-standalone'): pass\n")
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", script],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode != 0
    assert "reaching port" in done.stderr and "inside container milvus-standalone needs root" in done.stderr
    with pytest.raises(ReachUnavailable, match="its process 999999999 is not visible here"), \
            relay(999_999_999, port, what="container gone"):
        pass


def test_a_port_is_free_or_taken_where_the_relay_leads(isolated_nats: tuple[int, int]) -> None:
    """Plan asks about a container's NATS port inside the container, not on this host."""
    from migrator.runtime.netns import port_is_free

    pid, port = isolated_nats

    def reach(number: int):
        return relay(pid, number, what="the test's namespace")

    def unreachable(number: int):
        raise ReachUnavailable("not root")

    assert port_is_free(reach, port) is False  # nats-server listens there (and greets)
    assert port_is_free(reach, _free_port()) is True
    assert port_is_free(unreachable, port) is True  # unknown: the start would tell
    assert _relays_of(pid) == []
