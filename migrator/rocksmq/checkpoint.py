"""A consistent copy of a RocksDB database that a live process keeps writing (RocksMQ under Milvus).

RocksDB's own Checkpoint needs the writer's process; Milvus holds the database. So the copy is
made from outside, the way RocksDB's checkpoint does it inside: the SST files are hard-linked
(immutable once written; a link keeps one alive after the writer deletes it), the write-ahead logs
copied, then the MANIFEST that CURRENT names, then CURRENT. A flush or compaction finishing while
this runs appends to the MANIFEST: the MANIFEST is compared before and after, and a changed one
starts the copy again, so the copy is the database as it was at one moment (a crash image: the
WAL's torn tail, if any, is dropped by RocksDB's point-in-time recovery).

The copy is then opened read-only, which proves it (a missing SST fails the open), and tells which
SSTs its MANIFEST lists: every other SST is removed from the copy before anyone opens it for
writing, so a process writing the copy never creates a file over a link it shares with the source.
See docs/decisions/0021-rehearse-on-a-copy.md.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from migrator.errors import BadInput, Refused
from migrator.util.files import copy_new_file, link_or_copy

ATTEMPTS = 8
_SKIPPED = ("LOCK", "LOG")  # the writer's lock; RocksDB's info log (LOG, LOG.old.*) holds no data


class _Changed(Exception):
    """The source moved on while it was being copied: copy again."""


@dataclass(frozen=True)
class LinkedFile:
    """A source file the copy shares by a hard link: checked unchanged after the copy's use."""

    path: str
    inode: int
    size: int
    mtime_ns: int


@dataclass
class CheckpointResult:
    linked: list[LinkedFile] = field(default_factory=list)
    linked_bytes: int = 0
    copied_bytes: int = 0
    attempts: int = 0


def checkpoint_live(source: Path, target: Path, *, attempts: int = ATTEMPTS) -> CheckpointResult:
    """Copy the RocksDB database at `source` (open or not) to the new directory `target`."""
    if target.exists():
        raise BadInput(f"{target}: already exists; a checkpoint goes to a new directory")
    staging = target.parent / f".{target.name}.partial"
    last = ""
    for attempt in range(1, attempts + 1):
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            result = _copy_once(source, staging)
            listed = _listed_ssts(staging, source)
        except _Changed as change:
            last = str(change)
            time.sleep(0.05 * attempt)
            continue
        for name in os.listdir(staging):
            if name.endswith(".sst") and name not in listed:
                os.unlink(staging / name)  # not in this MANIFEST: an unfinished flush or a compacted-away file
        kept = [linked for linked in result.linked if Path(linked.path).name in listed]
        result.linked_bytes -= sum(linked.size for linked in result.linked) - sum(linked.size for linked in kept)
        result.linked = kept
        result.attempts = attempt
        os.rename(staging, target)
        return result
    shutil.rmtree(staging, ignore_errors=True)
    raise Refused(f"{source}: it changed under each of {attempts} attempts to copy it ({last})",
                  hint="retry when Milvus writes less, or stop Milvus first")


def _manifest_state(source: Path) -> tuple[str, int, int]:
    try:
        name = (source / "CURRENT").read_text().strip()
        status = os.stat(source / name)
    except OSError as error:
        raise _Changed(f"CURRENT or its MANIFEST: {error.strerror}") from None
    return name, status.st_size, status.st_mtime_ns


def _copy_once(source: Path, staging: Path) -> CheckpointResult:
    result = CheckpointResult()
    before = _manifest_state(source)
    for name in sorted(os.listdir(source)):
        if not name.endswith(".sst"):
            continue
        try:
            status = os.lstat(source / name)
            linked = link_or_copy(source / name, staging / name)
        except FileNotFoundError:
            continue  # compacted away meanwhile: if the MANIFEST still needs it, it changed too
        if linked:
            result.linked.append(LinkedFile(str(source / name), status.st_ino, status.st_size, status.st_mtime_ns))
            result.linked_bytes += status.st_size
        else:
            result.copied_bytes += status.st_size
    # The logs after the SSTs: a log deleted meanwhile went into an SST the MANIFEST now lists.
    for name in sorted(os.listdir(source)):
        if name.endswith(".sst") or name.startswith(_SKIPPED) or name == "CURRENT" or name.startswith("MANIFEST-"):
            continue
        try:
            result.copied_bytes += copy_new_file(source / name, staging / name)
        except FileNotFoundError:
            continue
    manifest = before[0]
    try:
        result.copied_bytes += copy_new_file(source / manifest, staging / manifest)
    except FileNotFoundError:
        raise _Changed(f"{manifest} replaced meanwhile") from None
    if _manifest_state(source) != before:
        raise _Changed(f"{manifest} changed meanwhile")
    (staging / "CURRENT").write_text(manifest + "\n")
    return result


def _listed_ssts(staging: Path, source: Path) -> set[str]:
    """The SSTs the copy's MANIFEST lists, read by opening the copy read-only (which proves it)."""
    from migrator.rocksmq.reader import open_read_only

    try:
        with open_read_only(staging, check_unlisted=False) as db:
            return {entry["name"].lstrip("/") for entry in db.live_files() if entry["name"].endswith(".sst")}
    except BadInput as error:
        if "No such file" in error.message or "damaged" in error.message:
            raise _Changed(error.message.replace(str(staging), str(source))) from None
        raise
