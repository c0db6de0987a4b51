"""Milvus as one Docker container (standalone_embed.sh's `milvus-standalone`).

`docker stop -t N` sends SIGTERM and SIGKILLs after N s; a container with a restart policy stays
stopped after `docker stop`. Logs are `docker logs` (Milvus's stdout) since a time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from migrator.runtime.base import (
    StartFailed,
    StopFailed,
    StopResult,
    run_argv,
    same_host,
    time_mark,
    wait_until_healthy,
    wait_until_stopped,
)
from migrator.runtime.containers import inspect

_STOP_MARGIN_S = 30.0  # docker's own SIGKILL comes at the deadline; allow it time to land


@dataclass
class DockerRuntime:
    container: str
    metrics_url: str
    timeout_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    kind: str = "docker"

    def running(self) -> bool:
        return inspect(self.container, self.timeout_s).running

    def stop(self, deadline_s: float) -> StopResult:
        started = time.monotonic()
        state = inspect(self.container, self.timeout_s)
        if not state.running:
            return StopResult(pid=None, graceful=True, seconds=0.0)
        run_argv(["docker", "stop", "-t", str(math.ceil(deadline_s)), self.container],
                 deadline_s + _STOP_MARGIN_S, error=StopFailed)
        if not wait_until_stopped(self.running, 15.0, self.sleep):
            raise StopFailed(f"container {self.container} still running after `docker stop`")
        graceful = time.monotonic() - started < deadline_s
        return StopResult(pid=state.pid, graceful=graceful, seconds=time.monotonic() - started)

    def start(self) -> None:
        run_argv(["docker", "start", self.container], self.timeout_s, error=StartFailed)

    def wait_healthy(self, deadline_s: float) -> float:
        try:
            return wait_until_healthy(self.running, self.metrics_url, deadline_s,
                                      what=f"container {self.container}", sleep=self.sleep)
        except StartFailed as error:
            state = inspect(self.container, self.timeout_s)
            detail = f" (status {state.status}, exit code {state.exit_code})" if not state.running else ""
            raise StartFailed(error.message + detail, hint=f"docker logs --tail 100 {self.container}") from None

    def environment(self) -> dict[str, str]:
        return inspect(self.container, self.timeout_s).env

    def log_mark(self) -> dict[str, Any]:
        return time_mark()

    def log_follower(self, mark: dict[str, Any]):
        """`docker logs -f` ends when the container stops: create it after the start."""
        from migrator.milvus.logs import CommandFollower

        return CommandFollower(["docker", "logs", "-f", "--since", mark["since_unix"], self.container])

    def reach(self, port: int):
        # The container's loopback is not this host's; until the relay through its network
        # namespace exists this dials the published host, which only works with host networking.
        return same_host(self.metrics_url, port)
