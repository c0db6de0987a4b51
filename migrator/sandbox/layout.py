"""Where a sandbox keeps everything, and the ports it was given (DIR/sandbox.json)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from migrator.errors import BadInput

PORT_NAMES = (
    "proxy",
    "proxy_internal",
    "metrics",
    "nats",
    "etcd_client",
    "etcd_peer",
    "root_coord",
    "query_coord",
    "query_node",
    "index_coord",
    "index_node",
    "data_coord",
    "data_node",
)


@dataclass(frozen=True)
class SandboxLayout:
    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "configs"

    @property
    def milvus_yaml(self) -> Path:
        return self.config_dir / "milvus.yaml"

    @property
    def etcd_yaml(self) -> Path:
        return self.config_dir / "etcd.yaml"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def stdout_log(self) -> Path:
        return self.log_dir / "stdout.log"

    @property
    def nats_log(self) -> Path:
        return self.log_dir / "nats.log"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def rocksmq_path(self) -> Path:
        return self.data_dir / "rdb_data"

    @property
    def nats_store(self) -> Path:
        return self.data_dir / "nats"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "sandbox.pid"

    @property
    def state_file(self) -> Path:
        return self.root / "sandbox.json"

    @property
    def playbook(self) -> Path:
        return self.root / "playbook.yaml"

    @property
    def lock_file(self) -> Path:
        return self.root / ".sandbox.lock"


@dataclass
class SandboxState:
    """What `up` decided once and every later command reuses."""

    bin_dir: str
    ports: dict[str, int]
    mq: str
    version: str = "2.3.5"  # the Milvus release it runs (sandbox up --version)

    def save(self, layout: SandboxLayout) -> None:
        tmp = layout.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, layout.state_file)

    @classmethod
    def load(cls, layout: SandboxLayout) -> SandboxState | None:
        if not layout.state_file.exists():
            return None
        try:
            raw = json.loads(layout.state_file.read_text())
            return cls(bin_dir=raw["bin_dir"], ports={k: int(v) for k, v in raw["ports"].items()}, mq=raw["mq"],
                       version=str(raw.get("version", "2.3.5")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BadInput(f"{layout.state_file}: not a sandbox state file ({error})") from error


def check_sandbox_dir(root: Path, *, create: bool) -> SandboxLayout:
    """Refuse a DIR that is a file or not writable; create it when asked."""
    if root.exists() and not root.is_dir():
        raise BadInput(f"--dir {root}: exists and is not a directory")
    if not root.exists():
        if not create:
            raise BadInput(f"--dir {root}: no sandbox there (run `milvus-migrate sandbox up --dir {root}`)")
        try:
            root.mkdir(parents=True)
        except OSError as error:
            raise BadInput(f"--dir {root}: cannot create it ({error.strerror})") from error
    if not os.access(root, os.W_OK | os.X_OK):
        raise BadInput(f"--dir {root}: not writable")
    return SandboxLayout(root.resolve())
