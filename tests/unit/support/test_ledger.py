"""The live-load judges' own failure modes (tests/support/ledger.py): a helper that dies must fail
the test that relies on it, never leave it passing on what little it did; and the ledger's longest
gap, which the benchmarks report as the clients' write-downtime."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tests.support import ledger
from tests.support.ledger import Clients, DdlProber, Gap, Ledger, Outcome


def test_a_ddl_prober_that_dies_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    connects = []

    def client(uri: str, timeout: float = 5.0, **_: object) -> SimpleNamespace:
        connects.append(uri)
        if len(connects) == 1:  # the prober's own connection
            raise RuntimeError("no Milvus there")
        return SimpleNamespace(list_collections=list, close=lambda: None)

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


def ledger_of(*events: tuple[float, bool]) -> Ledger:
    found = Ledger()
    found.outcomes = [Outcome(at, ok, "" if ok else "unavailable") for at, ok in events]
    return found


def test_the_longest_gap_spans_failures_between_two_acknowledged_writes():
    found = ledger_of((10, True), (11, True), (12, False), (17, False), (20, True), (20.5, True))
    assert found.longest_gap(0, 30) == Gap(11, 20)
    assert found.longest_gap(0, 30).seconds == 9


def test_a_call_that_hung_without_failing_is_a_gap_too():
    assert ledger_of((10, True), (10.05, True), (16, True)).longest_gap(0, 30) == Gap(10.05, 16)


def test_writes_that_never_came_back_leave_the_gap_open_to_the_end_of_the_watch():
    found = ledger_of((10, True), (11, True), (12, False), (40, False))
    assert found.longest_gap(0, 50) == Gap(11, 50, open=True)


def test_only_the_window_counts():
    found = ledger_of((1, True), (9, True), (10, True), (10.1, True), (30, True))
    assert found.longest_gap(5, 20) == Gap(9, 10)
    assert ledger_of((12, False)).longest_gap(0, 20) is None
