"""What docker (or podman) says about a container: `inspect` parsed into the few facts the runtimes use."""

from __future__ import annotations

import json
from dataclasses import dataclass

from migrator.errors import Refused
from migrator.runtime.base import run_argv


@dataclass(frozen=True)
class ContainerState:
    running: bool
    pid: int | None
    exit_code: int | None
    status: str
    env: dict[str, str]


def parse_inspect(text: str, name: str) -> ContainerState:
    """`docker inspect NAME` output (a JSON list with one object)."""
    try:
        record = json.loads(text)[0]
        state, config = record["State"], record["Config"]
    except (ValueError, LookupError, TypeError) as error:
        raise Refused(f"`docker inspect {name}`: unexpected output ({error})") from None
    env: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    pid = state.get("Pid") or None
    return ContainerState(bool(state.get("Running")), pid, state.get("ExitCode"), str(state.get("Status", "")), env)


def inspect(name: str, timeout_s: float) -> ContainerState:
    return parse_inspect(run_argv(["docker", "inspect", name], timeout_s).stdout, name)
