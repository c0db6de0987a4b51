"""Remove rocksmq.path and its `_meta_kv` sibling once they are no longer needed (after a switch to NATS).

Only what a verified, complete and current backup covers is deleted: the manifest must list both
databases (CURRENT and a MANIFEST-* each), every file of the live data with its size (and, for
the small mutable files, its content), the same newest message id per topic, and (in apply) have
been started after writes were denied. Both directories must hold nothing but RocksDB's own files
and no mount point anywhere below them. They are first renamed into one `.<name>.removing-<id>`
directory beside them (one step, same filesystem), then deleted: a failure half-way leaves that
clearly named directory, never a half-deleted database at rocksmq.path.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.errors import BadInput, Refused
from migrator.rocksmq.backup import NOT_BACKED_UP, PARTS, Manifest, verify_backup
from migrator.rocksmq.files import hash_file, regular_files
from migrator.rocksmq.layout import (
    RocksmqDirs,
    foreign_entries,
    rocksmq_dirs,
)
from migrator.rocksmq.safety import refuse_unsafe_target
from migrator.util.files import fsync_path


@dataclass
class CleanReport:
    removed: list[str]
    bytes_freed: int  # what the disk got back: files whose last link went
    backup_dir: str | None
    bytes_still_held: int = 0  # removed here, but a hard-linked backup still holds them

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "bytes_freed": self.bytes_freed, "bytes_still_held": self.bytes_still_held,
                "backup_dir": self.backup_dir}


def clean(
    path: Path | str,
    *,
    backup_dir: Path | str | None = None,
    force_without_backup: bool = False,
    config_dir: Path | str | None = None,
    not_before: float | None = None,
) -> CleanReport:
    """Delete rocksmq.path `path` and its `_meta_kv` sibling.

    Only after `backup_dir` verifies as a complete backup of this very data as it is now (and, with
    `not_before` (unix s), one started at or after it), or with `force_without_backup`. Refused
    for `/`, a home, the config dir, a symlink, a mount point or a tree with one below it, a
    directory holding anything but RocksDB's files, or a database a process holds open; BadInput
    when the paths are not RocksDB directories or the backup is damaged.
    """
    _refuse_after_an_interrupted_clean(Path(path).expanduser().absolute())
    dirs = rocksmq_dirs(path, no_links=True)
    if backup_dir is None and not force_without_backup:
        raise BadInput(
            f"refusing to remove {dirs.data} without a backup",
            hint="pass a verified backup dir, or say --i-have-no-backup",
        )
    for directory in dirs.both():
        refuse_unsafe_target(directory, config_dir=Path(config_dir) if config_dir else None)
        foreign = foreign_entries(directory)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise Refused(f"refusing to remove {directory}: it holds what is not RocksDB's: {shown}",
                          hint="move those out first; the tool removes only RocksMQ's own files")
    if backup_dir is not None:
        manifest = verify_backup(backup_dir)
        if Path(manifest.source_data).resolve() != dirs.data.resolve():
            raise Refused(f"backup {backup_dir} is of {manifest.source_data}, not of {dirs.data}")
        refuse_unless_covered(manifest, dirs, Path(backup_dir), not_before)
    freed, held = _bytes_freed_and_held(dirs)
    _remove_both(dirs)
    return CleanReport(
        removed=[str(directory) for directory in dirs.both()],
        bytes_freed=freed,
        bytes_still_held=held,
        backup_dir=str(backup_dir) if backup_dir is not None else None,
    )


def _bytes_freed_and_held(dirs: RocksmqDirs) -> tuple[int, int]:
    """(bytes of the files whose only link is here, bytes of those another link still holds)."""
    freed = held = 0
    for directory in dirs.both():
        for entry in os.scandir(directory):
            status = entry.stat(follow_symlinks=False)
            if status.st_nlink > 1:
                held += status.st_size
            else:
                freed += status.st_size
    return freed, held


def refuse_unless_covered(manifest: Manifest, dirs: RocksmqDirs, backup_dir: Path, not_before: float | None) -> None:
    """Refused unless the (verified) backup holds exactly what the live directories hold now."""
    from migrator.rocksmq.inspect import newest_msg_ids

    where = f"backup {backup_dir}"
    listed = {entry.path: entry for entry in manifest.files}
    for part in PARTS:
        names = {name.split("/", 1)[1] for name in listed if name.startswith(f"{part}/")}
        if "CURRENT" not in names or not any(name.startswith("MANIFEST-") for name in names):
            raise Refused(f"{where} is incomplete: it lists no RocksDB database in {part}/ (no CURRENT or MANIFEST-*)")
    if manifest.newest_msg_ids is None or manifest.started_unix is None:
        raise Refused(f"{where} records no message ids (made by an older version): it cannot be checked against "
                      "the live data", hint="take a new backup")
    if not_before is not None and manifest.started_unix < not_before:
        raise Refused(f"{where} was started before writes were denied: messages may have arrived after it")
    problems = []
    for part, directory in zip(PARTS, dirs.both(), strict=True):
        live = {f"{part}/{relative.as_posix()}" for relative in regular_files(directory)
                if relative.name not in NOT_BACKED_UP}
        backed = {name for name in listed if name.startswith(f"{part}/")}
        problems += [f"{name} is not in the backup" for name in sorted(live - backed)]
        problems += [f"{name} is in the backup, no longer live" for name in sorted(backed - live)]
        for name in sorted(live & backed):
            entry, file = listed[name], directory / name.split("/", 1)[1]
            size = file.stat().st_size
            if size != entry.size:
                problems.append(f"{name} is {size} bytes, {entry.size} in the backup")
            elif not file.name.endswith(".sst") and hash_file(file)[1] != entry.sha256:
                problems.append(f"{name} changed since the backup")  # SSTs never change; the rest is small
    if not problems:
        live_ids = newest_msg_ids(dirs.data, dirs.meta_kv)
        if live_ids != manifest.newest_msg_ids:
            changed = sorted(set(live_ids) ^ set(manifest.newest_msg_ids)) or sorted(
                name for name in live_ids if live_ids[name] != manifest.newest_msg_ids.get(name))
            problems.append(f"the newest message differs from the backup's in {', '.join(changed[:3])}")
    if problems:
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise Refused(f"{where} does not cover {dirs.data} as it is now: {shown}",
                      hint="take a new backup (with Milvus stopped or off RocksMQ), then clean up")


def _refuse_after_an_interrupted_clean(data: Path) -> None:
    """A clean-up killed while deleting leaves its `.<name>.removing-<id>` dir and no rocksmq.path."""
    if data.exists() or not data.parent.is_dir():
        return
    leftovers = sorted(data.parent.glob(f".{data.name}.removing-*"))
    if leftovers:
        raise BadInput(f"{data} is already removed: an interrupted clean-up left {leftovers[0]}",
                       hint=f"delete {leftovers[0]} by hand once you have checked it")


def _remove_both(dirs: RocksmqDirs) -> None:
    """Rename both into one new directory beside them, then delete that."""
    trash = dirs.data.with_name(f".{dirs.data.name}.removing-{secrets.token_hex(4)}")
    try:
        trash.mkdir()
        for directory in dirs.both():
            os.rename(directory, trash / directory.name)
        fsync_path(trash.parent)
    except OSError as error:
        # Put back what moved: nothing is deleted unless both moved.
        for directory in dirs.both():
            if (trash / directory.name).exists() and not directory.exists():
                os.rename(trash / directory.name, directory)
        if trash.exists() and not any(trash.iterdir()):
            trash.rmdir()
        raise Refused(f"cannot move {dirs.data} aside to remove it: {error.strerror or error}; "
                      "nothing was removed") from None
    try:
        shutil.rmtree(trash)
    except OSError as error:
        raise Refused(f"removed {dirs.data} and its _meta_kv from rocksmq.path, but deleting {trash} failed: "
                      f"{error.strerror or error}", hint=f"delete {trash} by hand") from None
