"""The adapter's connect: an address nobody serves fails at once, unless the caller says Milvus is
starting (`alive`), when a refusal is waited out for as long as the process lives."""

from __future__ import annotations

import socket
import time

import pytest

from migrator.milvus.client import MilvusAdapter, MilvusUnavailable, client_error_kind, refused_address
from tests.support.playbooks import OFFLINE_URI


def test_an_address_nobody_serves_fails_at_once_without_alive() -> None:
    started = time.monotonic()
    with pytest.raises(MilvusUnavailable) as raised, MilvusAdapter.connect(OFFLINE_URI, timeout=30.0):
        pass
    assert time.monotonic() - started < 3.0  # not the 30 s timeout, nor pymilvus's own wait
    assert str(raised.value) == ("cannot connect to Milvus at http://127.0.0.1:1: "
                                 "connection refused, nothing listens on 127.0.0.1:1")
    assert client_error_kind(raised.value) == "connection refused"  # what the client view records


def test_a_refusal_is_retried_while_milvus_is_starting_and_ends_when_it_is_gone() -> None:
    asked = []

    def alive() -> bool:
        asked.append(time.monotonic())
        return len(asked) < 4  # starting for three checks, then the process is gone

    started = time.monotonic()
    with pytest.raises(MilvusUnavailable, match="nothing listens on 127.0.0.1:1"), \
            MilvusAdapter.connect(OFFLINE_URI, timeout=30.0, alive=alive):
        pass
    assert len(asked) == 4  # asked after each refusal, and no longer once the process was gone
    assert time.monotonic() - started < 5.0


def test_a_refusal_is_retried_until_the_deadline_while_the_process_lives() -> None:
    started = time.monotonic()
    with pytest.raises(MilvusUnavailable, match="connection refused"), \
            MilvusAdapter.connect(OFFLINE_URI, timeout=1.5, alive=lambda: True):
        pass
    assert 1.0 < time.monotonic() - started < 5.0


def test_only_a_refusal_counts_as_nobody_there() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert refused_address(f"http://user:secret@127.0.0.1:{port}") is None
    assert refused_address(f"http://127.0.0.1:{port}") == f"127.0.0.1:{port}"
    assert refused_address("https://127.0.0.1:1/") == "127.0.0.1:1"
    assert refused_address("http://127.0.0.1:notaport") is None  # left to pymilvus, which names it
    assert refused_address("./milvus.db") is None  # not a network address
