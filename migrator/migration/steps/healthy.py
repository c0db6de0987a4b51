"""healthy: healthz on the metrics port says OK; on an isolated start, no client can reach Milvus.

Isolation is proved, not assumed: the public client port must not serve (a TCP connection is
refused, or no Milvus answers on it) and the HTTP API must be off (the metrics port's /api/v1
answers 404). Milvus 2.3.5 serves that API whatever proxy.port says, and its writes ignore forceDeny.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext


class NotIsolated(NotRolledBack):
    """A client could still reach Milvus during an isolated start."""


def healthy(ctx: RunContext, *, isolated: bool) -> str:
    seconds = ctx.runtime.wait_healthy(ctx.deadlines.start_s)
    if not isolated:
        return f"healthz OK after {seconds:.1f} s"
    public_client_port_closed(ctx)
    http_api_off(ctx)
    return f"healthz OK after {seconds:.1f} s; clients isolated: the public port and the HTTP API serve none"


def public_client_port_closed(ctx: RunContext) -> None:
    from migrator.milvus.client import MilvusAdapter, MilvusError

    parts = urlsplit(ctx.playbook.milvus.uri)
    host, port = parts.hostname or "127.0.0.1", parts.port or 19530
    try:
        socket.create_connection((host, port), timeout=2.0).close()
    except OSError:
        return  # refused, unreachable or filtered: nothing serves clients there
    # Something accepts TCP there (a container engine's port proxy does): is it Milvus?
    try:
        with MilvusAdapter.connect(ctx.playbook.milvus.uri, token=ctx.token, timeout=3.0) as milvus:
            version = milvus.version()
    except MilvusError:
        return
    raise NotIsolated(f"Milvus {version} still answers clients on {host}:{port} during an isolated start",
                      hint="an environment variable (PROXY_PORT) or an etcd key may override proxy.port")


def http_api_off(ctx: RunContext) -> None:
    from migrator.runtime.base import http_get

    url = ctx.runtime.metrics_url.rstrip("/") + "/api/v1/collections"
    try:
        status, _ = http_get(url, timeout=3.0)
    except OSError:
        return
    if status != 404:
        raise NotIsolated(f"Milvus's HTTP API still answers on {url} (HTTP {status}) during an isolated start",
                          hint="an environment variable or an etcd key may override proxy.http.enabled")
