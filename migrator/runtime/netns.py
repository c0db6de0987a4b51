"""Reaching a port that a container's process listens on in its own network namespace.

Milvus inside a container binds its embedded NATS to 127.0.0.1 (and, during an isolated start,
its client port is published nowhere): from the host, `127.0.0.1:PORT` is the host's own
loopback, not the container's. `relay(pid, port)` starts a small relay process that LISTENS on
127.0.0.1:<free port> in this host's namespace (the listening socket is made here and handed
over), then enters the container's network namespace (setns on /proc/<pid>/ns/net), so every
connection it accepts is forwarded to 127.0.0.1:<port> inside the container. It carries any TCP
protocol (gRPC for pymilvus, NATS), lives as long as the context, and ends with it; it also ends
by itself when this process dies (it watches a pipe whose write end only this process holds).

setns into another network namespace needs CAP_SYS_ADMIN: root only.

This file is also the relay's program (`python -I netns.py NS FD PORT`): its top level imports
the standard library only, so the child starts in a few tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

CLONE_NEWNET = 0x40000000
READY = "ready"
_START_TIMEOUT_S = 10.0
_CONNECT_TIMEOUT_S = 10.0
_CHUNK = 256 * 1024


def same_namespace(pid: int) -> bool:
    """Does process `pid` share this process's network namespace (host networking)?"""
    return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino


@contextlib.contextmanager
def relay(pid: int, port: int, *, what: str, source: str | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """`127.0.0.1:<local port>` that reaches `host`:`port` in the network namespace of process `pid`
    (`what` names it in messages, e.g. "container milvus-standalone"). With `source`, every
    connection it makes comes from that local address: the one the firewall gate lets through
    (runtime/firewall.py), so a relay is made even in this process's own namespace."""
    from migrator.runtime.base import ReachUnavailable

    namespace = f"/proc/{pid}/ns/net"
    needs_root = ReachUnavailable(f"reaching port {port} inside {what} needs root: the relay enters its network "
                                  f"namespace (setns on {namespace})", hint="run milvus-migrate as root")
    try:
        if same_namespace(pid) and source is None:
            yield f"{host}:{port}"
            return
    except PermissionError:
        raise needs_root from None
    except OSError as error:
        raise ReachUnavailable(f"cannot reach port {port} of {what}: its process {pid} is not visible here "
                               f"({error.strerror}); the engine may run on another host or in another pid namespace",
                               hint="run milvus-migrate on the container's host, in the host's pid namespace") from None
    if os.geteuid() != 0:
        raise needs_root
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        child = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), namespace, str(listener.fileno()), host, str(port),
             source or ""],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(listener.fileno(),), start_new_session=True,
        )
    finally:
        listener.close()  # the child holds it now
    try:
        _wait_ready(child, what, port)
        yield address
    finally:
        _stop(child)


def _wait_ready(child: subprocess.Popen[bytes], what: str, port: int) -> None:
    from migrator.runtime.base import ReachUnavailable

    assert child.stdout is not None and child.stderr is not None
    ready, _, _ = select.select([child.stdout], [], [], _START_TIMEOUT_S)
    line = child.stdout.readline().decode("utf-8", "replace").strip() if ready else ""
    if line == READY:
        return
    if child.poll() is None:
        child.kill()
    child.wait()
    reason = child.stderr.read().decode("utf-8", "replace").strip().splitlines()
    raise ReachUnavailable(f"cannot reach port {port} inside {what}: the relay into its network namespace "
                           f"did not start ({reason[-1] if reason else f'no answer within {_START_TIMEOUT_S:.0f} s'})")


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Close the relay's lifeline (it exits on EOF), then make sure it is gone."""
    with contextlib.suppress(OSError):
        if child.stdin is not None:
            child.stdin.close()
    try:
        child.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    for stream in (child.stdout, child.stderr):
        if stream is not None:
            stream.close()


def port_is_free(reach: Callable[[int], AbstractContextManager[str]], port: int) -> bool:
    """Is 127.0.0.1:`port` free where `reach` leads (a container's loopback, where its NATS will
    bind)? Connected through the relay: a reset means nothing listens there. When the port cannot
    be reached at all (not root, container down) the answer is unknown and counts as free: the
    start would fail and be rolled back, which is better than refusing on a guess."""
    from migrator.runtime.base import ReachUnavailable

    try:
        with reach(port) as address:
            host, relayed = address.rsplit(":", 1)
            try:
                with socket.create_connection((host, int(relayed)), timeout=_CONNECT_TIMEOUT_S) as probe:
                    probe.settimeout(0.5)
                    probe.recv(1)  # a server may greet (NATS sends INFO), or wait: either way it listens
            except (ConnectionResetError, ConnectionRefusedError):
                return True
            except TimeoutError:
                return False
            return False
    except ReachUnavailable:
        return True


class SharedRelays:
    """One relay per (pid, port), shared by whoever reaches it at the same time (verify counts
    collections in parallel threads); it ends when its last user leaves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[int, int, str, str | None], list] = {}  # key -> [context, address, users]

    @contextlib.contextmanager
    def reach(self, pid: int, port: int, *, what: str, source: str | None = None,
              host: str = "127.0.0.1") -> Iterator[str]:
        key = (pid, port, host, source)
        with self._lock:
            entry = self._open.get(key)
            if entry is None:
                context = relay(pid, port, what=what, source=source, host=host)
                entry = self._open[key] = [context, context.__enter__(), 0]
            entry[2] += 1
        try:
            yield entry[1]
        finally:
            with self._lock:
                entry[2] -= 1
                if entry[2] == 0:
                    del self._open[key]
                    entry[0].__exit__(None, None, None)


# --- the relay process ----------------------------------------------------------------------


def _enter(namespace: str) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(namespace, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns {namespace}: {os.strerror(error)}")
    finally:
        os.close(descriptor)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _forward(client: socket.socket, host: str, port: int, source: str) -> None:
    try:
        upstream = socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S,
                                            source_address=(source, 0) if source else None)
    except OSError:
        # Nothing listens there: reset the client, as a refused connection would.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        return
    upstream.settimeout(None)
    for sock in (client, upstream):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _serve(namespace: str, listener_fd: int, host: str, port: int, source: str) -> None:
    listener = socket.socket(fileno=listener_fd)  # made in the host's namespace: it stays there
    try:
        if os.stat(namespace).st_ino != os.stat("/proc/self/ns/net").st_ino:
            _enter(namespace)  # sockets made from now on live in the container's namespace
    except OSError as error:
        sys.stderr.write(f"{error.strerror or error}\n")
        sys.exit(3)

    def lifeline() -> None:
        sys.stdin.buffer.read()  # EOF: the tool closed the relay, or died
        os._exit(0)

    threading.Thread(target=lifeline, daemon=True).start()
    sys.stdout.write(READY + "\n")
    sys.stdout.flush()
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_forward, args=(client, host, port, source), daemon=True).start()


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
