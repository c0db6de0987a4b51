"""What a container engine (docker or podman: one CLI grammar) says about a container, the engine
to use, and where a container path lives on the host.

`docker inspect NAME` and `podman inspect NAME` print the same shape for what the runtimes read:
State (Running, Pid, ExitCode, Status), Config.Env, Mounts (Type, Source, Destination) and
HostConfig.RestartPolicy.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Mapping

from migrator.errors import Refused
from migrator.runtime.base import run_argv

ENGINES = ("docker", "podman")


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
                          mounts, str(restart), str(record.get("Id", "")))


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
