"""The rehearsal's own client: it writes and reads through the copy's client port for the whole
rehearsal and keeps a ledger, so what the rehearsal reports is what a client measured.

Every INTERVAL_S it inserts one row (ids never reused) and reads one back; each outcome is a JSON
line `[unix time, "w" or "r", null or the error kind, id]` that the parent reads. Write-downtime is
the longest gap between two acknowledged writes, read-downtime the longest between two answered
reads. At the end the ledger is the judge: every acknowledged insert must be found by a Strong
query on the migrated copy.

It runs in a process of its own, like the apply's client view (migration/clientview.py): a client
dialling a closed port must not hold up the tool's own pymilvus connections.
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
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from migrator.util.processes import terminate

COLLECTION = "milvus_migrate_rehearsal_writer"
INTERVAL_S = 0.2
URI_VARIABLE = "MILVUS_MIGRATE_REHEARSAL_URI"  # the uri and token travel in the environment, never in argv
TOKEN_VARIABLE = "MILVUS_MIGRATE_REHEARSAL_TOKEN"


@dataclass
class Ledger:
    acknowledged: set[int] = field(default_factory=set)
    outcomes: list[tuple[float, str, str | None]] = field(default_factory=list)  # (at, "w"/"r", error kind)

    def longest_gap(self, kind: str) -> tuple[float, float | None, float | None]:
        """(seconds, from, until) of the longest gap between two successes of `kind`, counting a
        failure after the last success as a gap still open at the last outcome."""
        successes = [at for at, what, error in self.outcomes if what == kind and error is None]
        if not successes:
            return 0.0, None, None
        gaps: list[tuple[float, float | None, float | None]] = [
            (b - a, a, b) for a, b in itertools.pairwise(successes)]
        last = max(at for at, what, _ in self.outcomes if what == kind)
        if last > successes[-1]:
            gaps.append((last - successes[-1], successes[-1], None))
        return max(gaps, default=(0.0, None, None), key=lambda gap: gap[0])

    def summary(self) -> dict[str, Any]:
        def gap(kind: str) -> dict[str, Any]:
            seconds, start, end = self.longest_gap(kind)
            return {"seconds": round(seconds, 1), "from": start, "until": end}

        writes = [error for _, what, error in self.outcomes if what == "w"]
        reads = [error for _, what, error in self.outcomes if what == "r"]
        return {"writes": len(writes), "acknowledged": len(self.acknowledged),
                "reads": len(reads), "answered": sum(1 for error in reads if error is None),
                "refused": dict(Counter(error for _, _, error in self.outcomes if error is not None)),
                "longest_write_gap": gap("w"), "longest_read_gap": gap("r")}


def create_collection(uri: str, token: str | None) -> None:
    """The writer's own loaded collection in the copy (never in production)."""
    from migrator.milvus.client import MilvusAdapter

    with MilvusAdapter.connect(uri, token=token, timeout=60.0) as milvus:
        milvus.ensure_probe(deadline_s=120.0, name=COLLECTION, load=True)


class Writer:
    def __init__(self, uri: str, token: str | None) -> None:
        self.uri, self.token = uri, token
        self.ledger = Ledger()
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        environ = {**os.environ, URI_VARIABLE: self.uri, TOKEN_VARIABLE: self.token or ""}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "migrator.rehearsal.writer"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=environ, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, name="rehearsal-writer-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            try:
                at, what, error, row_id = json.loads(line)
            except (ValueError, TypeError):
                continue
            self.ledger.outcomes.append((float(at), str(what), error))
            if what == "w" and error is None:
                self.ledger.acknowledged.add(int(row_id))

    def wait_for(self, kind: str, after: float, wait_s: float) -> bool:
        """Until a success of `kind` after `after` (unix time), at most `wait_s`."""
        until = time.monotonic() + wait_s
        while time.monotonic() < until:
            if any(what == kind and error is None and at > after for at, what, error in list(self.ledger.outcomes)):
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        terminate(process)
        if self._reader is not None:
            self._reader.join(timeout=10)


def missing_rows(uri: str, token: str | None, acknowledged: set[int], *, deadline_s: float = 180.0) -> list[int]:
    """Acknowledged ids a Strong query does not find."""
    from migrator.milvus.client import MilvusAdapter, retry

    ids = sorted(acknowledged)
    found: set[int] = set()
    with MilvusAdapter.connect(uri, token=token, timeout=60.0) as milvus:
        client = milvus.client()
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            rows = retry(partial(client.query, COLLECTION, filter=f"id in {chunk}", output_fields=["id"],
                                 consistency_level="Strong"),
                         deadline_s=deadline_s, what="read the writer's rows")
            found.update(int(row["id"]) for row in rows)
    return [i for i in ids if i not in found]


def _write_until_stopped(uri: str, token: str | None) -> None:
    from migrator.milvus.client import MilvusAdapter, client_error_kind

    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    parent = os.getppid()
    ids = itertools.count(int(time.time() * 1000))
    adapter: Any = None
    last_acknowledged: int | None = None

    def say(what: str, error: BaseException | None, row_id: int | None) -> None:
        kind = None if error is None else client_error_kind(error.__cause__ or error)
        print(json.dumps([time.time(), what, kind, row_id]), flush=True)  # noqa: T201 - the protocol to the parent

    while not stopping and os.getppid() == parent:
        row_id = next(ids)
        try:
            if adapter is None:
                adapter = MilvusAdapter(uri, token, timeout=3.0)
            adapter.client().insert(COLLECTION, [{"id": row_id, "vector": [0.0, 1.0]}])
            last_acknowledged = row_id
            say("w", None, row_id)
        except Exception as error:  # noqa: BLE001 - every failure is what a client would have seen
            say("w", error, row_id)
            if adapter is not None:  # a restart can leave pymilvus a broken channel: dial again
                adapter.close()
                adapter = None
        if last_acknowledged is not None and adapter is not None:
            try:
                adapter.client().query(COLLECTION, filter=f"id == {last_acknowledged}", output_fields=["id"],
                                       consistency_level="Eventually")
                say("r", None, last_acknowledged)
            except Exception as error:  # noqa: BLE001
                say("r", error, last_acknowledged)
        time.sleep(INTERVAL_S)
    if adapter is not None:
        adapter.close()


if __name__ == "__main__":
    import logging

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    _write_until_stopped(os.environ[URI_VARIABLE], os.environ.get(TOKEN_VARIABLE) or None)
