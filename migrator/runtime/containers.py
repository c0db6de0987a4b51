"""What a container engine (docker or podman: one CLI grammar) says about a container, the engine
to use, and where a container path lives on the host.

`docker inspect NAME` and `podman inspect NAME` print the same shape for what the runtimes read:
State (Running, Pid, ExitCode, Status), Config.Env, Mounts (Type, Source, Destination) and
HostConfig.RestartPolicy.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from migrator.errors import Refused
from migrator.runtime.base import run_argv

ENGINES = ("docker", "podman")
RESTART_SETTLE_S = 2.0  # podman restarts an exited container within ~0.1 s; docker backs off 100 ms first


@dataclass(frozen=True)
class ContainerState:
    running: bool
    pid: int | None
    exit_code: int | None
    status: str
    env: dict[str, str]
    mounts: dict[str, Path] = field(default_factory=dict)  # container path -> host path
    restart_policy: str = ""
    id: str = ""
    finished_at: datetime | None = None  # when it last exited

    def engine_may_restart(self, settle_s: float) -> bool:
        """Exited on its own less than `settle_s` ago, with a restart policy that starts it again:
        the engine is about to (podman does within ~0.1 s, docker after a back-off)."""
        if self.running or self.finished_at is None:
            return False
        if not (self.restart_policy in ("always", "unless-stopped")
                or (self.restart_policy == "on-failure" and self.exit_code)):
            return False
        return (datetime.now(timezone.utc) - self.finished_at).total_seconds() < settle_s


def parse_inspect(text: str, name: str) -> ContainerState:
    """`docker inspect NAME` output (a JSON list with one object)."""
    try:
        record = json.loads(text)[0]
        state, config = record["State"], record["Config"]
    except (ValueError, LookupError, TypeError) as error:
        raise Refused(f"`inspect {name}`: unexpected output ({error})") from None
    env: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    mounts: dict[str, Path] = {}
    for mount in record.get("Mounts") or []:
        # Binds and named volumes both have a host directory the tool can read; tmpfs has none.
        if mount.get("Type") in ("bind", "volume") and mount.get("Source") and mount.get("Destination"):
            mounts[str(mount["Destination"]).rstrip("/") or "/"] = Path(mount["Source"])
    restart = ((record.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or ""
    pid = state.get("Pid") or None
    return ContainerState(bool(state.get("Running")), pid, state.get("ExitCode"), str(state.get("Status", "")), env,
                          mounts, str(restart), str(record.get("Id", "")), _time(state.get("FinishedAt")))


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _time(text: object) -> datetime | None:
    """Docker's and podman's RFC 3339 times with nanoseconds; `0001-01-01T00:00:00Z` is never."""
    if not isinstance(text, str) or text.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", text).replace("Z", "+00:00"))
    except ValueError:
        return None


def running_settled(state: Callable[[], ContainerState], stopped_here: set[str], settle_s: float,
                    sleep: Callable[[float], None]) -> bool:
    """Is the container running, or about to run again? A container that exited on its own with a
    restart policy is started again by its engine moments later: until that settles, answering
    "stopped" would let a caller act on a container that comes back (a rollback writing the config
    and starting it while the engine restarts it). A stop of ours (`stopped_here`) is final."""
    current = state()
    until = time.monotonic() + settle_s
    while current.id not in stopped_here and current.engine_may_restart(settle_s):
        if time.monotonic() >= until:
            break
        sleep(0.1)
        current = state()
    return current.running


def inspect(engine: str, name: str, timeout_s: float) -> ContainerState:
    return parse_inspect(run_argv([engine, "inspect", "--type", "container", name], timeout_s).stdout, name)


def engine_on_path(chosen: str | None) -> str:
    """The engine the playbook names, or the first of docker, podman on PATH (podman's docker shim
    and the docker CLI against podman's socket both answer as `docker`)."""
    if chosen is not None:
        return chosen
    for engine in ENGINES:
        if shutil.which(engine):
            return engine
    return "docker"  # neither there: its first command says so


def host_path_in(mounts: Mapping[str, Path], container_path: str) -> Path | None:
    """Where a container path lives on the host, through the longest mount that covers it."""
    for target in sorted(mounts, key=len, reverse=True):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return mounts[target] / PurePosixPath(container_path).relative_to(target)
    return None
