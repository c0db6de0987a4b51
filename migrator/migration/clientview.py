"""What clients saw during a run: a client of the tool's own writes one row every half second through
the public client port, from the start of the run to its end, and keeps what each write met.

It is a stand-in for the operator's applications (the tool cannot see theirs): the report says
from when until when writes were refused, how many, and with which error. Its rows go to a
collection of its own (milvus_migrate_client_view), never counted by the snapshot, dropped at the
end of a finished run.

It runs in a process of its own, as the operator's clients do: pymilvus keeps one process-wide
connection registry whose lock is held while a connection waits to be ready, so a client that
keeps dialling a port the tool has closed would stall the tool's own connections.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from migrator.util.processes import terminate

INTERVAL_S = 0.5
# The uri (it may hold user:password) and the token travel in the environment, never in argv.
URI_VARIABLE = "MILVUS_MIGRATE_CLIENT_VIEW_URI"
TOKEN_VARIABLE = "MILVUS_MIGRATE_CLIENT_VIEW_TOKEN"


class ClientView:
    """The writer process: started with the run, stopped (SIGTERM) at its end. It prints a line per
    write; a thread here reads them as they come."""

    def __init__(self, uri: str, token: str | None) -> None:
        self.uri, self.token = uri, token
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self.outcomes: list[tuple[float, str | None]] = []

    def start(self) -> None:
        environ = {**os.environ, URI_VARIABLE: self.uri, TOKEN_VARIABLE: self.token or ""}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "migrator.migration.clientview"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environ, text=True,
            start_new_session=True,  # not hit by the tool's own Ctrl-C: the tool stops it
        )
        self._reader = threading.Thread(target=self._read, name="client-view-reader", daemon=True)
        self._reader.start()

    def wait_for_first_write(self, wait_s: float = 10.0) -> None:
        """Give it time to make its collection and write once, so the report can say when the last
        write before the cut-off was; a refused first write ends the wait too."""
        until = time.monotonic() + wait_s
        while time.monotonic() < until and not self.outcomes:
            time.sleep(0.1)

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            try:
                at, kind = json.loads(line)
                self.outcomes.append((float(at), kind))
            except (ValueError, TypeError):
                continue

    def stop(self, *, until_acknowledged_after: float | None = None, wait_s: float = 20.0) -> dict[str, Any]:
        """Stop writing and say what it saw. With `until_acknowledged_after` (a unix time), first give
        it up to `wait_s` to get a write acknowledged after then: clients reconnect on their own time."""
        process = self._process
        if process is None:
            return {}
        if until_acknowledged_after is not None:
            until = time.monotonic() + wait_s
            while time.monotonic() < until and process.poll() is None and not any(
                    kind is None and at > until_acknowledged_after for at, kind in list(self.outcomes)):
                time.sleep(0.2)
        terminate(process)
        if self._reader is not None:
            self._reader.join(timeout=10)
        return summarize(self.outcomes)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds")


def summarize(outcomes: list[tuple[float, str | None]]) -> dict[str, Any]:
    """(unix time, None when acknowledged else the error kind) of each write -> what a client saw."""
    refused = [(at, kind) for at, kind in outcomes if kind is not None]
    summary: dict[str, Any] = {"writes": len(outcomes), "acknowledged": len(outcomes) - len(refused),
                               "refused": dict(Counter(kind for _, kind in refused))}
    if refused:
        first, last = refused[0][0], refused[-1][0]
        before = max((at for at, kind in outcomes if kind is None and at < first), default=None)
        after = min((at for at, kind in outcomes if kind is None and at > last), default=None)
        summary.update(refused_from=_iso(first), refused_until=_iso(last),
                       last_acknowledged_before=_iso(before) if before else None,
                       first_acknowledged_after=_iso(after) if after else None,
                       seconds_without_an_acknowledged_write=round(after - before, 1) if before and after else None)
    return summary


def drop(uri: str, token: str | None) -> None:
    from migrator.milvus.client import CLIENT_VIEW_COLLECTION, MilvusAdapter

    with MilvusAdapter.connect(uri, token=token) as milvus:
        milvus.drop_probe(CLIENT_VIEW_COLLECTION)


def _write_until_stopped(uri: str, token: str | None) -> None:
    """The child: one insert every INTERVAL_S until SIGTERM (or its parent is gone); a JSON line
    `[unix time, null or the error kind]` on stdout for each."""
    from migrator.milvus.client import (
        CLIENT_VIEW_COLLECTION,
        MilvusAdapter,
        client_error_kind,
    )

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    parent = os.getppid()
    ids = itertools.count(int(time.time() * 1000))
    adapter: Any = None
    ready = False
    while not stopping and os.getppid() == parent:
        try:
            if adapter is None:
                adapter = MilvusAdapter(uri, token, timeout=3.0)
            if not ready:
                adapter.ensure_probe(deadline_s=3.0, name=CLIENT_VIEW_COLLECTION)
                ready = True
            adapter.client().insert(CLIENT_VIEW_COLLECTION, [{"id": next(ids), "vector": [0.0, 1.0]}])
            print(json.dumps([time.time(), None]), flush=True)  # noqa: T201 - the line protocol to the parent
        except Exception as error:  # noqa: BLE001 - every failure is what a client would have seen
            print(json.dumps([time.time(), client_error_kind(error.__cause__ or error)]), flush=True)  # noqa: T201
            ready = False
            if adapter is not None:
                adapter.close()
                adapter = None
        time.sleep(INTERVAL_S)
    if adapter is not None:
        adapter.close()


if __name__ == "__main__":
    import logging

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    _write_until_stopped(os.environ[URI_VARIABLE], os.environ.get(TOKEN_VARIABLE) or None)
