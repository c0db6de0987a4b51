"""The live-load judges' own failure modes (tests/support/ledger.py): a helper that dies must fail
the test that relies on it, never leave it passing on what little it did."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tests.support import ledger
from tests.support.ledger import Clients, DdlProber, Outcome


def test_a_ddl_prober_that_dies_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    connects = []

    def client(uri: str, timeout: float = 5.0, **_: object) -> SimpleNamespace:
        connects.append(uri)
        if len(connects) == 1:  # the prober's own connection
            raise RuntimeError("no Milvus there")
        return SimpleNamespace(list_collections=lambda: [], close=lambda: None)

    monkeypatch.setattr(ledger, "_client", client)
    prober = DdlProber("http://127.0.0.1:1")
    prober.start()
    prober.join(timeout=10)
    assert not prober.is_alive()
    assert prober.problems("http://127.0.0.1:1") == ["ddl-prober crashed: RuntimeError('no Milvus there')"]


def test_acknowledged_writes_are_counted_per_writer_and_window() -> None:
    load = Clients("http://127.0.0.1:1", "http://127.0.0.1:1", "t")  # never started: no connection
    load.grpc.ledger.outcomes += [Outcome(10.0, True), Outcome(20.0, True), Outcome(21.0, False, "refused"),
                                  Outcome(30.0, True)]
    load.http.ledger.outcomes += [Outcome(25.0, True)]
    assert load.acknowledged_by_writer(15.0, 29.0) == {"ledger-ledger_grpc_t": 1, "http-ledger-ledger_http_t": 1}
    assert load.acknowledged_after(15.0) == 3
    started = time.monotonic()
    # The HTTP writer has one acknowledged write after 15.0, not two: the wait ends at its deadline.
    assert load.wait_for_acknowledged(15.0, each=2, wait_s=0.5) == {"ledger-ledger_grpc_t": 2,
                                                                    "http-ledger-ledger_http_t": 1}
    assert time.monotonic() - started >= 0.5
