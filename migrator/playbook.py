"""Playbooks: one YAML file describing one deployment, validated with errors naming field and line.

The token is never in the playbook: `milvus.token_env` names the variable that holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from migrator.errors import BadInput
from migrator.util.files import MIB, read_bounded

SCHEMA_VERSION = 1
PLAYBOOK_LIMIT = 1 * MIB  # a playbook is a page of YAML
# Aliases and merge keys are YAML and allowed, but what they expand to is bounded: a 1 KB alias
# bomb expands to billions of values.
MAX_VALUES = 100_000
MAX_DEPTH = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MilvusSpec(_Strict):
    uri: str = "http://127.0.0.1:19530"
    token_env: str | None = None
    metrics_url: str | None = None  # default: the uri's host on port 9091

    def token(self, environ: Mapping[str, str]) -> str | None:
        if self.token_env is None:
            return None
        if self.token_env not in environ:
            raise BadInput(f"milvus.token_env: environment variable {self.token_env} is not set")
        from migrator.util.redact import remember_token

        remember_token(environ[self.token_env])
        return environ[self.token_env]

    def health_url(self) -> str:
        if self.metrics_url:
            return self.metrics_url
        from urllib.parse import urlsplit

        # Cut the userinfo at its LAST `@` first: an unencoded `/` in a password would otherwise
        # end the host part early and make the password's head the host.
        rest = self.uri.split("://", 1)[-1]
        host = urlsplit("http://" + rest.rsplit("@", 1)[-1]).hostname or "127.0.0.1"
        return f"http://{host}:9091"


class EtcdSpec(_Strict):
    endpoint: str
    root_path: str = "by-dev"


class ConfigSpec(_Strict):
    dir: Path
    version: str | None = None
    etcd: EtcdSpec | None = None


class Deadlines(_Strict):
    deny_s: float = Field(30.0, gt=0)
    flush_s: float = Field(180.0, gt=0)
    stop_s: float = Field(30.0, gt=0)
    start_s: float = Field(240.0, gt=0)
    confirm_s: float = Field(120.0, gt=0)
    verify_s: float = Field(300.0, gt=0)
    # After writes are back: until every loaded collection answers a search again (read-downtime).
    readable_s: float = Field(900.0, gt=0)


class ProcessRuntimeSpec(_Strict):
    kind: Literal["process"]
    argv: list[str] = Field(min_length=1)
    cwd: Path
    env: dict[str, str] = {}
    pid_file: Path
    stdout_log: Path
    stop_timeout_s: float = Field(30.0, gt=0)
    start_timeout_s: float = Field(240.0, gt=0)


class SystemdRuntimeSpec(_Strict):
    """A deb/rpm install: the unit is stopped and started, never its process (Restart=always)."""

    kind: Literal["systemd"]
    unit: str = "milvus.service"
    command_timeout_s: float = Field(60.0, gt=0)  # systemctl calls other than stop


class ComposeRuntimeSpec(_Strict):
    """docker compose: the service is stopped and brought up again with `up -d`."""

    kind: Literal["compose"]
    # The compose tool; default: the first found of `docker compose`, docker-compose, podman-compose.
    engine: Literal["docker compose", "docker-compose", "podman-compose"] | None = None
    file: Path
    service: str = "standalone"
    config_dir_in_container: str = "/milvus/configs"  # where Milvus reads milvus.yaml/user.yaml
    command_timeout_s: float = Field(120.0, gt=0)

    @field_validator("file")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # The compose file's directory is also the base of its relative volume paths.
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value


class DockerRuntimeSpec(_Strict):
    """One container, e.g. the `milvus-standalone` of standalone_embed.sh."""

    kind: Literal["docker"]
    engine: Literal["docker", "podman"] | None = None  # default: docker if on PATH, else podman
    container: str = "milvus-standalone"
    config_dir_in_container: str = "/milvus/configs"  # where Milvus reads milvus.yaml/user.yaml
    command_timeout_s: float = Field(60.0, gt=0)


class CommandRuntimeSpec(_Strict):
    """Anything else: the operator gives the commands. `logs` must hold `{since}` or
    `{since_unix}` (replaced by the time of the mark) so that only lines written after it count."""

    kind: Literal["command"]
    stop: list[str] = Field(min_length=1)
    start: list[str] = Field(min_length=1)
    logs: list[str] = Field(min_length=1)
    running: list[str] | None = None  # exit 0 = running; without it, healthz answering = running
    command_timeout_s: float = Field(300.0, gt=0)

    @field_validator("logs")
    @classmethod
    def _logs_since(cls, value: list[str]) -> list[str]:
        if not any("{since}" in arg or "{since_unix}" in arg for arg in value):
            raise ValueError("must contain {since} or {since_unix}, or old lines would count as proof")
        return value


class KubernetesRuntimeSpec(_Strict):
    """Helm or milvus-operator own the config: the tool emits the change and its kubectl commands."""

    kind: Literal["kubernetes"]
    manager: Literal["helm", "operator"]
    namespace: str = "default"
    release: str  # the Helm release, or the Milvus CR's name for the operator
    chart: str = "milvus/milvus"
    kube_context: str | None = None
    # operator: the claim of the built-in MQ's volume (/var/lib/milvus), which the target MQ's
    # persistence reuses; default `<release>-data`, the name the operator gives the claim it makes.
    data_claim: str | None = None
    run_kubectl: bool = False  # apply runs the commands itself (kubectl/helm must be on PATH)

    def claim(self) -> str:
        return self.data_claim or f"{self.release}-data"


RuntimeSpec = Annotated[
    (ProcessRuntimeSpec | SystemdRuntimeSpec | ComposeRuntimeSpec | DockerRuntimeSpec | CommandRuntimeSpec
     | KubernetesRuntimeSpec),
    Field(discriminator="kind"),
]


class LogsSpec(_Strict):
    kind: Literal["file", "command", "runtime"] = "runtime"
    path: Path | None = None
    command: list[str] | None = None


class MigrationSpec(_Strict):
    state_dir: Path
    backup_dir: Path | None = None
    backup: bool = False
    cleanup: bool = False
    natsmq: dict[str, Any] = {}  # natsmq.server.* settings for the NATS target, e.g. {"port": 4222}
    # How clients are kept away while the MQ changes (decision 0022): `firewall` rejects them at once
    # with a rule in Milvus's network namespace (root, nft or iptables); `isolation` restarts Milvus
    # on a private client port; `auto` takes the firewall where this machine allows it.
    gate: Literal["auto", "firewall", "isolation"] = "auto"
    # The client port Milvus listens on while clients are isolated; default: a free one, chosen per run.
    isolation_port: int | None = Field(None, ge=1, le=65535)
    deadlines: Deadlines = Deadlines()
    # How long clients may stay cut off, from the first stop to a write acknowledged again; each
    # step after the first stop gets what is left of it. Default: from the plan's estimate for what
    # it found (migration/costs.py). The rollback's own bound, from its start (decision 0016).
    write_downtime_budget_s: float | None = Field(None, gt=0)
    rollback_budget_s: float | None = Field(None, gt=0)


class Playbook(_Strict):
    version: Literal[1]
    name: str
    milvus: MilvusSpec = MilvusSpec()
    config: ConfigSpec
    environment: dict[str, str] = {}
    env_files: list[Path] = []
    runtime: RuntimeSpec
    logs: LogsSpec = LogsSpec()
    path_map: dict[str, Path] = {}  # container path -> host path
    migration: MigrationSpec

    @field_validator("environment", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # YAML gives ints and bools; the process sees strings.
        if isinstance(value, dict):
            return {str(k): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in value.items()}
        return value

    def declared_environment(self) -> dict[str, str]:
        """The variables this playbook says the Milvus process sees: env files in order, then
        `environment` (it wins)."""
        from migrator.config.envrules import read_env_file

        declared: dict[str, str] = {}
        for env_file in self.env_files:
            declared.update(read_env_file(env_file))
        declared.update(self.environment)
        return declared

    def milvus_environment(self, runtime_environ: Mapping[str, str]) -> dict[str, str]:
        """What the Milvus process sees: the runtime's environment, then what the playbook declares."""
        return {**runtime_environ, **self.declared_environment()}

    def host_path(self, path: str | Path) -> Path:
        """A path as Milvus sees it, mapped to where this tool sees it (longest prefix wins)."""
        text = str(path)
        prefix = self._mapping(text)
        if prefix is not None:
            return self.path_map[prefix] / PurePosixPath(text).relative_to(prefix)
        return Path(text)

    def sees(self, path: str | Path) -> bool:
        """Whether this tool can see Milvus's `path` on its own host: Milvus runs on this host's
        file system (no container), or a path_map entry covers the path."""
        return self.runtime.kind not in ("docker", "compose", "kubernetes") or self._mapping(str(path)) is not None

    def _mapping(self, text: str) -> str | None:
        for prefix in sorted(self.path_map, key=len, reverse=True):
            if text == prefix or text.startswith(prefix.rstrip("/") + "/"):
                return prefix
        return None


class LoadedPlaybook(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    sha256: str
    spec: Playbook


def load_playbook(path: Path) -> LoadedPlaybook:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    raw = read_bounded(path, PLAYBOOK_LIMIT, what="playbook")
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(raw.decode("utf-8"))
    except (YAMLError, UnicodeDecodeError) as error:
        raise BadInput(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from error
    except RecursionError:
        raise BadInput(f"{path}: not valid YAML: nested deeper than it can be read") from None
    if not isinstance(document, dict):
        raise BadInput(f"{path}: the playbook must be a mapping")
    base = path.resolve().parent
    try:
        spec = Playbook.model_validate(_plain(document, path))
    except ValidationError as error:
        first = error.errors()[0]
        location, line = _locate(document, first["loc"])
        where = f"{path}:{line}" if line else str(path)
        raise BadInput(f"{where}: {location}: {first['msg']}") from error
    _remember_secrets(spec)
    return LoadedPlaybook(path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest(),
                          spec=_resolve_relative(spec, base))


def _remember_secrets(spec: Playbook) -> None:
    """The passwords of the URIs the playbook gives are redacted wherever they appear from now on."""
    from migrator.util.redact import remember_uri

    for uri in (spec.milvus.uri, spec.milvus.metrics_url, spec.config.etcd.endpoint if spec.config.etcd else None):
        remember_uri(uri)


def _plain(document: Any, path: Path) -> Any:
    """The document as plain dicts and lists, with keys as strings; BadInput when it expands to
    more than MAX_VALUES values or nests deeper than MAX_DEPTH (aliases are expanded here)."""
    budget = [MAX_VALUES]

    def plain(node: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise BadInput(f"{path}: the playbook expands to more than {MAX_VALUES} values (a YAML alias bomb?)")
        if depth > MAX_DEPTH:
            raise BadInput(f"{path}: the playbook nests more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            return {str(k): plain(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v, depth + 1) for v in node]
        return node

    return plain(document, 0)


def _locate(document: Any, loc: tuple) -> tuple[str, int | None]:
    """(dotted field, 1-based line) of a validation error. Parts of `loc` that are not keys in the
    document (pydantic's union tags, e.g. `process` in runtime.process.argv) are left out."""
    node, line, shown = document, None, []
    for index, part in enumerate(loc):
        lc = getattr(node, "lc", None)
        if isinstance(node, dict) and part in node:
            line = lc.key(part)[0] + 1 if lc is not None else line
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            line = lc.item(part)[0] + 1 if lc is not None else line
            node = node[part]
        elif index < len(loc) - 1:
            continue  # a union tag
        shown.append(str(part))
    return ".".join(shown), line


def _resolve_relative(spec: Playbook, base: Path) -> Playbook:
    """Relative paths in a playbook are relative to the playbook file."""

    def fix(path: Path | None) -> Path | None:
        return None if path is None or path.is_absolute() else base / path

    updates: dict[str, Any] = {}
    if (p := fix(spec.config.dir)) is not None:
        updates["config"] = spec.config.model_copy(update={"dir": p})
    migration: dict[str, Any] = {}
    if (p := fix(spec.migration.state_dir)) is not None:
        migration["state_dir"] = p
    if (p := fix(spec.migration.backup_dir)) is not None:
        migration["backup_dir"] = p
    if migration:
        updates["migration"] = spec.migration.model_copy(update=migration)
    if spec.env_files:
        updates["env_files"] = [fix(p) or p for p in spec.env_files]
    return spec.model_copy(update=updates) if updates else spec
