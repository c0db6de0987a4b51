"""Milvus as a docker compose service (Milvus's deployments/docker/standalone/docker-compose.yml).

What the container sees is read from the compose file itself: `environment:` (list or map) and
`env_file:`, and the bind mounts that say where a container path lives on the host. A config
the host cannot reach through a mount must not be edited: the edit would vanish with the
container, so `host_config_file` refuses.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping

from migrator.errors import BadInput, Refused
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
        mounts = self.bind_mounts()
        for target in sorted(mounts, key=len, reverse=True):
            if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
                return mounts[target] / PurePosixPath(container_path).relative_to(target)
        return None

    def host_config_file(self, config_dir_in_container: str, name: str) -> Path:
        """The host side of `<config dir>/<name>` (milvus.yaml, user.yaml); Refused when not mounted."""
        inside = f"{config_dir_in_container.rstrip('/')}/{name}"
        host = self.host_path(inside)
        if host is None:
            raise Refused(
                f"{self.file}: service {self.name} does not mount {inside} from the host; "
                "an edit inside the container is lost when it is recreated",
                hint=f"add `- ./{name}:{inside}` to the service's volumes, recreate it, then plan again",
            )
        return host


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


@dataclass
class ComposeRuntime:
    file: Path
    service: str
    metrics_url: str
    environ: Mapping[str, str] = field(default_factory=dict)  # the shell compose would run in
    timeout_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    kind: str = "compose"

    def _compose(self, *args: str) -> list[str]:
        return ["docker", "compose", "-f", str(self.file), *args]

    def _container_state(self):
        ids = run_argv(self._compose("ps", "-a", "-q", self.service), self.timeout_s).stdout.split()
        return inspect(ids[0], self.timeout_s) if ids else None

    def running(self) -> bool:
        state = self._container_state()
        return state is not None and state.running

    def stop(self, deadline_s: float) -> StopResult:
        started = time.monotonic()
        state = self._container_state()
        if state is None or not state.running:
            return StopResult(pid=None, graceful=True, seconds=0.0)
        run_argv(self._compose("stop", "-t", str(int(deadline_s + 0.999)), self.service),
                 deadline_s + _STOP_MARGIN_S, error=StopFailed)
        if not wait_until_stopped(self.running, 15.0, self.sleep):
            raise StopFailed(f"service {self.service} still running after `docker compose stop`")
        return StopResult(pid=state.pid, graceful=time.monotonic() - started < deadline_s,
                          seconds=time.monotonic() - started)

    def start(self) -> None:
        run_argv(self._compose("up", "-d", self.service), self.timeout_s, error=StartFailed)

    def wait_healthy(self, deadline_s: float) -> float:
        try:
            return wait_until_healthy(self.running, self.metrics_url, deadline_s,
                                      what=f"service {self.service}", sleep=self.sleep)
        except StartFailed as error:
            raise StartFailed(error.message, hint=f"docker compose -f {self.file} logs --tail 100 {self.service}") from None

    def environment(self) -> dict[str, str]:
        return load_service(self.file, self.service, self.environ).environment()

    def log_mark(self) -> dict[str, Any]:
        return time_mark()

    def log_follower(self, mark: dict[str, Any]):
        from migrator.milvus.logs import CommandFollower

        return CommandFollower(self._compose("logs", "-f", "--no-log-prefix", "--since", mark["since_unix"], self.service))

    def reach(self, port: int):
        # The container's loopback is not this host's; until the relay through its network
        # namespace exists this dials the published host, which only works with host networking.
        return same_host(self.metrics_url, port)
