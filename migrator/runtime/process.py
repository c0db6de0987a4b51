"""A Milvus process this tool starts itself (the sandbox): start detached, prove it healthy,
stop it with a deadline and prove it gone.

The pid file records the process start time too, so a recycled pid is never mistaken for
Milvus (and never signalled).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator.milvus.logs import Follower
from migrator.runtime.base import (
    HEALTH_POLL_S,
    StartFailed,
    StopFailed,
    StopResult,
    healthz_ok,
    same_host,
)


def _proc_start_ticks(pid: int) -> int | None:
    """Start time of a live (non-zombie) pid in clock ticks since boot, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)


@dataclass
class ProcessRuntime:
    argv: Sequence[str]
    cwd: Path
    pid_file: Path
    stdout_log: Path
    metrics_url: str
    variables: Mapping[str, str] = field(default_factory=dict)  # set for Milvus on top of what it inherits
    log_path: Path | None = None  # where Milvus's log lines land; stdout_log when None
    inherited_environ: Mapping[str, str] | None = None  # what the child inherits; os.environ when None
    sleep: Callable[[float], None] = time.sleep
    kind: str = "process"

    def _child_environ(self) -> dict[str, str]:
        base = os.environ if self.inherited_environ is None else self.inherited_environ
        return {**base, **self.variables}

    def running(self) -> bool:
        return self.running_pid() is not None

    def commands(self, stop_deadline_s: float) -> dict[str, list[str]]:
        return {"start": list(self.argv)}

    def environment(self) -> dict[str, str]:
        return self._child_environ()

    def log_mark(self) -> dict:
        from dataclasses import asdict

        from migrator.milvus.logs import mark

        return asdict(mark(self.log_path or self.stdout_log))

    def log_follower(self, mark: dict[str, Any]) -> Follower:
        from migrator.milvus.logs import FileFollower, Position

        return FileFollower(self.log_path or self.stdout_log, Position(**mark))

    def running_pid(self) -> int | None:
        try:
            record = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        pid, ticks = record.get("pid"), record.get("start_ticks")
        if not isinstance(pid, int):
            return None
        return pid if _proc_start_ticks(pid) == ticks else None

    def start(self) -> int:
        """Launch detached unless already running; returns the pid."""
        if (pid := self.running_pid()) is not None:
            return pid
        self.stdout_log.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.stdout_log, "ab") as log:
            process = subprocess.Popen(
                list(self.argv),
                cwd=self.cwd,
                env=self._child_environ(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # detached: survives the CLI, not hit by its Ctrl-C
            )
        record = {"pid": process.pid, "start_ticks": _proc_start_ticks(process.pid), "argv": list(self.argv)}
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.pid_file)
        return process.pid

    def wait_healthy(self, deadline_s: float, ready: Callable[[], bool] | None = None, *,
                     source: str | None = None) -> float:
        """Block until healthz says OK (and `ready()` holds); fail fast if the process exits."""
        started = time.monotonic()
        while True:
            if self.running_pid() is None:
                raise StartFailed(f"Milvus exited during start-up; see {self.stdout_log}")
            if healthz_ok(self.metrics_url, source=source) and (ready is None or ready()):
                return time.monotonic() - started
            if time.monotonic() - started > deadline_s:
                raise StartFailed(f"Milvus not healthy within {deadline_s:.0f} s; see {self.stdout_log}")
            self.sleep(HEALTH_POLL_S)

    def stop(self, deadline_s: float) -> StopResult:
        """SIGTERM, wait up to the deadline, then SIGKILL; return once the process is proven gone."""
        started = time.monotonic()
        pid = self.running_pid()
        if pid is None:
            return StopResult(pid=None, graceful=True, seconds=0.0)
        os.kill(pid, signal.SIGTERM)
        graceful = self._wait_gone(pid, deadline_s)
        if not graceful:
            # After FlushAll a SIGKILL loses nothing; a graceful stop can hang for minutes.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not self._wait_gone(pid, 15.0):
                raise StopFailed(f"Milvus pid {pid} still alive after SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        return StopResult(pid=pid, graceful=graceful, seconds=time.monotonic() - started)

    def _wait_gone(self, pid: int, seconds: float) -> bool:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            _reap(pid)
            if _proc_start_ticks(pid) is None:
                return True
            self.sleep(0.1)
        _reap(pid)
        return _proc_start_ticks(pid) is None

    def reach(self, port: int) -> AbstractContextManager[str]:
        return same_host(self.metrics_url, port)
