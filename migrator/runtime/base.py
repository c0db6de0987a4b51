"""The one interface every deployment shape implements (process, systemd, compose, docker, command),
and the helpers they share: running a deployment's commands, waiting for health or for a stop,
the stop result and the errors of a start or a stop.

Every command is an argv list (no shell), has a timeout, and a failure becomes a domain error
quoting the command and the tail of its stderr.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import urlsplit

from migrator.errors import MigrateError, Refused
from migrator.milvus.logs import Follower


class Runtime(Protocol):
    kind: str
    metrics_url: str  # Milvus's metrics port: /healthz, /metrics

    def running(self) -> bool:
        """Is Milvus (the process, unit or container) alive right now?"""

    def stop(self, deadline_s: float) -> StopResult:
        """Stop, escalating after the deadline; return once Milvus is proven gone."""

    def start(self) -> object:
        """Start Milvus; returns once it is launched (health is waited for separately). What it
        returns is the runtime's own (a process runtime's pid); callers through this protocol ignore it."""

    def wait_healthy(self, deadline_s: float, *, source: str | None = None) -> float:
        """Block until healthz says OK; fail fast when Milvus exits. Returns the seconds waited.
        `source`: the local address healthz is asked from (the firewall gate's exempt one)."""

    def environment(self) -> dict[str, str]:
        """The environment variables the Milvus process sees (they beat config files)."""

    def commands(self, stop_deadline_s: float) -> dict[str, list[str]]:
        """The argv of each command stop/start/logs/running would run (`apply --dry-run` shows and
        checks them); a process runtime signals its pid to stop, so it has no stop command."""

    def log_mark(self) -> dict[str, Any]:
        """A JSON-able position in Milvus's log: lines after it are written after this call."""

    def log_follower(self, mark: dict[str, Any]) -> Follower:
        """Follow Milvus's log from a mark taken before a restart."""

    def reach(self, port: int) -> AbstractContextManager[str]:
        """`host:port` from which this tool reaches a port Milvus listens on in its own network
        namespace (its embedded NATS binds 127.0.0.1 only), for as long as the context lasts."""


@contextmanager
def same_host(metrics_url: str, port: int) -> Iterator[str]:
    """`reach` for a Milvus whose loopback is this tool's: the host of its metrics URL."""
    host = urlsplit(metrics_url).hostname or "127.0.0.1"
    yield f"{host}:{port}"


# healthz is one cheap HTTP call; each poll missed is time clients wait for (inside the window).
HEALTH_POLL_S = 0.1


class ReachUnavailable(Refused):
    """This tool cannot reach a port in Milvus's network namespace (not root, the process not
    visible from here, the container not running)."""


class StartFailed(Refused):
    """Milvus did not come up: exited, or not healthy before the deadline."""


class StopFailed(MigrateError):
    """Milvus is still alive after SIGKILL."""


@dataclass
class StopResult:
    pid: int | None
    graceful: bool
    seconds: float


def http_get(url: str, timeout: float = 2.0, *, source: str | None = None) -> tuple[int, str]:
    """GET `url`; (status, body). With `source`, asked from that local address (a closed gate's exempt one)."""
    from migrator.util.http import get

    status, body = get(url, timeout, source=source, limit=1 << 20)
    return status, body.decode("utf-8", "replace")


def healthz_ok(metrics_url: str, *, source: str | None = None) -> bool:
    try:
        status, body = http_get(metrics_url.rstrip("/") + "/healthz", source=source)
    except OSError:
        return False
    return status == 200 and body.strip() == "OK"


_STDERR_TAIL_LINES = 5
_STDERR_TAIL_CHARS = 600


class CommandFailed(MigrateError):
    """A deployment command (systemctl, docker, kubectl, ...) failed or timed out."""


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def stderr_tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()][-_STDERR_TAIL_LINES:]
    return " | ".join(lines)[-_STDERR_TAIL_CHARS:]


def run_argv(
    argv: Sequence[str],
    timeout_s: float,
    *,
    check: bool = True,
    error: type[MigrateError] = CommandFailed,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """Run `argv`; with `check`, a non-zero exit raises `error` naming the command and its stderr.
    Running past `timeout_s` raises `error` too."""
    command = list(argv)
    shown = " ".join(command)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError:
        raise Refused(f"`{shown}`: {command[0]} is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise error(f"`{shown}` did not finish within {timeout_s:.0f} s") from None
    result = Completed(command, done.returncode, done.stdout, done.stderr)
    if check and done.returncode != 0:
        tail = stderr_tail(done.stderr) or stderr_tail(done.stdout)
        raise error(f"`{shown}` failed (exit {done.returncode})" + (f": {tail}" if tail else ""))
    return result


def wait_until_healthy(
    running: Callable[[], bool],
    metrics_url: str,
    deadline_s: float,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    source: str | None = None,
) -> float:
    """Poll healthz until OK; fail fast once `running()` says Milvus is gone. Returns seconds waited.
    `source`: the local address to ask from (behind a closed firewall gate)."""
    started = time.monotonic()
    while True:
        if healthz_ok(metrics_url, source=source):
            return time.monotonic() - started
        if not running():
            raise StartFailed(f"{what} exited during start-up")
        if time.monotonic() - started > deadline_s:
            raise StartFailed(f"{what} not healthy within {deadline_s:.0f} s ({metrics_url}/healthz)")
        sleep(HEALTH_POLL_S)


def wait_until_stopped(running: Callable[[], bool], seconds: float,
                       sleep: Callable[[float], None] = time.sleep) -> bool:
    until = time.monotonic() + seconds
    while running():
        if time.monotonic() >= until:
            return False
        sleep(0.2)
    return True


def time_mark() -> dict[str, Any]:
    """A mark for log sources that filter by time (`--since`): now, as text and as unix seconds."""
    now = datetime.now(timezone.utc)
    return {"since": now.isoformat(timespec="microseconds"), "since_unix": f"{now.timestamp():.6f}"}


