"""Where a rehearsal's copy lives, the marker that says it is one, and the clean-up of one left behind.

The copy's directory holds a marker (REHEARSAL.json) written before anything else goes in: a
directory without it is never deleted. One rehearsal at a time per deployment: a lock beside the
copy (flock, released by the kernel when the process dies), so the next run finds a copy whose
rehearsal died, stops the processes its pid files name (each checked by its start time, a reused
pid is never signalled) and deletes it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from migrator.errors import BadInput, Refused
from migrator.runtime.process import ProcessRuntime
from migrator.util.files import write_bytes_atomic

MARKER = "REHEARSAL.json"


@dataclass(frozen=True)
class CopyLayout:
    root: Path

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @property
    def lock_file(self) -> Path:
        return self.root.parent / f".{self.root.name}.lock"

    @property
    def config_dir(self) -> Path:
        return self.root / "configs"

    @property
    def etcd_embed_config(self) -> Path:
        return self.config_dir / "etcd.yaml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def etcd_data(self) -> Path:
        return self.data_dir / "etcd"

    @property
    def rocksmq_path(self) -> Path:
        return self.data_dir / "rdb_data"

    @property
    def meta_kv_path(self) -> Path:
        return self.data_dir / "rdb_data_meta_kv"

    @property
    def storage(self) -> Path:
        return self.data_dir / "storage"

    @property
    def nats_store(self) -> Path:
        return self.data_dir / "nats"

    @property
    def mmap_dir(self) -> Path:
        return self.data_dir / "mmap"

    @property
    def backup_dir(self) -> Path:
        return self.data_dir / "backups"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def stdout_log(self) -> Path:
        return self.log_dir / "stdout.log"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def milvus_pid(self) -> Path:
        return self.run_dir / "milvus.pid"

    @property
    def etcd_pid(self) -> Path:
        return self.run_dir / "etcd.pid"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def playbook(self) -> Path:
        return self.root / "playbook.yaml"

    def created_dirs(self) -> tuple[Path, ...]:
        return (self.config_dir, self.data_dir, self.log_dir, self.run_dir, self.state_dir)


def _stop_by_pid_file(pid_file: Path) -> int | None:
    """Stop whatever process the pid file records (start time checked); its pid, or None."""
    runtime = ProcessRuntime(argv=["-"], cwd=pid_file.parent, pid_file=pid_file, stdout_log=Path(os.devnull),
                             metrics_url="http://127.0.0.1:1")
    pid = runtime.running_pid()
    if pid is not None:
        runtime.stop(5.0)  # a throwaway copy: no graceful wait
    return pid


def _kill_working_in(root: Path) -> list[int]:
    """A process whose working directory is inside the copy: one the dead rehearsal started before
    it could record its pid (the copy's Milvus and etcd run there). SIGKILLed, by its pid."""
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        cwd = cwd.removesuffix(" (deleted)")  # the copy may already be half removed
        if cwd == str(root) or cwd.startswith(f"{root}/"):
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
            except ProcessLookupError:
                continue
    deadline = time.monotonic() + 10.0
    while killed and time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in killed):
        time.sleep(0.1)
    return killed


def remove_copy(layout: CopyLayout) -> list[int]:
    """Stop the copy's processes and delete its directory; the pids stopped. A directory without
    the marker is refused, never deleted."""
    if not layout.root.exists():
        return []
    if layout.root.is_symlink() or not layout.root.is_dir() or not layout.marker.is_file():
        raise Refused(f"{layout.root} exists and is not a rehearsal copy (no {MARKER}): not touching it",
                      hint="move it away, or give the rehearsal another --dir")
    stopped = [pid for pid_file in (layout.milvus_pid, layout.etcd_pid) if (pid := _stop_by_pid_file(pid_file))]
    stopped += _kill_working_in(layout.root)
    # rmtree unlinks symlinks and hard links without following them: the source files stay.
    shutil.rmtree(layout.root)
    return stopped


@contextmanager
def rehearsal_lock(layout: CopyLayout) -> Iterator[None]:
    """One rehearsal per copy directory; held for the whole run."""
    layout.root.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(layout.lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Refused(f"another rehearsal holds {layout.lock_file}") from None
        yield
    finally:
        os.close(descriptor)


def create_copy_dir(layout: CopyLayout, production: str) -> None:
    """The copy's directory with its marker first, then its subdirectories."""
    try:
        layout.root.mkdir(parents=True)
    except FileExistsError:
        raise BadInput(f"{layout.root}: already exists") from None
    write_bytes_atomic(layout.marker, json.dumps({"production": production, "pid": os.getpid(),
                                                  "created_unix": time.time()}).encode())
    for directory in layout.created_dirs():
        directory.mkdir()
