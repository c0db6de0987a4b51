"""Backup of both RocksMQ databases with a manifest; verify; restore.

Layout of a backup dir: `data/` (rocksmq.path), `meta_kv/` (its `_meta_kv` sibling) and
`manifest.json` (relative path, size, sha256 of every file), written LAST and atomically: a
backup without a manifest is incomplete by definition.

With Milvus stopped and the backup on the same filesystem, *.sst files are hard-linked (RocksDB
never modifies an SST after writing it) and the mutable files (CURRENT, MANIFEST-*, OPTIONS-*,
the WAL *.log, ...) are copied. Otherwise every file is copied; a running Milvus may change files
while they are copied, so the copy is accepted only if no source file changed meanwhile.

A copy reads each file once, hashing and writing the same chunks; the copies are fsynced in one
pass after the last one (their disk writes were started during the copy), then the directories,
and only then is the manifest written: an interrupted backup has no manifest, and a backup with
one is on disk.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from migrator.errors import BadInput, Refused
from migrator.rocksmq.files import (
    copy_and_hash,
    existing_ancestor,
    free_bytes,
    fsync_files,
    hash_file,
    regular_files,
)
from migrator.rocksmq.layout import (
    RocksmqDirs,
    is_locked,
    is_rocksdb_dir,
    meta_kv_path,
    rocksmq_dirs,
)
from migrator.rocksmq.safety import refuse_unsafe_target
from migrator.util.files import fsync_path, write_bytes_atomic

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
PARTS = ("data", "meta_kv")  # backup subdirectories for rocksmq.path and its _meta_kv sibling
NOT_BACKED_UP = {"LOCK"}  # RocksDB re-creates it; it holds no data
ROOM_MARGIN = 64 * 1024 * 1024
COPY_THREADS = max(2, min(4, os.cpu_count() or 2))
LIVE_COPY_ATTEMPTS = 3


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative to the backup dir, e.g. "data/000009.sst"
    size: int
    sha256: str


@dataclass
class Manifest:
    source_data: str
    source_meta_kv: str
    mode: str  # "hardlink" (SSTs linked, the rest copied) or "copy"
    milvus_running: bool
    created_at: str
    files: list[ManifestEntry] = field(default_factory=list)
    format: int = MANIFEST_FORMAT

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_bytes": self.total_bytes, "file_count": len(self.files)}

    @classmethod
    def load(cls, backup_dir: Path) -> Manifest:
        path = backup_dir / MANIFEST_NAME
        if not backup_dir.is_dir():
            raise BadInput(f"{backup_dir} is not a directory")
        if not path.is_file():
            raise BadInput(f"{backup_dir} has no {MANIFEST_NAME}: not a backup, or an interrupted one")
        try:
            raw = json.loads(path.read_text())
            if raw.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"unknown format {raw.get('format')!r}")
            return cls(
                source_data=raw["source_data"],
                source_meta_kv=raw["source_meta_kv"],
                mode=raw["mode"],
                milvus_running=raw["milvus_running"],
                created_at=raw["created_at"],
                files=[ManifestEntry(e["path"], int(e["size"]), e["sha256"]) for e in raw["files"]],
            )
        except (ValueError, KeyError, TypeError) as error:
            raise BadInput(f"{path} is not a valid backup manifest: {error}") from error


@dataclass(frozen=True)
class _SourceFile:
    part: str
    source: Path
    relative: str  # inside the backup dir

    @property
    def immutable(self) -> bool:
        return self.source.suffix == ".sst"


def _source_files(dirs: RocksmqDirs) -> list[_SourceFile]:
    files = []
    for part, directory in zip(PARTS, dirs.both()):
        for relative in regular_files(directory):
            if relative.name not in NOT_BACKED_UP:
                files.append(_SourceFile(part, directory / relative, f"{part}/{relative.as_posix()}"))
    return files


def _fingerprint(files: list[_SourceFile]) -> dict[Path, tuple[int, int, int]]:
    """What a writer changes: inode, size, mtime. Missing files are simply absent."""
    prints = {}
    for item in files:
        try:
            status = os.stat(item.source)
        except FileNotFoundError:
            continue
        prints[item.source] = (status.st_ino, status.st_size, status.st_mtime_ns)
    return prints


def _same_filesystem(source: Path, dest: Path) -> bool:
    return os.stat(source).st_dev == os.stat(existing_ancestor(dest)).st_dev


def _check_dest(dest: Path, dirs: RocksmqDirs) -> None:
    for directory in dirs.both():
        if dest.resolve().is_relative_to(directory.resolve()):
            raise BadInput(f"backup dir {dest} is inside {directory}: put it elsewhere")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"backup dir {dest} exists and is not empty", hint="choose a new directory")


def _store(item: _SourceFile, dest: Path, link: bool) -> tuple[ManifestEntry, bool]:
    """Link or copy one file; (its manifest entry, whether it was copied and so needs an fsync)."""
    target = dest / item.relative
    if link and item.immutable:
        try:
            os.link(item.source, target)
        except OSError:  # e.g. a filesystem without hard links: copy instead
            pass
        else:
            return ManifestEntry(item.relative, *hash_file(target)), False
    return ManifestEntry(item.relative, *copy_and_hash(item.source, target)), True


def _store_all(files: list[_SourceFile], dest: Path, link: bool) -> tuple[list[ManifestEntry], list[Path]]:
    """Link or copy every file; (manifest entries, the copies still to be made durable)."""
    for directory in {(dest / item.relative).parent for item in files} | {dest / part for part in PARTS}:
        directory.mkdir(parents=True, exist_ok=True)
    # Largest first, so the threads finish together.
    ordered = sorted(files, key=lambda item: item.source.stat().st_size, reverse=True)
    with ThreadPoolExecutor(COPY_THREADS) as pool:
        stored = list(pool.map(lambda item: _store(item, dest, link), ordered))
    copies = [dest / entry.path for entry, copied in stored if copied]
    return sorted((entry for entry, _ in stored), key=lambda entry: entry.path), copies


def _make_durable(dest: Path, copies: list[Path], entries: list[ManifestEntry]) -> None:
    """fsync the copied files, then every directory holding an entry: what the manifest will list
    is on disk before the manifest is written."""
    fsync_files(copies, COPY_THREADS)
    for directory in sorted({(dest / entry.path).parent for entry in entries} | {dest / part for part in PARTS}):
        fsync_path(directory)


def _clear(dest: Path) -> None:
    for child in dest.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def create_backup(path: Path | str, dest: Path | str, *, milvus_running: bool) -> Manifest:
    """Back up rocksmq.path `path` and its `_meta_kv` sibling into the new or empty directory `dest`.

    `milvus_running=False` promises the databases are closed (checked through RocksDB's LOCK) and
    allows the hard-link snapshot; `True` copies everything and retries while files change.
    Refused when there is not enough room or Milvus holds the databases; BadInput for bad paths.
    """
    dirs = rocksmq_dirs(path)
    dest = Path(dest).expanduser().absolute()
    _check_dest(dest, dirs)
    if not milvus_running:
        for directory in dirs.both():
            if is_locked(directory):
                raise Refused(
                    f"{directory} is open in a running process (its RocksDB LOCK is held)",
                    hint="stop Milvus first, or back up a running Milvus with --live (a copy, no hard links)",
                )
    files = _source_files(dirs)
    link = not milvus_running and _same_filesystem(dirs.data, dest)
    needed = sum(item.source.stat().st_size for item in files if not (link and item.immutable)) + ROOM_MARGIN
    available = free_bytes(dest)
    if available < needed:
        raise Refused(f"not enough room for the backup in {dest}: {needed} bytes needed, {available} free")

    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        entries, copies = _copy_consistently(files, dest, link, dirs) if milvus_running else _store_all(files, dest, link)
        _make_durable(dest, copies, entries)
        manifest = Manifest(
            source_data=str(dirs.data),
            source_meta_kv=str(dirs.meta_kv),
            mode="hardlink" if link else "copy",
            milvus_running=milvus_running,
            created_at=datetime.now(timezone.utc).isoformat(),
            files=entries,
        )
        write_bytes_atomic(dest / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=1).encode())
    except BaseException:
        # Interrupted or failed: leave nothing that could pass for a backup.
        shutil.rmtree(dest) if created else _clear(dest)
        raise
    return manifest


def _copy_consistently(
    files: list[_SourceFile], dest: Path, link: bool, dirs: RocksmqDirs
) -> tuple[list[ManifestEntry], list[Path]]:
    """Copy while a writer may be active; accept the copy only if no source file changed during it."""
    for _attempt in range(LIVE_COPY_ATTEMPTS):
        before = _fingerprint(files)
        try:
            stored = _store_all(files, dest, link)
        except FileNotFoundError:  # compaction deleted a file mid-copy
            stored = None
        if stored is not None and _fingerprint(_source_files(dirs)) == before:
            return stored
        _clear(dest)
        files = _source_files(dirs)
    raise Refused(
        f"{dirs.data} kept changing during {LIVE_COPY_ATTEMPTS} copies: no consistent backup possible while it is written",
        hint="stop Milvus (or switch it off RocksMQ) and back up again",
    )


def _check_entries(backup_dir: Path, manifest: Manifest, hasher: Callable[[Path], tuple[int, str]]) -> None:
    listed = {entry.path for entry in manifest.files}
    present = {p.as_posix() for p in regular_files(backup_dir)} - {MANIFEST_NAME}
    problems = [f"missing {name}" for name in sorted(listed - present)]
    problems += [f"unexpected {name}" for name in sorted(present - listed)]

    def check(entry: ManifestEntry) -> str | None:
        size, digest = hasher(backup_dir / entry.path)
        if size != entry.size:
            return f"{entry.path}: {size} bytes, manifest says {entry.size}"
        if digest != entry.sha256:
            return f"{entry.path}: sha256 differs from the manifest"
        return None

    with ThreadPoolExecutor(COPY_THREADS) as pool:
        problems += [p for p in pool.map(check, [e for e in manifest.files if e.path in present]) if p]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise BadInput(f"backup {backup_dir} is damaged: {shown}")


def verify_backup(dest: Path | str) -> Manifest:
    """Re-hash every file of the backup against its manifest; BadInput naming what differs."""
    backup_dir = Path(dest).expanduser().absolute()
    manifest = Manifest.load(backup_dir)
    _check_entries(backup_dir, manifest, hash_file)
    return manifest


def _is_empty(directory: Path) -> bool:
    return not directory.exists() or (directory.is_dir() and not any(directory.iterdir()))


def restore_backup(dest: Path | str, path: Path | str, force: bool = False) -> Manifest:
    """Put a verified backup back at rocksmq.path `path` and its `_meta_kv` sibling.

    Refused when a target is not empty, unless `force` (then it must be a RocksDB directory that no
    process holds and that passes the deletion guards). Files are copied to `<target>.restoring`,
    checked against the manifest while copying, fsynced, and only then swapped in.
    """
    backup_dir = Path(dest).expanduser().absolute()
    manifest = verify_backup(backup_dir)
    data = Path(path).expanduser().absolute()
    targets = dict(zip(PARTS, (data, meta_kv_path(data))))
    for target in targets.values():
        if _is_empty(target):
            continue
        if not force:
            raise Refused(f"{target} is not empty", hint="pass --force to replace it with the backup")
        refuse_unsafe_target(target, action="replace")
        if not is_rocksdb_dir(target):
            raise Refused(f"refusing to replace {target}: it is not a RocksDB directory")
    staging = {part: target.with_name(target.name + ".restoring") for part, target in targets.items()}
    for directory in staging.values():
        if directory.exists():
            shutil.rmtree(directory)  # our own leftover from an interrupted restore
    try:
        copies = []
        for entry in manifest.files:
            part, _, relative = entry.path.partition("/")
            target = staging[part] / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            size, digest = copy_and_hash(backup_dir / entry.path, target)
            if (size, digest) != (entry.size, entry.sha256):
                raise BadInput(f"backup file {entry.path} changed while restoring it")
            copies.append(target)
        fsync_files(copies, COPY_THREADS)
        for part, target in targets.items():
            staging[part].mkdir(exist_ok=True)
            for directory in sorted({c.parent for c in copies if c.is_relative_to(staging[part])} | {staging[part]}):
                fsync_path(directory)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging[part], target)
            fsync_path(target.parent)
    except BaseException:
        for directory in staging.values():
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return manifest
