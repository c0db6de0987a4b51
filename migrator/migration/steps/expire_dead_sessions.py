"""expire-dead-sessions: remove the etcd sessions of the Milvus process this run stopped.

After a SIGKILL (and even after a graceful stop of 2.3.5) the old process's node sessions
(`<rootPath>/<metaSubPath>/session/querynode-6`, ...) live on until their lease expires
(common.session.ttl, 30 s): until then querycoord keeps the loaded collections assigned to the
dead node and nothing answers (seen on 2.3.5: collections served ~31 s after the restart,
~5 s once the dead sessions are gone). A standalone registers every role under one ServerID, so
the sessions of roles the new process has re-registered under a higher ServerID belong to the
stopped one: removing them is what their expiry would do, sooner.
"""

from __future__ import annotations

import time

from migrator.migration.steps.base import RunContext
from migrator.milvus.etcd import (
    EtcdUnreachable,
    dead_coordinator_keys,
    dead_session_keys,
    delete_key,
    node_sessions,
    read_prefix,
    session_prefix,
)
from migrator.util.deadline import Deadline

ETCD_UP_S = 30.0  # an embedded etcd answers within a second or two of the start


def _session_prefix(ctx: RunContext) -> str:
    effective = ctx.effective()
    etcd = ctx.playbook.config.etcd
    root = str(effective.get("etcd.rootPath").raw or (etcd.root_path if etcd else "by-dev")).strip("/")
    meta = str(effective.get("etcd.metaSubPath").raw or "meta").strip("/")
    return session_prefix(root, meta)


def record_server_ids(ctx: RunContext, step_id: str) -> None:
    """Before a stop: remember the running process's ServerIDs (best effort)."""
    etcd = ctx.playbook.config.etcd
    if etcd is None or ctx.journal.recall(step_id, "server_ids") is not None:
        return
    try:
        ids = sorted(set(node_sessions([key for key, _ in read_prefix(etcd.endpoint, _session_prefix(ctx))]).values()))
    except EtcdUnreachable:
        return
    ctx.journal.remember(step_id, server_ids=ids)


def expire_dead_sessions(ctx: RunContext, *stop_steps: str) -> str:
    """Remove the sessions of the processes `stop_steps` stopped, as soon as the new process has
    registered its first session (seen on 2.3.5: then every channel is watched again by the time
    healthz says OK; removed before it registers, the channel assignment broke, docs/milvus.md).
    Runs right after the start: an embedded etcd answers a moment after the process starts."""
    etcd = ctx.playbook.config.etcd
    if etcd is None:
        return "skipped: no config.etcd in the playbook; Milvus expires them after common.session.ttl"
    recorded = [server_id for step in stop_steps for server_id in (ctx.journal.recall(step, "server_ids") or [])]
    stopped_up_to = max(recorded) if recorded else None
    prefix = _session_prefix(ctx)
    registration = Deadline(ctx.deadlines.start_s)
    etcd_up = Deadline(min(ETCD_UP_S, ctx.deadlines.start_s))
    while True:
        try:
            items = read_prefix(etcd.endpoint, prefix)
            break
        except EtcdUnreachable as error:
            if etcd_up.passed() or not ctx.runtime.running():
                # Only a shortcut: without it Milvus still recovers, after the session TTL.
                ctx.env.log.warning("sessions.unreachable", endpoint=error.url, reason=error.reason)
                return f"skipped: etcd not reachable ({error.reason}); Milvus expires them after common.session.ttl"
            time.sleep(0.1)
    try:
        while True:
            keys = [key for key, _ in items]
            dead = dead_session_keys(keys, stopped_up_to)
            registered = stopped_up_to is None or any(i > stopped_up_to for i in node_sessions(keys).values())
            if dead or registered or registration.passed() or not ctx.runtime.running():
                break
            time.sleep(0.1)
            items = read_prefix(etcd.endpoint, prefix)
        if registered:  # the new process is there: its coordinators wait for the old keys to go
            dead += dead_coordinator_keys(items, stopped_up_to)
        for key in dead:
            delete_key(etcd.endpoint, key)
    except EtcdUnreachable as error:
        ctx.env.log.warning("sessions.unreachable", endpoint=error.url, reason=error.reason)
        return f"skipped: etcd not reachable ({error.reason}); Milvus expires them after common.session.ttl"
    ctx.env.log.info("sessions.expired", keys=dead)
    if not dead:
        return "no session of the stopped process left"
    return f"removed {len(dead)} sessions of the stopped process ({', '.join(k.rsplit('/', 1)[1] for k in dead)})"
