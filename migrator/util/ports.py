"""Loopback port helpers: is a port free, pick free ones."""

from __future__ import annotations

import socket


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (a bind succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# Ports below the kernel's ephemeral range: a port bind(0) hands out is one the kernel also gives to
# outgoing connections, so a server started on it later can find it taken (Milvus binds a dozen).
_SERVER_PORTS = range(20000, 32768)


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            return int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int, avoid: set[int] | None = None) -> list[int]:
    """`count` distinct ports free right now on every interface, none of them in `avoid`, taken below
    the ephemeral range where there is room (else from the kernel, as bind(0) gives them)."""
    import random

    taken = set(avoid or ())
    low = min(_SERVER_PORTS.stop, _ephemeral_low())
    candidates = [port for port in range(_SERVER_PORTS.start, low) if port not in taken]
    random.shuffle(candidates)
    ports: list[int] = []
    for port in candidates:
        if len(ports) == count:
            return ports
        if port_is_free(port, "") and port_is_free(port):
            ports.append(port)
    return ports + _kernel_ports(count - len(ports), taken | set(ports))


def _kernel_ports(count: int, taken: set[int]) -> list[int]:
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            if port not in taken:
                taken.add(port)
                ports.append(port)
    finally:
        # Held open until all are chosen so the kernel cannot hand the same port out twice.
        for sock in sockets:
            sock.close()
    return ports
