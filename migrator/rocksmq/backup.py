"""Backup of both RocksMQ databases with a manifest; verify; restore.

Layout of a backup dir: `data/` (rocksmq.path), `meta_kv/` (its `_meta_kv` sibling) and
`manifest.json` (relative path, size, sha256 of every file), written LAST and atomically: a
backup without a manifest is incomplete by definition.

Every file is copied: reflinked where the file system shares blocks copy-on-write, else copied
with its holes kept, so a backup never takes more room than its source and nothing done to it
reaches the live store. Hard links for the *.sst files (RocksDB never modifies an SST after
writing it) only when asked (`hard_links`), with Milvus stopped and the backup on the same file
system: one file in two directories, so an append to the backup's copy corrupts the live store.
A running Milvus may change files while they are copied, so a live copy is accepted only if no
source file changed meanwhile.

A copy reads each file once, hashing and writing the same chunks; the copies are fsynced in one
pass after the last one (their disk writes were started during the copy), then the directories,
and only then is the manifest written: an interrupted backup has no manifest, and a backup with
one is on disk. The manifest also records when the backup started and, per topic, the newest
message id the copy holds: a clean-up compares both with the live data (rocksmq/cleanup.py).

A restore is one switch (`restore_backup`): the backup is copied and checked into staging dirs,
then, with Ctrl-C and SIGTERM held back, both live dirs are renamed into one `.replaced-<id>` dir
and both staging dirs renamed in. A restore journal beside them records every name first, so a
failure undoes the renames done and a killed restore is finished by running it again. Nothing
the restore did not create is ever deleted: the replaced databases are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from migrator.errors import BadInput, Damaged, Refused
from migrator.rocksmq.files import (
    copy_and_hash,
    existing_ancestor,
    free_bytes,
    fsync_files,
    hash_file,
    regular_files,
    sync_file_system,
)
from migrator.rocksmq.layout import (
    RocksmqDirs,
    is_locked,
    is_rocksdb_dir,
    meta_kv_path,
    rocksmq_dirs,
)
from migrator.rocksmq.safety import refuse_unsafe_target
from migrator.util.files import MIB, RUN_FILE_MODE, file_kind, fsync_path, read_bounded, write_bytes_atomic

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 2  # 2: started_unix and the newest message id per topic
MANIFEST_LIMIT = 256 * MIB  # ~200 bytes per file: a million files
RESTORE_JOURNAL_SUFFIX = ".restore.json"
PARTS = ("data", "meta_kv")  # backup subdirectories for rocksmq.path and its _meta_kv sibling
NOT_BACKED_UP = {"LOCK"}  # RocksDB re-creates it; it holds no data
ROOM_MARGIN = 64 * 1024 * 1024
COPY_THREADS = max(2, min(4, os.cpu_count() or 2))
LIVE_COPY_ATTEMPTS = 3
BATCH = 512  # files copied, made durable and written into the manifest at a time
SMALL_FILE = 1024 * 1024  # a batch of files this small on average is made durable with one syncfs


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative to the backup dir, e.g. "data/000009.sst"
    size: int
    sha256: str


class StoredEntries(Sequence[ManifestEntry]):
    """The entries of a manifest just written, read back from its file when asked: a backup of a
    million files never holds them all in memory. Its file has one entry a line (`_ManifestWriter`)."""

    def __init__(self, path: Path, count: int, total_bytes: int) -> None:
        # Not `count`: that is Sequence.count(value), which this would shadow.
        self.path, self.length, self.total_bytes = path, count, total_bytes

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[ManifestEntry]:
        with open(self.path, encoding="utf-8") as handle:
            next(handle)  # {"files": [
            for line in handle:
                line = line.strip().rstrip(",")
                if line.startswith("]"):
                    return
                entry = json.loads(line)
                yield ManifestEntry(entry["path"], entry["size"], entry["sha256"])

    def __getitem__(self, index: Any) -> Any:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)


@dataclass
class Manifest:
    source_data: str
    source_meta_kv: str
    mode: str  # "copy", "reflink" (every file shares its blocks copy-on-write) or "hardlink" (SSTs linked)
    milvus_running: bool
    created_at: str
    files: Sequence[ManifestEntry] = field(default_factory=list)
    started_unix: float | None = None  # when the copy began: a clean-up wants it after the write deny
    newest_msg_ids: dict[str, int | None] | None = None  # per topic, in the copy; None: format 1
    format: int = MANIFEST_FORMAT

    @property
    def total_bytes(self) -> int:
        if isinstance(self.files, StoredEntries):
            return self.files.total_bytes
        return sum(entry.size for entry in self.files)

    @property
    def file_count(self) -> int:
        return len(self.files)

    def summary(self) -> dict[str, Any]:
        """Everything but the entries (they are in the manifest file): what the commands print."""
        fields = {name: getattr(self, name) for name in ("source_data", "source_meta_kv", "mode", "milvus_running",
                                                          "created_at", "started_unix", "newest_msg_ids", "format")}
        return {**fields, "total_bytes": self.total_bytes, "file_count": self.file_count}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "files": [asdict(entry) for entry in self.files]}

    @classmethod
    def load(cls, backup_dir: Path) -> Manifest:
        path = backup_dir / MANIFEST_NAME
        if not backup_dir.is_dir():
            raise BadInput(f"{backup_dir} is not a directory")
        if not path.exists():
            raise BadInput(f"{backup_dir} has no {MANIFEST_NAME}: not a backup, or an interrupted one")
        data = read_bounded(path, MANIFEST_LIMIT, what="backup manifest")
        try:
            return cls.from_dict(json.loads(data.decode("utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise BadInput(f"{path} is not a valid backup manifest: {error}") from None

    @classmethod
    def from_dict(cls, raw: Any) -> Manifest:
        """Every field checked for its type; ValueError/KeyError/TypeError name what is wrong."""
        if not isinstance(raw, dict):
            raise ValueError(f"a JSON {type(raw).__name__}, not an object")
        if raw.get("format") not in (1, MANIFEST_FORMAT):
            raise ValueError(f"unknown format {raw.get('format')!r}")
        for key in ("source_data", "source_meta_kv", "mode", "created_at"):
            if not isinstance(raw[key], str):
                raise ValueError(f"{key} must be a string")
        if not isinstance(raw["milvus_running"], bool) or not isinstance(raw["files"], list):
            raise ValueError("milvus_running must be true/false and files a list")
        files = []
        for entry in raw["files"]:
            if not isinstance(entry, dict):
                raise ValueError("every files entry must be a mapping")
            relative = entry["path"]
            part, _, rest = str(relative).partition("/")
            # A path outside data/ or meta_kv/ (`../`, absolute) would make restore write elsewhere.
            if (not isinstance(relative, str) or part not in PARTS or not rest or "/" in rest or rest in (".", "..")):
                raise ValueError(f"file path {relative!r} is not data/<name> or meta_kv/<name>")
            size = entry["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ValueError(f"{relative}: size must be a non-negative integer")
            if not isinstance(entry["sha256"], str) or len(entry["sha256"]) != 64:
                raise ValueError(f"{relative}: sha256 must be 64 hex digits")
            files.append(ManifestEntry(relative, size, entry["sha256"]))
        newest = raw.get("newest_msg_ids")
        if newest is not None and (not isinstance(newest, dict) or any(
                not isinstance(v, (int, type(None))) or isinstance(v, bool) for v in newest.values())):
            raise ValueError("newest_msg_ids must map topics to message ids")
        started = raw.get("started_unix")
        if started is not None and (not isinstance(started, (int, float)) or isinstance(started, bool)):
            raise ValueError("started_unix must be a number")
        return cls(
            source_data=raw["source_data"],
            source_meta_kv=raw["source_meta_kv"],
            mode=raw["mode"],
            milvus_running=raw["milvus_running"],
            created_at=raw["created_at"],
            files=files,
            started_unix=started,
            newest_msg_ids=newest,
            format=raw["format"],
        )


@dataclass(frozen=True)
class _SourceFile:
    part: str
    source: str  # a path; strings, not Paths, in the per-file loop (open_regular says why)
    relative: str  # inside the backup dir
    size: int
    inode: int
    mtime_ns: int

    @property
    def immutable(self) -> bool:
        return self.source.endswith(".sst")


def _source_files(dirs: RocksmqDirs) -> Iterator[_SourceFile]:
    """The files to back up, as the directories list them (never held all at once). RocksDB keeps
    only regular files and no subdirectory: anything else is refused (BadInput), not walked."""
    for part, directory in zip(PARTS, dirs.both(), strict=True):
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name in NOT_BACKED_UP:
                    continue
                try:
                    status = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # a live RocksDB deletes obsolete files at any time
                    continue
                if stat.S_ISDIR(status.st_mode):
                    raise BadInput(f"{entry.path}/: RocksDB keeps no subdirectory in {directory}; it is not Milvus's",
                                   hint="move it out, then back up again")
                if not stat.S_ISREG(status.st_mode):
                    raise BadInput(f"{entry.path} is {file_kind(status.st_mode)}, not a regular file: not RocksDB's",
                                   hint="move it out, then back up again")
                yield _SourceFile(part, entry.path, f"{part}/{entry.name}", status.st_size, status.st_ino,
                                  status.st_mtime_ns)


def _fingerprint(dirs: RocksmqDirs) -> tuple[int, int]:
    """What a writer changes (names, inodes, sizes, mtimes), in constant memory: (files, the sum of
    each file's sha256 mod 2**256, which does not depend on the order the directory lists them)."""
    count = total = 0
    for item in _source_files(dirs):
        line = f"{item.relative}\0{item.inode}\0{item.size}\0{item.mtime_ns}".encode()
        total = (total + int.from_bytes(hashlib.sha256(line).digest(), "big")) % (1 << 256)
        count += 1
    return count, total


class _ManifestWriter:
    """The manifest, written as the copy goes, one entry a line, into a hidden file renamed into
    place last (the rename is what makes a backup complete)."""

    def __init__(self, dest: Path) -> None:
        self.path = dest / f".{MANIFEST_NAME}.partial"
        self._handle = open(self.path, "x", encoding="utf-8")  # noqa: SIM115 - closed in finish() or close()
        os.fchmod(self._handle.fileno(), RUN_FILE_MODE)
        self._handle.write('{"files": [\n')
        self.count = self.total_bytes = 0

    def add(self, entry: ManifestEntry) -> None:
        self._handle.write(("" if self.count == 0 else ",\n") + json.dumps(asdict(entry)))
        self.count += 1
        self.total_bytes += entry.size

    def finish(self, manifest: Manifest) -> Manifest:
        fields = {**manifest.summary(), "total_bytes": self.total_bytes, "file_count": self.count}
        self._handle.write("\n],\n" + json.dumps(fields, indent=1)[1:].lstrip())
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        final = self.path.parent / MANIFEST_NAME
        os.replace(self.path, final)
        fsync_path(final.parent)
        manifest.files = StoredEntries(final, self.count, self.total_bytes)
        return manifest

    def close(self) -> None:
        self._handle.close()


def _same_filesystem(source: Path, dest: Path) -> bool:
    return os.stat(source).st_dev == os.stat(existing_ancestor(dest)).st_dev


def _check_dest(dest: Path, dirs: RocksmqDirs) -> None:
    for directory in dirs.both():
        if dest.resolve().is_relative_to(directory.resolve()):
            raise BadInput(f"backup dir {dest} is inside {directory}: put it elsewhere")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"backup dir {dest} exists and is not empty", hint="choose a new directory")


def _store(item: _SourceFile, dest: Path, link: bool) -> tuple[ManifestEntry, str]:
    """Link or copy one file; (its manifest entry, how: "hardlink", "reflink" or "copy"; a copy
    still needs an fsync)."""
    target = os.path.join(dest, item.relative)  # strings: a Path per file would be interned for good
    if link and item.immutable:
        try:
            os.link(item.source, target, follow_symlinks=False)
        except OSError:  # e.g. a filesystem without hard links: copy instead
            pass
        else:
            return ManifestEntry(item.relative, *hash_file(target)), "hardlink"
    size, digest, how = copy_and_hash(item.source, target)
    return ManifestEntry(item.relative, size, digest), how


def _store_all(dirs: RocksmqDirs, dest: Path, link: bool, manifest: _ManifestWriter) -> str:
    """Link or copy every file, a batch at a time (memory stays flat whatever their number), each
    batch's copies made durable before its entries go into the manifest; the mode."""
    for part in PARTS:
        (dest / part).mkdir(parents=True, exist_ok=True)
    hows: set[str] = set()
    with ThreadPoolExecutor(COPY_THREADS) as pool:
        for batch in _batches(_source_files(dirs), BATCH):
            stored = list(pool.map(lambda item: _store(item, dest, link), batch))
            copies = [dest / entry.path for entry, how in stored if how != "hardlink"]
            small = sum(entry.size for entry, _ in stored) < len(stored) * SMALL_FILE
            if not (small and sync_file_system(dest)):
                fsync_files(copies, COPY_THREADS)
            for entry, how in stored:
                manifest.add(entry)
                hows.add(how)
    for part in PARTS:
        fsync_path(dest / part)
    return "hardlink" if "hardlink" in hows else "reflink" if hows == {"reflink"} else "copy"


def _batches(items: Iterable[_SourceFile], size: int) -> Iterator[list[_SourceFile]]:
    batch: list[_SourceFile] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _clear(dest: Path) -> None:
    for child in dest.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def create_backup(path: Path | str, dest: Path | str, *, milvus_running: bool, hard_links: bool = False) -> Manifest:
    """Back up rocksmq.path `path` and its `_meta_kv` sibling into the new or empty directory `dest`.

    `milvus_running=False` promises the databases are closed (checked through RocksDB's LOCK);
    `True` copies while files may change and retries until none did. `hard_links` (stopped only,
    same file system) links the SSTs instead of copying them: fast and small, but the backup then
    shares those files with the live store. Refused when there is not enough room or Milvus holds
    the databases; BadInput for bad paths.
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
    link = hard_links and not milvus_running and _same_filesystem(dirs.data, dest)
    needed = sum(item.size for item in _source_files(dirs) if not (link and item.immutable)) + ROOM_MARGIN
    available = free_bytes(dest)
    if available < needed:
        raise Refused(f"not enough room for the backup in {dest}: {needed} bytes needed, {available} free")

    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    started = time.time()
    try:
        writer, mode = (_copy_consistently(dirs, dest, link) if milvus_running
                        else _store_writing(dirs, dest, link))
        from migrator.rocksmq.inspect import newest_msg_ids

        return writer.finish(Manifest(
            source_data=str(dirs.data),
            source_meta_kv=str(dirs.meta_kv),
            mode=mode,
            milvus_running=milvus_running,
            created_at=datetime.now(timezone.utc).isoformat(),
            started_unix=started,
            # Read from the copy, not the source: what the backup holds (and proof it opens).
            newest_msg_ids=newest_msg_ids(dest / "data", dest / "meta_kv"),
        ))
    except BaseException:
        # Interrupted or failed: leave nothing that could pass for a backup.
        shutil.rmtree(dest) if created else _clear(dest)
        raise


def _store_writing(dirs: RocksmqDirs, dest: Path, link: bool) -> tuple[_ManifestWriter, str]:
    writer = _ManifestWriter(dest)
    try:
        return writer, _store_all(dirs, dest, link, writer)
    except BaseException:
        writer.close()
        raise


def _copy_consistently(dirs: RocksmqDirs, dest: Path, link: bool) -> tuple[_ManifestWriter, str]:
    """Copy while a writer may be active; accept the copy only if no source file changed during it."""
    for _attempt in range(LIVE_COPY_ATTEMPTS):
        before = _fingerprint(dirs)
        try:
            writer, mode = _store_writing(dirs, dest, link)
        except FileNotFoundError:  # compaction deleted a file mid-copy
            writer = None
        if writer is not None and _fingerprint(dirs) == before:
            return writer, mode
        if writer is not None:
            writer.close()
        _clear(dest)
    raise Refused(
        f"{dirs.data} kept changing during {LIVE_COPY_ATTEMPTS} copies: no consistent backup "
        "possible while it is written",
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
        raise Damaged(f"backup {backup_dir} is damaged: {shown}",
                      hint="take a new backup; this one cannot be restored or trusted for a clean-up")


def verify_backup(dest: Path | str) -> Manifest:
    """Re-hash every file of the backup against its manifest; BadInput naming what differs."""
    backup_dir = Path(dest).expanduser().absolute()
    manifest = Manifest.load(backup_dir)
    _check_entries(backup_dir, manifest, hash_file)
    return manifest


def _is_empty(directory: Path) -> bool:
    return not directory.exists() or (directory.is_dir() and not any(directory.iterdir()))


@dataclass
class RestoreReport:
    manifest: Manifest
    replaced_dir: str | None  # where the databases that were replaced are kept (never deleted)

    def to_dict(self) -> dict[str, Any]:
        return {**self.manifest.summary(), "replaced_dir": self.replaced_dir}


def restore_journal_path(data: Path) -> Path:
    return data.parent / f".{data.name}{RESTORE_JOURNAL_SUFFIX}"


def restore_backup(dest: Path | str, path: Path | str, force: bool = False) -> RestoreReport:
    """Put a verified backup back at rocksmq.path `path` and its `_meta_kv` sibling, in one switch.

    Refused when a target is not empty, unless `force` (then it must be a RocksDB directory that no
    process holds and that passes the guards; it is moved into `<path>.replaced-<id>/`, not
    deleted). Refused for a target that is a symlink or overlaps the backup. A restore journal
    `.<name>.restore.json` beside the targets names every directory before it is made or moved:
    an interrupted restore is undone in-process, a killed one finished by running restore again.
    """
    backup_dir = Path(dest).expanduser().absolute()
    manifest = verify_backup(backup_dir)
    data = Path(path).expanduser().absolute()
    targets = dict(zip(PARTS, (data, meta_kv_path(data)), strict=True))
    for target in targets.values():
        if target.is_symlink():
            raise BadInput(f"{target} is a symbolic link (to {os.readlink(target)}): give the directory itself")
        resolved = target.resolve()
        if resolved == backup_dir.resolve() or resolved.is_relative_to(backup_dir.resolve()) \
                or backup_dir.resolve().is_relative_to(resolved):
            raise BadInput(f"refusing to restore into {target}: it overlaps the backup {backup_dir}")
    journal_path = restore_journal_path(data)
    if os.path.lexists(journal_path):
        return _resume_restore(journal_path, backup_dir, manifest, targets)
    for target in targets.values():
        if _is_empty(target):
            continue
        if not force:
            raise Refused(f"{target} is not empty",
                          hint="pass --force to replace it with the backup (it is kept aside)")
        refuse_unsafe_target(target, action="replace")
        if not is_rocksdb_dir(target):
            raise Refused(f"refusing to replace {target}: it is not a RocksDB directory")
    run_id = f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
    record: dict[str, Any] = {
        "backup": str(backup_dir),
        "targets": {part: str(target) for part, target in targets.items()},
        "staging": {part: str(target.with_name(f"{target.name}.restoring-{run_id}"))
                    for part, target in targets.items()},
        "replaced_dir": str(data.with_name(f"{data.name}.replaced-{run_id}")),
        "phase": "copying",
    }
    _save_restore_journal(journal_path, record)
    try:
        _stage(backup_dir, manifest, {part: Path(p) for part, p in record["staging"].items()})
    except BaseException:
        # Only what this restore created: its own staging dirs and its journal.
        for staging in record["staging"].values():
            shutil.rmtree(staging, ignore_errors=True)
        journal_path.unlink(missing_ok=True)
        raise
    record["phase"] = "switching"
    _save_restore_journal(journal_path, record)
    return RestoreReport(manifest, _switch(journal_path, record))


def _save_restore_journal(path: Path, record: dict[str, Any]) -> None:
    write_bytes_atomic(path, json.dumps(record, indent=1).encode("utf-8"))


def _stage(backup_dir: Path, manifest: Manifest, staging: dict[str, Path]) -> None:
    """Copy the backup into the new staging dirs, checking every file against the manifest; fsync."""
    for directory in staging.values():
        directory.mkdir()  # exclusive: never reuse a directory someone else made
    copies = []
    for entry in manifest.files:
        part, _, relative = entry.path.partition("/")
        target = staging[part] / relative
        size, digest, _how = copy_and_hash(backup_dir / entry.path, target)
        if (size, digest) != (entry.size, entry.sha256):
            raise BadInput(f"backup file {entry.path} changed while restoring it")
        copies.append(target)
    fsync_files(copies, COPY_THREADS)
    for directory in staging.values():
        fsync_path(directory)


_SWITCH_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _switch(journal_path: Path, record: dict[str, Any]) -> str | None:
    """The renames: live dirs into the replaced dir, staging dirs in. Ctrl-C and SIGTERM wait until
    it is done; any error undoes the renames done so far (in reverse) and re-raises."""
    targets = {part: Path(p) for part, p in record["targets"].items()}
    staging = {part: Path(p) for part, p in record["staging"].items()}
    replaced = Path(record["replaced_dir"])
    moves: list[tuple[Path, Path]] = []
    for part, target in targets.items():
        aside = replaced / target.name
        if target.exists() and staging[part].exists() and not aside.exists():
            moves.append((target, aside))
    moves += [(staging[part], targets[part]) for part in PARTS if staging[part].exists()]
    blocked = _block(_SWITCH_SIGNALS)
    try:
        if any(source == target for target in targets.values() for source, _ in moves):
            replaced.mkdir(exist_ok=True)
        for source, destination in moves:
            os.rename(source, destination)
        fsync_path(replaced.parent)
    except BaseException:
        # Undo by what is on disk, not by what was recorded: a rename may have happened just
        # before the error surfaced.
        for source, destination in reversed(moves):
            if os.path.lexists(destination) and not os.path.lexists(source):
                os.rename(destination, source)
        if replaced.exists() and not any(replaced.iterdir()):
            replaced.rmdir()
        fsync_path(replaced.parent)
        # The originals are back: drop what this restore made (only if an undo above failed is
        # the journal left, for a later run to finish the switch).
        for directory in staging.values():
            shutil.rmtree(directory, ignore_errors=True)
        journal_path.unlink(missing_ok=True)
        raise
    finally:
        _unblock(blocked)
    journal_path.unlink(missing_ok=True)
    if replaced.exists():
        for child in replaced.iterdir():  # empty target dirs moved aside hold nothing to keep
            if child.is_dir() and not child.is_symlink() and not any(child.iterdir()):
                child.rmdir()
        if not any(replaced.iterdir()):
            replaced.rmdir()
    fsync_path(journal_path.parent)
    return str(replaced) if replaced.exists() else None


def _block(signals: set[signal.Signals]) -> set[int | signal.Signals] | None:
    try:
        return signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    except (AttributeError, ValueError, OSError):
        return None


def _unblock(previous: set[int | signal.Signals] | None) -> None:
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _resume_restore(journal_path: Path, backup_dir: Path, manifest: Manifest,
                    targets: dict[str, Path]) -> RestoreReport:
    """An earlier restore of these targets was killed: finish it when it was switching (its staging
    dirs were complete and checked), or remove what it had begun to stage and start again."""
    try:
        record = json.loads(read_bounded(journal_path, MIB, what="restore journal").decode("utf-8"))
        staging = {part: Path(record["staging"][part]) for part in PARTS}
        recorded_targets = {part: Path(record["targets"][part]) for part in PARTS}
        phase, recorded_backup = record["phase"], Path(record["backup"])
        replaced = Path(record["replaced_dir"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise BadInput(f"{journal_path}: not a restore journal ({error})",
                       hint="an interrupted restore left it: read it, put the directories it names right, "
                            "remove it") from None
    if recorded_targets != targets or recorded_backup != backup_dir:
        raise Refused(f"an interrupted restore of {recorded_targets['data']} from {recorded_backup} is unfinished "
                      f"({journal_path})", hint=f"run `backup restore {recorded_backup} --to "
                                                f"{recorded_targets['data']}` to finish it")
    # The names it recorded must be a restore's own, beside the targets: never rename or delete others.
    owned = [(directory, targets[part], ".restoring-") for part, directory in staging.items()]
    owned.append((replaced, targets["data"], ".replaced-"))
    for directory, target, infix in owned:
        if directory.parent != target.parent or not directory.name.startswith(f"{target.name}{infix}"):
            raise BadInput(f"{journal_path}: {directory} is not a name a restore of {target} makes")
    if phase == "switching":
        return RestoreReport(manifest, _switch(journal_path, record))
    for directory in staging.values():
        if directory.exists():
            shutil.rmtree(directory)  # created by that restore (the journal named it first)
    journal_path.unlink()
    return restore_backup(backup_dir, targets["data"], force=True)
