"""Milvus as a systemd unit (the deb/rpm package's `milvus.service`).

The unit is stopped, never its process: with `Restart=always` a killed process respawns, a
stopped unit does not. Logs are journald's (Milvus writes `try to init mq` to stdout only),
followed from a cursor recorded before the restart.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.milvus.logs import Follower
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

# is-active states in which the unit's process exists or is about to (auto-restart included).
_ALIVE_STATES = {"active", "activating", "deactivating", "reloading", "refreshing"}
_KILL_GRACE_S = 15.0
_CURSOR_PREFIX = "-- cursor: "


@dataclass
class SystemdRuntime:
    unit: str
    metrics_url: str
    timeout_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    kind: str = "systemd"

    def state(self) -> str:
        # is-active exits 3 for inactive/failed: its stdout is the answer either way.
        return run_argv(["systemctl", "is-active", self.unit], self.timeout_s, check=False).stdout.strip()

    def running(self) -> bool:
        return self.state() in _ALIVE_STATES

    def main_pid(self) -> int | None:
        out = run_argv(["systemctl", "show", self.unit, "-p", "MainPID", "--value"], self.timeout_s).stdout.strip()
        return int(out) if out.isdigit() and int(out) > 0 else None

    def stop(self, deadline_s: float) -> StopResult:
        """`systemctl stop --no-block`: the stop job is queued at once, so Restart=always brings
        nothing back, and systemctl returns; past our deadline (the unit's own TimeoutStopSec may be
        longer), SIGKILL the unit's processes with `systemctl kill` and wait for it to go inactive."""
        started = time.monotonic()
        if not self.running():
            return StopResult(pid=None, graceful=True, seconds=0.0)
        pid = self.main_pid()
        run_argv(self.commands(deadline_s)["stop"], self.timeout_s, error=StopFailed)
        graceful = wait_until_stopped(self.running, deadline_s, self.sleep)
        if not graceful:
            run_argv(["systemctl", "kill", "--signal=SIGKILL", self.unit], self.timeout_s, error=StopFailed)
        if not wait_until_stopped(self.running, _KILL_GRACE_S, self.sleep):
            raise StopFailed(f"unit {self.unit} still {self.state()} after stop", hint=f"systemctl status {self.unit}")
        return StopResult(pid=pid, graceful=graceful, seconds=time.monotonic() - started)

    def start(self) -> None:
        try:
            run_argv(self.commands(0)["start"], self.timeout_s, error=StartFailed)
        except StartFailed as error:
            raise StartFailed(error.message, hint=f"journalctl -u {self.unit} -n 100 --no-pager") from None

    def wait_healthy(self, deadline_s: float, *, source: str | None = None) -> float:
        try:
            return wait_until_healthy(self.running, self.metrics_url, deadline_s, what=f"unit {self.unit}",
                                      sleep=self.sleep, source=source)
        except StartFailed as error:
            raise StartFailed(error.message, hint=f"journalctl -u {self.unit} -n 100 --no-pager") from None

    def environment(self) -> dict[str, str]:
        """Environment= then EnvironmentFile= (files win, as in systemd), drop-ins included."""
        from migrator.config.envrules import read_env_file

        shown = run_argv(["systemctl", "show", self.unit, "-p", "Environment", "-p", "EnvironmentFiles"],
                         self.timeout_s).stdout
        variables, files = parse_show_environment(shown)
        for path, optional in files:
            if optional and not path.exists():
                continue
            variables.update(read_env_file(path))
        return variables

    def commands(self, stop_deadline_s: float) -> dict[str, list[str]]:
        return {"stop": ["systemctl", "stop", "--no-block", self.unit], "start": ["systemctl", "start", self.unit],
                "logs": ["journalctl", "-u", self.unit, "-f", "-o", "cat", "--no-pager", "--no-tail"],
                "running": ["systemctl", "is-active", self.unit]}

    def exec_start(self) -> list[str]:
        """The argv of the unit's ExecStart= (a rehearsal runs the same binary on a copy)."""
        shown = run_argv(["systemctl", "show", self.unit, "-p", "ExecStart", "--value"], self.timeout_s).stdout
        return parse_exec_start(shown)

    def log_mark(self) -> dict[str, Any]:
        out = run_argv(["journalctl", "-u", self.unit, "-n", "1", "--show-cursor", "-o", "cat", "--no-pager"],
                       self.timeout_s).stdout
        cursors = [line[len(_CURSOR_PREFIX):] for line in out.splitlines() if line.startswith(_CURSOR_PREFIX)]
        # No entry yet for the unit: nothing old can be mistaken for new, a time will do.
        return {"cursor": cursors[-1] if cursors else None, **time_mark()}

    def log_follower(self, mark: dict[str, Any]) -> Follower:
        from migrator.milvus.logs import CommandFollower

        where = ["--after-cursor", mark["cursor"]] if mark.get("cursor") else ["--since",
                                                                               f"@{int(float(mark['since_unix']))}"]
        # --no-tail: -f alone would start at the last 10 lines, not at the mark.
        return CommandFollower([*self.commands(0)["logs"], *where])

    def reach(self, port: int) -> AbstractContextManager[str]:
        return same_host(self.metrics_url, port)


def parse_show_environment(text: str) -> tuple[dict[str, str], list[tuple[Path, bool]]]:
    """`systemctl show -p Environment -p EnvironmentFiles` output: the variables of Environment=
    and the (path, optional) of each EnvironmentFiles= line (`/etc/x (ignore_errors=yes)`)."""
    variables: dict[str, str] = {}
    files: list[tuple[Path, bool]] = []
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if not sep:
            continue
        if name == "Environment":
            for assignment in shlex.split(value):
                key, eq, val = assignment.partition("=")
                if eq:
                    variables[key] = val
        elif name == "EnvironmentFiles" and value.strip():
            path, _, flags = value.strip().partition(" (")
            files.append((Path(path), "ignore_errors=yes" in flags))
    return variables, files


def parse_exec_start(text: str) -> list[str]:
    """`systemctl show -p ExecStart --value`: `{ path=/usr/bin/milvus ; argv[]=/usr/bin/milvus run
    standalone ; ignore_errors=no ; ... }` -> the argv; [] when there is none."""
    _, found, rest = text.partition("argv[]=")
    return shlex.split(rest.split(" ;", 1)[0]) if found else []
