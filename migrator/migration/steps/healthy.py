"""healthy: healthz on the metrics port says OK; while clients are kept away, none can reach Milvus.

That is proved, not assumed. Behind the firewall gate: a plain connection to the client port and
to the metrics port is refused (healthz itself is asked from the gate's exempt address). Behind
port isolation: the public client port must not serve (a TCP connection is refused, or no Milvus
answers on it) and the HTTP API must be off (the metrics port's /api/v1 answers 404). Milvus 2.3.5
serves that API whatever proxy.port says, and its writes ignore forceDeny.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext


class NotIsolated(NotRolledBack):
    """A client could still reach Milvus during an isolated start."""


def healthy(ctx: RunContext, *, kept_away: bool, step_id: str | None = None) -> str:
    """`step_id`: where to record the healthy process's ServerIDs, so that a rollback that finds it
    dead later can remove its sessions (steps/revive.py)."""
    from migrator.migration.steps.expire_dead_sessions import record_server_ids

    seconds = ctx.runtime.wait_healthy(ctx.deadlines.start_s, source=ctx.exempt_source)
    if step_id is not None:
        record_server_ids(ctx, step_id)
    if not kept_away:
        return f"healthz OK after {seconds:.1f} s"
    if ctx.gate_rule() is not None:
        from migrator.migration import gate

        still_open = gate.open_to_clients(ctx.playbook.milvus.uri, ctx.runtime.metrics_url)
        if still_open:
            raise NotIsolated(f"the gate is closed, yet a client can connect to {', '.join(still_open)}")
        return f"healthz OK after {seconds:.1f} s; the gate holds: a client's connection is refused"
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
