"""The systemd runtime against stand-in systemctl/journalctl that start and stop a real Milvus
2.3.5 (tests/standins): a start that fails (the unit's environment makes Milvus exit: NATS port
taken), then a good start whose `try to init mq` is proven through the runtime's own log source,
from a mark taken after the failed start, so the failed start's `mqType=natsmq` line must not
count. The docker and compose runtimes run real containers: tests/integration/containers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.milvus.logs import wait_for_mq
from migrator.runtime.base import StartFailed
from tests.standins import Standins, standins_on_path
from tests.support.sandbox import Sandbox, start_sandbox, stop_sandbox

pytestmark = pytest.mark.milvus


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Standins, Sandbox]]:
    root = tmp_path_factory.mktemp("runtime-standins")
    try:
        sandbox = start_sandbox(root / "sandbox")
        with standins_on_path(root / "standin", sandbox.dir) as found:
            yield found, sandbox
    finally:
        stop_sandbox(root / "sandbox")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port held open: Milvus on natsmq with this port exits at once (docs/milvus.md, "The log line that proves the switch")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


class RecordingFollower:
    """Passes lines through and keeps them, to show where following started."""

    def __init__(self, inner) -> None:
        self.inner, self.seen = inner, []

    @property
    def source(self) -> str:
        return self.inner.source

    @property
    def ended(self) -> bool:
        return self.inner.ended

    def lines(self, deadline: float):
        for line in self.inner.lines(deadline):
            self.seen.append(line)
            yield line

    def close(self) -> None:
        self.inner.close()


def _failing_env(port: int) -> dict[str, str]:
    return {"MQ_TYPE": "natsmq", "NATSMQ_SERVER_PORT": str(port)}


def _restart_and_confirm(runtime, sandbox: Sandbox) -> RecordingFollower:
    stdout_log = sandbox.dir / "logs" / "stdout.log"
    before = stdout_log.stat().st_size
    mark = runtime.log_mark()
    runtime.start()
    runtime.wait_healthy(180)
    follower = RecordingFollower(runtime.log_follower(mark))
    try:
        evidence = wait_for_mq(follower, "rocksmq", time.monotonic() + 60, still_running=runtime.running)
    finally:
        follower.close()
    assert evidence.mq_type == "rocksmq"
    # Following began at the mark: the first line seen was written after it.
    written_after = stdout_log.read_bytes()[before:].decode("utf-8", "replace")
    assert follower.seen and written_after.startswith(follower.seen[0])
    return follower


def test_systemd_unit_environment_failed_start_and_restart(standins, taken_port: int, tmp_path: Path) -> None:
    from migrator.runtime.systemd import SystemdRuntime

    found, sandbox = standins
    env_file = tmp_path / "milvus.env"
    env_file.write_text("# from the package\nNATSMQ_SERVER_MAXPAYLOAD=8388608\n")
    unit = found.home / "units" / "milvus.service"
    unit.write_text(f"[Service]\nEnvironment=MQ_TYPE=natsmq \"NATSMQ_SERVER_PORT={taken_port}\"\n"
                    f"EnvironmentFile=-{tmp_path / 'absent.env'}\nEnvironmentFile={env_file}\nRestart=always\n")
    runtime = SystemdRuntime(unit="milvus.service", metrics_url=f"http://127.0.0.1:{sandbox.ports['metrics']}")

    assert runtime.environment() == {"MQ_TYPE": "natsmq", "NATSMQ_SERVER_PORT": str(taken_port),
                                     "NATSMQ_SERVER_MAXPAYLOAD": "8388608"}
    assert runtime.running()
    stopped = runtime.stop(30)
    assert stopped.pid is not None and not runtime.running()

    runtime.start()  # the unit's environment reaches Milvus: it exits at once
    with pytest.raises(StartFailed, match="unit milvus.service exited") as failure:
        runtime.wait_healthy(60)
    assert failure.value.hint == "journalctl -u milvus.service -n 100 --no-pager"
    assert runtime.state() == "failed"

    unit.write_text(f"[Service]\nEnvironment=MQ_TYPE=rocksmq\nEnvironmentFile={env_file}\n")
    follower = _restart_and_confirm(runtime, sandbox)
    assert not any("mqType=natsmq" in line for line in follower.seen)
