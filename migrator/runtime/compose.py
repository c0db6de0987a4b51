"""Milvus as a docker compose service (Milvus's deployments/docker/standalone/docker-compose.yml).

What the container sees is read from the compose file itself: `environment:` (list or map) and
`env_file:`, and the bind mounts that say where a container path lives on the host (a config
file or data path on no mount is refused at plan: migration/preflight.py `mount_findings`).
The compose tool is `docker compose`, `docker-compose` or `podman-compose`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator.errors import BadInput
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
    host_path_in,
    inspect,
    running_settled,
)
from migrator.runtime.netns import SharedRelays

_STOP_MARGIN_S = 30.0
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


# --- the compose file ---------------------------------------------------------------------


@dataclass(frozen=True)
class ComposeService:
    file: Path
    name: str
    definition: dict[str, Any]
    variables: Mapping[str, str]  # for ${...} interpolation: the project's .env, then the shell

    @property
    def project_dir(self) -> Path:
        return self.file.parent

    def interpolate(self, text: str) -> str:
        return _VARIABLE.sub(lambda m: _substitute(m, self.variables), text)

    def environment(self) -> dict[str, str]:
        """env_file: first (in order), then environment: (it wins, as in compose)."""
        from migrator.config.envrules import read_env_file

        variables: dict[str, str] = {}
        for path, required in self._env_files():
            if not required and not path.exists():
                continue
            variables.update(read_env_file(path))
        declared = self.definition.get("environment") or {}
        if isinstance(declared, dict):
            pairs = [(str(k), None if v is None else str(v)) for k, v in declared.items()]
        else:
            pairs = [(k, v if eq else None) for k, eq, v in (str(item).partition("=") for item in declared)]
        for key, value in pairs:
            if value is None:  # `- MQ_TYPE` alone: passed through from the shell running compose
                if key in self.variables:
                    variables[key] = self.variables[key]
            else:
                variables[key] = self.interpolate(value)
        return variables

    def _env_files(self) -> list[tuple[Path, bool]]:
        declared = self.definition.get("env_file") or []
        items = [declared] if isinstance(declared, (str, dict)) else declared
        files = []
        for item in items:
            path, required = (item.get("path"), item.get("required", True)) if isinstance(item, dict) else (item, True)
            files.append((self._host(self.interpolate(str(path))), bool(required)))
        return files

    def bind_mounts(self) -> dict[str, Path]:
        """Container path -> host path of every bind mount (named volumes have no host path we may use)."""
        mounts: dict[str, Path] = {}
        for volume in self.definition.get("volumes") or []:
            if isinstance(volume, dict):
                if volume.get("type", "volume") != "bind":
                    continue
                source = self.interpolate(str(volume.get("source", "")))
                target = str(volume.get("target", ""))
            else:
                parts = self.interpolate(str(volume)).split(":")
                if len(parts) < 2:
                    continue  # an anonymous volume
                source, target = parts[0], parts[1]
            if not source.startswith(("/", ".", "~")):
                continue  # a named volume
            mounts[target.rstrip("/") or "/"] = self._host(source)
        return mounts

    def _host(self, path: str) -> Path:
        expanded = Path(os.path.expanduser(path))
        return expanded if expanded.is_absolute() else (self.project_dir / expanded).resolve()

    def host_path(self, container_path: str) -> Path | None:
        """Where a container path lives on the host, via the longest bind mount that covers it."""
        return host_path_in(self.bind_mounts(), container_path)


def _substitute(match: re.Match[str], variables: Mapping[str, str]) -> str:
    if match.group(0) == "$$":
        return "$"
    expression = match["braced"] if match["braced"] is not None else match["bare"]
    for operator in (":-", "-", ":?", "?"):
        name, sep, default = expression.partition(operator)
        if sep:
            value = variables.get(name)
            empty = value is None or (operator.startswith(":") and value == "")
            if empty and "?" in operator:
                raise BadInput(f"compose variable {name} is required: {default or 'not set'}")
            return default if empty else str(value)
    return variables.get(expression, "")


def load_service(file: Path, service: str, environ: Mapping[str, str]) -> ComposeService:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from migrator.config.envrules import read_env_file

    try:
        document = YAML(typ="safe").load(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise BadInput(f"runtime.file {file}: cannot read it ({error.strerror})") from None
    except YAMLError as error:
        raise BadInput(f"runtime.file {file}: not valid YAML: {str(error).splitlines()[0]}") from None
    services = (document or {}).get("services") or {}
    if service not in services:
        raise BadInput(f"runtime.service {service}: not a service of {file} (it has: {', '.join(services) or 'none'})")
    dotenv = file.parent / ".env"
    # compose reads the project's .env for interpolation; the shell's variables win over it.
    variables = {**(read_env_file(dotenv) if dotenv.exists() else {}), **environ}
    return ComposeService(file=file, name=service, definition=services[service] or {}, variables=variables)


# --- the runtime --------------------------------------------------------------------------

COMPOSE_TOOLS = ("docker compose", "docker-compose", "podman-compose")


def compose_on_path(chosen: str | None) -> str:
    """The compose tool the playbook names, or the first that works here: `docker compose` (the
    plugin), `docker-compose`, `podman-compose`."""
    if chosen is not None:
        return chosen
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                 stdin=subprocess.DEVNULL, timeout=30).returncode == 0:
        return "docker compose"
    for tool in ("docker-compose", "podman-compose"):
        if shutil.which(tool):
            return tool
    return "docker compose"  # none there: its first command says so


@dataclass
class ComposeRuntime:
    """Every compose tool labels its containers with the service and the project's directory
    (com.docker.compose.service, com.docker.compose.project.working_dir): the service's container
    is found by those labels with the container engine itself, which works the same for all three
    tools (podman-compose's `ps` takes no service and no `-a`). Logs come from the engine too
    (`logs -f --since`), the same for all three."""

    file: Path
    service: str
    metrics_url: str
    environ: Mapping[str, str] = field(default_factory=dict)  # the shell compose would run in
    engine: str = "docker compose"  # or docker-compose, podman-compose
    timeout_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    kind: str = "compose"
    _relays: SharedRelays = field(default_factory=SharedRelays, repr=False)
    _stopped_here: set[str] = field(default_factory=set, repr=False)  # container ids this runtime stopped

    @property
    def container_engine(self) -> str:
        return "podman" if self.engine == "podman-compose" else "docker"

    def _compose(self, *args: str) -> list[str]:
        return [*self.engine.split(), "-f", str(self.file), *args]

    def commands(self, stop_deadline_s: float) -> dict[str, list[str]]:
        return {"stop": self._compose("stop", "-t", str(int(stop_deadline_s + 0.999)), self.service),
                "start": self._compose("up", "-d", self.service),
                "logs": [self.container_engine, "logs", "-f", "--since", "{since_unix}", "<container>"],
                "running": [self.container_engine, "ps", "-a", "-q", "--no-trunc"]}

    def container_id(self) -> str | None:
        """The service's container, running or not (the newest if several)."""
        directories = dict.fromkeys([str(self.file.parent.resolve()), str(self.file.parent)])
        for directory in directories:
            ids = run_argv([self.container_engine, "ps", "-a", "-q", "--no-trunc",
                            "--filter", f"label=com.docker.compose.service={self.service}",
                            "--filter", f"label=com.docker.compose.project.working_dir={directory}"],
                           self.timeout_s).stdout.split()
            if ids:
                return ids[0]
        return None

    def _container_state(self) -> ContainerState | None:
        container = self.container_id()
        return inspect(self.container_engine, container, self.timeout_s) if container else None

    def running(self) -> bool:
        """Running, or exited on its own a moment ago and about to be restarted by its engine."""
        state = self._container_state()
        if state is None:
            return False
        return running_settled(lambda: inspect(self.container_engine, state.id, self.timeout_s), self._stopped_here,
                               RESTART_SETTLE_S, self.sleep)

    def stop(self, deadline_s: float) -> StopResult:
        started = time.monotonic()
        state = self._container_state()
        if state is None:
            return StopResult(pid=None, graceful=True, seconds=0.0)
        # Also when it is not running: a restart policy may be about to start it again.
        run_argv(self.commands(deadline_s)["stop"], deadline_s + _STOP_MARGIN_S, error=StopFailed)
        self._stopped_here.add(state.id)
        if not state.running:
            return StopResult(pid=None, graceful=True, seconds=0.0)
        if not wait_until_stopped(self.running, 15.0, self.sleep):
            raise StopFailed(f"service {self.service} still running after `{self.engine} stop`")
        return StopResult(pid=state.pid, graceful=time.monotonic() - started < deadline_s,
                          seconds=time.monotonic() - started)

    def start(self) -> None:
        self._stopped_here.clear()
        run_argv(self.commands(0)["start"], self.timeout_s, error=StartFailed)

    def wait_healthy(self, deadline_s: float, *, source: str | None = None) -> float:
        try:
            return wait_until_healthy(self.running, self.metrics_url, deadline_s,
                                      what=f"service {self.service}", sleep=self.sleep, source=source)
        except StartFailed as error:
            raise StartFailed(error.message,
                              hint=f"{self.engine} -f {self.file} logs --tail 100 {self.service}") from None

    def environment(self) -> dict[str, str]:
        return load_service(self.file, self.service, self.environ).environment()

    def mounts(self) -> dict[str, Path]:
        """Container path -> host path of the service's bind mounts, from the compose file (what
        `up -d` creates the container from)."""
        return load_service(self.file, self.service, self.environ).bind_mounts()

    def log_mark(self) -> dict[str, Any]:
        return time_mark()

    def log_follower(self, mark: dict[str, Any]) -> Follower:
        """`logs -f` ends when the container stops: create it after the start."""
        from migrator.milvus.logs import CommandFollower

        container = self.container_id()
        if container is None:
            raise StartFailed(f"service {self.service} has no container")
        return CommandFollower([self.container_engine, "logs", "-f", "--since", mark["since_unix"], container])

    def reach(self, port: int) -> AbstractContextManager[str]:
        state = self._container_state()
        if state is None or not state.running or state.pid is None:
            raise ReachUnavailable(f"cannot reach port {port} inside service {self.service}: it is not running")
        return self._relays.reach(state.pid, port, what=f"service {self.service}")
