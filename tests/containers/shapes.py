"""The two container deployments of Milvus standalone, laid out in a directory for a test.

- `EmbedShape`: scripts/standalone_embed.sh's one container `milvus-standalone` (embedded etcd,
  local storage, `user.yaml` and `embedEtcd.yaml` bind-mounted, `/var/lib/milvus` from
  `<dir>/volumes/milvus`). Started with `podman run` (argv from `run_argv()`).
- `ComposeShape`: deployments/docker/standalone/docker-compose.yml's services `etcd` and
  `standalone` (external etcd; `milvus.yaml` bind-mounted as a single file; `/var/lib/milvus` from
  `<dir>/volumes/milvus`), run with podman-compose.

Both use the real container names by default (`milvus-standalone`, `milvus-etcd`): only one of
each can exist on a machine at a time. Pass other names to run side by side.
"""

from __future__ import annotations

import os
import socket
import string
import subprocess
from collections.abc import Mapping, Sequence
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class EmbedShape:
    dir: Path
    images: ImageTags
    name: str = "milvus-standalone"
    proxy_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    env: Mapping[str, str] = field(default_factory=dict)  # extra -e (e.g. MQ_TYPE)
    restart: str | None = None  # e.g. "always"

    @property
    def data_dir(self) -> Path:  # /var/lib/milvus
        return self.dir / "volumes" / "milvus"

    @property
    def user_yaml(self) -> Path:
        return self.dir / "user.yaml"

    def write(self, user_yaml: str = USER_YAML) -> EmbedShape:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "embedEtcd.yaml").write_text(EMBED_ETCD_YAML)
        self.user_yaml.write_text(user_yaml)
        return self

    def run_argv(self) -> list[str]:
        argv = [
            "podman",
            "run",
            "-d",
            "--name",
            self.name,
            "--security-opt",
            "seccomp=unconfined",
        ]
        if self.restart:
            argv += [f"--restart={self.restart}"]
        for key, value in {**EMBED_ENV, **self.env}.items():
            argv += ["-e", f"{key}={value}"]
        argv += [
            "-v",
            f"{self.data_dir}:/var/lib/milvus",
            "-v",
            f"{self.dir / 'embedEtcd.yaml'}:/milvus/configs/embedEtcd.yaml",
            "-v",
            f"{self.user_yaml}:/milvus/configs/user.yaml",
            "-p",
            f"{self.proxy_port}:19530",
            "-p",
            f"{self.metrics_port}:9091",
            self.images.milvus,
            "milvus",
            "run",
            "standalone",
        ]
        return argv

    def start(self) -> str:
        """`podman run -d ...`; returns the container id."""
        result = subprocess.run(
            self.run_argv(),
            env=podman_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"podman run failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)


def compose_milvus_yaml(overrides: Mapping[str, str] | None = None) -> str:
    """The image's milvus.yaml for the compose shape: etcd at etcd:2379, local storage (no MinIO)."""
    text = image_milvus_yaml(find_wheel())
    text = _set_scalar(text, "etcd.endpoints", "etcd:2379")
    text = _set_scalar(text, "common.storageType", "local")
    for dotted, value in (overrides or {}).items():
        text = _set_scalar(text, dotted, value)
    return text


@dataclass
class ComposeShape:
    dir: Path
    images: ImageTags
    milvus_container: str = "milvus-standalone"
    etcd_container: str = "milvus-etcd"
    network: str = "milvus"
    proxy_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    env: Mapping[str, str] = field(
        default_factory=dict
    )  # extra environment of `standalone`

    @property
    def compose_file(self) -> Path:
        return self.dir / "docker-compose.yml"

    @property
    def milvus_yaml(self) -> Path:
        return self.dir / "milvus.yaml"

    @property
    def data_dir(self) -> Path:
        return self.dir / "volumes" / "milvus"

    @property
    def project(self) -> str:
        # podman-compose's default project name: the compose file's directory name.
        return self.dir.name

    def write(self, milvus_overrides: Mapping[str, str] | None = None) -> ComposeShape:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "volumes" / "etcd").mkdir(parents=True, exist_ok=True)
        extra = "".join(f"      {key}: {value}\n" for key, value in self.env.items())
        template = string.Template((HERE / "docker-compose.yml.tmpl").read_text())
        self.compose_file.write_text(
            template.substitute(
                etcd_container=self.etcd_container,
                milvus_container=self.milvus_container,
                etcd_image=self.images.etcd,
                milvus_image=self.images.milvus,
                proxy_port=self.proxy_port,
                metrics_port=self.metrics_port,
                network=self.network,
                extra_environment=extra,
            )
        )
        self.milvus_yaml.write_text(compose_milvus_yaml(milvus_overrides))
        return self

    def compose(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*compose_argv(), "-f", str(self.compose_file), *args],
            env=podman_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"podman-compose {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )
        return result

    def container_id(self, service: str = "standalone") -> str:
        """What `docker compose ps -a -q SERVICE` prints (podman-compose's `ps` takes no service)."""
        return podman(
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ).stdout.strip()

    def down(self) -> None:
        self.compose("down", "-t", "0", check=False)
        podman("network", "rm", "-f", self.network, check=False)


def remove_everything(
    names: Sequence[str] = ("milvus-standalone", "milvus-etcd"),
    networks: Sequence[str] = ("milvus",),
) -> None:
    """Best-effort cleanup after a test: containers by name, then compose networks."""
    for name in names:
        podman("rm", "-f", "-t", "0", name, check=False)
    for network in networks:
        podman("network", "rm", "-f", network, check=False)


def environ_for_tool(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for running the tool under test: plain `podman`/`podman-compose` must work."""
    return podman_env(dict(os.environ) if base is None else base)
