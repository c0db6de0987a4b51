"""The two ways users run Milvus in containers, laid out in a test directory, with a playbook each.

- `EmbedShape`: scripts/standalone_embed.sh's single container (embedded etcd, local storage,
  `user.yaml` and `embedEtcd.yaml` mounted, `/var/lib/milvus` from `<dir>/volumes/milvus`, 19530,
  9091 and 2379 published). Milvus 2.3 reads milvus.yaml only (tests/containers/README.md), so
  milvus.yaml is mounted as a single file too: the file the tool edits. With `netns_of`, the
  container joins another container's network namespace instead (ports published there), so a
  process of that holder keeps a port taken across Milvus's restarts.
- `ComposeShape`: deployments/docker/standalone/docker-compose.yml's services `etcd` and
  `standalone` (external etcd, its 2379 published for the tool; `milvus.yaml` mounted as a single
  file; `/var/lib/milvus` from `<dir>/volumes/milvus`), run with podman-compose.

Names are the test's own (several shapes may exist on one machine); ports are free host ports.
"""

from __future__ import annotations

import socket
import string
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.containers.engine import compose_argv, podman, podman_env
from tests.containers.images import (
    ImageTags,
    _set_scalar,
    find_wheel,
    image_milvus_yaml,
)

HERE = Path(__file__).resolve().parent

# standalone_embed.sh's embedEtcd.yaml, verbatim.
EMBED_ETCD_YAML = """\
listen-client-urls: http://0.0.0.0:2379
advertise-client-urls: http://0.0.0.0:2379
quota-backend-bytes: 4294967296
auto-compaction-mode: revision
auto-compaction-retention: '1000'
"""

# standalone_embed.sh's environment (it turns the image's external etcd / MinIO defaults into
# embedded etcd / local storage).
EMBED_ENV = {
    "ETCD_USE_EMBED": "true",
    "ETCD_DATA_DIR": "/var/lib/milvus/etcd",
    "ETCD_CONFIG_PATH": "/milvus/configs/embedEtcd.yaml",
    "COMMON_STORAGETYPE": "local",
}

USER_YAML = "# Extra config to override default milvus.yaml\n"

# The playbook of a test shape. NATS's own log goes to the mounted volume, so the tool can quote
# NATS's [FTL] reason when a start fails; the stop deadline is short: Milvus 2.3.5's graceful stop
# hangs with loaded collections on RocksMQ, and after FlushAll the SIGKILL loses nothing.
PLAYBOOK = """\
version: 1
name: {name}
milvus:
  uri: http://127.0.0.1:{proxy_port}
  metrics_url: http://127.0.0.1:{metrics_port}
config:
  dir: {config_dir}
  version: "2.3.5"
  etcd:
    endpoint: http://127.0.0.1:{etcd_port}
runtime:
{runtime}
path_map:
  /var/lib/milvus: {data_dir}
migration:
  state_dir: {state_dir}
  natsmq:
    monitor.logFile: /var/lib/milvus/logs/nats.log
  deadlines:
    stop_s: 4  # a graceful stop of 2.3.5 on RocksMQ with loaded collections hangs; the engine kills after it
    start_s: 180
    confirm_s: 120
    verify_s: 180
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def milvus_yaml(overrides: Mapping[str, str] | None = None) -> str:
    """The image's milvus.yaml with `overrides` (dotted key -> YAML scalar) set in place."""
    text = image_milvus_yaml(find_wheel())
    for dotted, value in (overrides or {}).items():
        text = _set_scalar(text, dotted, value)
    return text


@dataclass
class EmbedShape:
    dir: Path
    images: ImageTags
    name: str = field(default_factory=lambda: unique("mm-embed"))
    proxy_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    etcd_port: int = field(default_factory=free_port)
    env: Mapping[str, str] = field(default_factory=dict)  # extra -e (e.g. MQ_TYPE)
    restart: str | None = None  # e.g. "always"
    netns_of: str | None = None  # join this container's network namespace (it publishes the ports)

    @property
    def data_dir(self) -> Path:  # /var/lib/milvus
        return self.dir / "volumes" / "milvus"

    @property
    def milvus_yaml(self) -> Path:
        return self.dir / "milvus.yaml"

    @property
    def user_yaml(self) -> Path:
        return self.dir / "user.yaml"

    def write(self) -> EmbedShape:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.dir / "embedEtcd.yaml").write_text(EMBED_ETCD_YAML)
        self.user_yaml.write_text(USER_YAML)
        self.milvus_yaml.write_text(milvus_yaml())
        return self

    def publish(self) -> list[str]:
        return ["-p", f"{self.proxy_port}:19530", "-p", f"{self.metrics_port}:9091", "-p", f"{self.etcd_port}:2379"]

    def run_argv(self) -> list[str]:
        argv = ["podman", "run", "-d", "--name", self.name, "--security-opt", "seccomp=unconfined"]
        if self.restart:
            argv += [f"--restart={self.restart}"]
        for key, value in {**EMBED_ENV, **self.env}.items():
            argv += ["-e", f"{key}={value}"]
        argv += ["-v", f"{self.data_dir}:/var/lib/milvus",
                 "-v", f"{self.dir / 'embedEtcd.yaml'}:/milvus/configs/embedEtcd.yaml",
                 "-v", f"{self.user_yaml}:/milvus/configs/user.yaml",
                 "-v", f"{self.milvus_yaml}:/milvus/configs/milvus.yaml"]
        argv += ["--network", f"container:{self.netns_of}"] if self.netns_of else self.publish()
        return [*argv, self.images.milvus, "milvus", "run", "standalone"]

    def start(self) -> str:
        """`podman run -d ...`; returns the container id."""
        result = subprocess.run(self.run_argv(), env=podman_env(), capture_output=True, text=True, timeout=120,
                                check=False)
        if result.returncode != 0:
            raise RuntimeError(f"podman run failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def playbook(self, path: Path) -> Path:
        runtime = f"  kind: docker\n  engine: podman\n  container: {self.name}\n  command_timeout_s: 60"
        path.write_text(PLAYBOOK.format(name=self.name, proxy_port=self.proxy_port, metrics_port=self.metrics_port,
                                        etcd_port=self.etcd_port, config_dir=self.dir, runtime=runtime,
                                        data_dir=self.data_dir, state_dir=self.dir / "state"))
        return path

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)


@dataclass
class NetnsHolder:
    """A container that only holds a network namespace (and publishes the ports) for another to join."""

    images: ImageTags
    name: str = field(default_factory=lambda: unique("mm-netns"))

    def start(self, publish: list[str]) -> None:
        """`publish`: the joiner's `-p` flags (EmbedShape.publish())."""
        podman("run", "-d", "--name", self.name, *publish, self.images.milvus, "sleep", "1000000")

    def exec(self, *argv: str) -> None:
        podman("exec", "-d", self.name, *argv)

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)


@dataclass
class ComposeShape:
    dir: Path
    images: ImageTags
    milvus_container: str = field(default_factory=lambda: unique("mm-standalone"))
    etcd_container: str = field(default_factory=lambda: unique("mm-etcd"))
    network: str = field(default_factory=lambda: unique("mm-milvus"))
    proxy_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    etcd_port: int = field(default_factory=free_port)
    env: Mapping[str, str] = field(default_factory=dict)  # extra environment of `standalone`

    @property
    def compose_file(self) -> Path:
        return self.dir / "docker-compose.yml"

    @property
    def milvus_yaml(self) -> Path:
        return self.dir / "milvus.yaml"

    @property
    def data_dir(self) -> Path:
        return self.dir / "volumes" / "milvus"

    def compose_text(self, env: Mapping[str, str] | None = None) -> str:
        extra = "".join(f"      {key}: {value}\n" for key, value in {**self.env, **(env or {})}.items())
        template = string.Template((HERE / "docker-compose.yml.tmpl").read_text())
        return template.substitute(etcd_container=self.etcd_container, milvus_container=self.milvus_container,
                                   etcd_image=self.images.etcd, milvus_image=self.images.milvus,
                                   proxy_port=self.proxy_port, metrics_port=self.metrics_port,
                                   etcd_port=self.etcd_port, network=self.network, extra_environment=extra)

    def write(self, milvus_overrides: Mapping[str, str] | None = None) -> ComposeShape:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.dir / "volumes" / "etcd").mkdir(parents=True, exist_ok=True)
        self.compose_file.write_text(self.compose_text())
        self.milvus_yaml.write_text(milvus_yaml({"etcd.endpoints": "etcd:2379", "common.storageType": "local",
                                                 **(milvus_overrides or {})}))
        return self

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*compose_argv(), "-f", str(self.compose_file), *args], env=podman_env(),
                                capture_output=True, text=True, timeout=timeout, cwd=self.dir, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"podman-compose {' '.join(args)} failed ({result.returncode}): "
                               f"{result.stderr.strip()[-2000:]}")
        return result

    def playbook(self, path: Path) -> Path:
        runtime = (f"  kind: compose\n  engine: podman-compose\n  file: {self.compose_file}\n  service: standalone\n"
                   "  command_timeout_s: 120")
        path.write_text(PLAYBOOK.format(name=self.milvus_container, proxy_port=self.proxy_port,
                                        metrics_port=self.metrics_port, etcd_port=self.etcd_port,
                                        config_dir=self.dir, runtime=runtime, data_dir=self.data_dir,
                                        state_dir=self.dir / "state"))
        return path

    def down(self) -> None:
        self.compose("down", "-t", "0", check=False)
        podman("rm", "-f", "-t", "0", self.milvus_container, self.etcd_container, check=False)
        podman("network", "rm", "-f", self.network, check=False)
