"""Remove rocksmq.path and its `_meta_kv` sibling once they are no longer needed (after a switch to NATS)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.errors import BadInput, Refused
from migrator.rocksmq.backup import verify_backup
from migrator.rocksmq.layout import directory_size, rocksmq_dirs
from migrator.rocksmq.safety import refuse_unsafe_target


@dataclass
class CleanReport:
    removed: list[str]
    bytes_freed: int
    backup_dir: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "bytes_freed": self.bytes_freed, "backup_dir": self.backup_dir}


def clean(
    path: Path | str,
    *,
    backup_dir: Path | str | None = None,
    force_without_backup: bool = False,
    config_dir: Path | str | None = None,
) -> CleanReport:
    """Delete rocksmq.path `path` and its `_meta_kv` sibling.

    Only after `backup_dir` verifies as a backup of this very path, or with `force_without_backup`.
    Refused for `/`, a home, the config dir (`config_dir`), a mount point, or a database a process
    holds open; BadInput when the paths are not RocksDB directories.
    """
    dirs = rocksmq_dirs(path)
    if backup_dir is None and not force_without_backup:
        raise BadInput(
            f"refusing to remove {dirs.data} without a backup",
            hint="pass a verified backup dir, or say --i-have-no-backup",
        )
    for directory in dirs.both():
        refuse_unsafe_target(directory, config_dir=Path(config_dir) if config_dir else None)
    if backup_dir is not None:
        manifest = verify_backup(backup_dir)
        if Path(manifest.source_data).resolve() != dirs.data.resolve():
            raise Refused(f"backup {backup_dir} is of {manifest.source_data}, not of {dirs.data}")
    freed = sum(directory_size(directory) for directory in dirs.both())
    for directory in dirs.both():
        shutil.rmtree(directory)
    return CleanReport(
        removed=[str(directory) for directory in dirs.both()],
        bytes_freed=freed,
        backup_dir=str(backup_dir) if backup_dir is not None else None,
    )
