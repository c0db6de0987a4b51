"""What clients saw during a run: a client of the tool's own writes one row every half second through
the public client port, from the start of the run to its end, and keeps what each write met.

It is a stand-in for the operator's applications (the tool cannot see theirs): the report says
from when until when writes were refused, how many, and with which error. Its rows go to a
collection of its own (milvus_migrate_client_view), never counted by the snapshot, dropped at the
end of a finished run.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from migrator.milvus.client import (
    CLIENT_VIEW_COLLECTION,
    MilvusAdapter,
    client_error_kind,
)

INTERVAL_S = 0.5
_ids = itertools.count(int(time.time() * 1000))


class ClientView(threading.Thread):
    def __init__(self, uri: str, token: str | None) -> None:
        super().__init__(name="client-view", daemon=True)
        self.uri, self.token = uri, token
        self.outcomes: list[tuple[float, str | None]] = []  # (unix time, None when acknowledged, else the error kind)
        self._stopping = threading.Event()

    def run(self) -> None:
        adapter: Any = None
        ready = False
        while not self._stopping.is_set():
            try:
                if adapter is None:
                    adapter = MilvusAdapter(self.uri, self.token, timeout=3.0)
                if not ready:
                    adapter.ensure_probe(deadline_s=3.0, name=CLIENT_VIEW_COLLECTION)
                    ready = True
                adapter.client().insert(CLIENT_VIEW_COLLECTION, [{"id": next(_ids), "vector": [0.0, 1.0]}])
                self.outcomes.append((time.time(), None))
            except Exception as error:  # noqa: BLE001 - every failure is what a client would have seen
                self.outcomes.append((time.time(), client_error_kind(error.__cause__ or error)))
                ready = False
                if adapter is not None:
                    adapter.close()
                    adapter = None
            self._stopping.wait(INTERVAL_S)
        if adapter is not None:
            adapter.close()

    def stop(self) -> dict[str, Any]:
        """Stop writing; the summary of what it saw."""
        self._stopping.set()
        self.join(timeout=30)
        return summarize(self.outcomes)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds")


def summarize(outcomes: list[tuple[float, str | None]]) -> dict[str, Any]:
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
    with MilvusAdapter.connect(uri, token=token) as milvus:
        milvus.drop_probe(CLIENT_VIEW_COLLECTION)
