"""The `command` runtime: the operator writes Milvus's stop/start/running/logs commands in the playbook."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from migrator.milvus.logs import Follower
from migrator.runtime.base import (
    StartFailed,
    StopFailed,
    StopResult,
    healthz_ok,
    run_argv,
    same_host,
    time_mark,
    wait_until_healthy,
    wait_until_stopped,
)


@dataclass
class CommandRuntime:
    stop_argv: list[str]
    start_argv: list[str]
    logs_argv: list[str]
    metrics_url: str
    running_argv: list[str] | None = None
    declared_env: Mapping[str, str] = field(default_factory=dict)  # playbook environment + env files
    timeout_s: float = 300.0
    stop_grace_s: float = 15.0  # after the stop command returns, for `running` to say no
    sleep: Callable[[float], None] = time.sleep
    kind: str = "command"

    def commands(self, stop_deadline_s: float) -> dict[str, list[str]]:
        found = {"stop": self.stop_argv, "start": self.start_argv, "logs": self.logs_argv}
        return {**found, "running": self.running_argv} if self.running_argv else found

    def running(self) -> bool:
        if self.running_argv is None:
            return healthz_ok(self.metrics_url)
        return run_argv(self.running_argv, self.timeout_s, check=False).returncode == 0

    def stop(self, deadline_s: float) -> StopResult:
        started = time.monotonic()
        if not self.running():
            return StopResult(pid=None, graceful=True, seconds=0.0)
        run_argv(self.stop_argv, max(deadline_s, self.timeout_s), error=StopFailed)
        graceful = time.monotonic() - started <= deadline_s
        if not wait_until_stopped(self.running, self.stop_grace_s, self.sleep):
            raise StopFailed(f"Milvus still running after `{' '.join(self.stop_argv)}`")
        return StopResult(pid=None, graceful=graceful, seconds=time.monotonic() - started)

    def start(self) -> None:
        run_argv(self.start_argv, self.timeout_s, error=StartFailed)

    def wait_healthy(self, deadline_s: float, *, source: str | None = None) -> float:
        return wait_until_healthy(self.running, self.metrics_url, deadline_s, what="Milvus", sleep=self.sleep,
                                  source=source)

    def environment(self) -> dict[str, str]:
        return dict(self.declared_env)

    def log_mark(self) -> dict[str, Any]:
        return time_mark()

    def log_follower(self, mark: dict[str, Any]) -> Follower:
        from migrator.milvus.logs import CommandFollower

        argv = [arg.replace("{since_unix}", mark["since_unix"]).replace("{since}", mark["since"])
                for arg in self.logs_argv]
        return CommandFollower(argv)

    def reach(self, port: int) -> AbstractContextManager[str]:
        return same_host(self.metrics_url, port)
