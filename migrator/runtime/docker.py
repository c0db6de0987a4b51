"""Milvus as one container (standalone_embed.sh's `milvus-standalone`), driven by `docker` or
`podman` (the same commands and flags for everything used here).

`stop -t N` sends SIGTERM and SIGKILLs after N s; a container stopped that way stays stopped
whatever its restart policy (seen with podman's `--restart=always`), and `stop` also cancels a
restart the engine has pending for a container that just exited. Logs are `logs -f --since`
(Milvus's stdout and stderr). The container's loopback is reached through its network namespace
(runtime/netns.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator.milvus.logs import Follower
from migrator.runtime.base import (
    ReachUnavailable,
    StartFailed,
    StopFailed,
    StopResult,
    run_argv,
    time_mark,
    wait_until_healthy,
    wait_until_stopped,
)
from migrator.runtime.containers import (
    RESTART_SETTLE_S,
    ContainerState,
    inspect,
    running_settled,
)
from migrator.runtime.netns import SharedRelays

_STOP_MARGIN_S = 30.0  # the engine's own SIGKILL comes at the deadline; allow it time to land


@dataclass
class DockerRuntime:
    container: str
    metrics_url: str
    engine: str = "docker"  # or podman
    timeout_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    kind: str = "docker"
    _relays: SharedRelays = field(default_factory=SharedRelays, repr=False)
    _stopped_here: set[str] = field(default_factory=set, repr=False)  # container ids this runtime stopped

    def commands(self, stop_deadline_s: float) -> dict[str, list[str]]:
        return {"stop": [self.engine, "stop", "-t", str(math.ceil(stop_deadline_s)), self.container],
                "start": [self.engine, "start", self.container],
                "logs": [self.engine, "logs", "-f", "--since", "{since_unix}", self.container],
                "running": [self.engine, "inspect", self.container]}

    def state(self) -> ContainerState:
        return inspect(self.engine, self.container, self.timeout_s)

    def running(self) -> bool:
        """Running, or exited on its own a moment ago and about to be restarted by its engine."""
        return running_settled(self.state, self._stopped_here, RESTART_SETTLE_S, self.sleep)

    def mounts(self) -> dict[str, Path]:
        """Container path -> host path of each bind mount and volume, as the container runs now."""
        return self.state().mounts

    def stop(self, deadline_s: float) -> StopResult:
        started = time.monotonic()
        state = self.state()
        # Also when it is not running: an engine with a restart policy may be about to start it again.
        run_argv(self.commands(deadline_s)["stop"], deadline_s + _STOP_MARGIN_S, error=StopFailed)
        self._stopped_here.add(state.id)
        if not state.running:
            return StopResult(pid=None, graceful=True, seconds=0.0)
        if not wait_until_stopped(self.running, 15.0, self.sleep):
            raise StopFailed(f"container {self.container} still running after `{self.engine} stop`")
        graceful = time.monotonic() - started < deadline_s
        return StopResult(pid=state.pid, graceful=graceful, seconds=time.monotonic() - started)

    def start(self) -> None:
        self._stopped_here.clear()
        run_argv(self.commands(0)["start"], self.timeout_s, error=StartFailed)

    def wait_healthy(self, deadline_s: float, *, source: str | None = None) -> float:
        try:
            return wait_until_healthy(self.running, self.metrics_url, deadline_s,
                                      what=f"container {self.container}", sleep=self.sleep, source=source)
        except StartFailed as error:
            state = self.state()
            detail = f" (status {state.status}, exit code {state.exit_code})" if not state.running else ""
            raise StartFailed(error.message + detail,
                              hint=f"{self.engine} logs --tail 100 {self.container}") from None

    def environment(self) -> dict[str, str]:
        return self.state().env

    def log_mark(self) -> dict[str, Any]:
        return time_mark()

    def log_follower(self, mark: dict[str, Any]) -> Follower:
        """`logs -f` ends when the container stops: create it after the start."""
        from migrator.milvus.logs import CommandFollower

        return CommandFollower([self.engine, "logs", "-f", "--since", mark["since_unix"], self.container])

    def reach(self, port: int) -> AbstractContextManager[str]:
        state = self.state()
        if not state.running or state.pid is None:
            raise ReachUnavailable(f"cannot reach port {port} inside container {self.container}: it is not running")
        return self._relays.reach(state.pid, port, what=f"container {self.container}")
