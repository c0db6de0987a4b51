"""Guards before anything is deleted or overwritten: never `/`, a home, the config dir or a mount point."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from migrator.errors import Refused
from migrator.rocksmq.layout import is_locked


def _homes() -> set[Path]:
    homes = {Path.home().resolve()}
    for entry in pwd.getpwall():
        if entry.pw_dir and entry.pw_dir != "/":
            homes.add(Path(entry.pw_dir).resolve())
    return homes


def refuse_unsafe_target(path: Path, *, config_dir: Path | None = None, action: str = "remove") -> None:
    """Refused unless `path` is an ordinary directory that may be deleted wholesale."""
    resolved = path.resolve()
    if resolved == Path("/"):
        raise Refused(f"refusing to {action} {path}: it is /")
    if resolved in _homes():
        raise Refused(f"refusing to {action} {path}: it is a home directory")
    if config_dir is not None:
        config = Path(config_dir).resolve()
        if resolved == config or config.is_relative_to(resolved) or resolved.is_relative_to(config):
            raise Refused(f"refusing to {action} {path}: it is or overlaps the Milvus config dir {config_dir}")
    if os.path.ismount(resolved):
        raise Refused(
            f"refusing to {action} {path}: it is a mount point",
            hint="remove its contents by hand, or point rocksmq.path at a subdirectory",
        )
    if resolved.is_dir() and is_locked(resolved):
        raise Refused(f"refusing to {action} {path}: a running process holds its RocksDB LOCK (is Milvus using it?)")
