"""Guards before anything is deleted or overwritten: never a system directory, a home
(util/paths.py), the config dir, a mount point or a tree with a mount point anywhere below it
(deleting through it would cross filesystems)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from migrator.errors import Refused
from migrator.rocksmq.layout import is_locked
from migrator.util.files import iter_tree
from migrator.util.paths import system_path_problem


def _unescape(field: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_below(path: Path) -> list[Path]:
    """Mount points at or below `path`: from /proc/self/mountinfo, and any directory under `path`
    on another device (a bind mount of the same device shows only in mountinfo)."""
    resolved = path.resolve()
    found: set[Path] = set()
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
            for line in mountinfo:
                fields = line.split()
                if len(fields) > 4:
                    point = Path(_unescape(fields[4]))
                    if point == resolved or point.is_relative_to(resolved):
                        found.add(point)
    except OSError:
        pass  # not Linux: the device walk below still finds other filesystems
    try:
        device = os.lstat(resolved).st_dev
    except OSError:
        return sorted(found)
    for entry in iter_tree(resolved):
        try:
            if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_dev != device:
                found.add(Path(entry.path))
        except OSError:
            continue
    return sorted(found)


def refuse_unsafe_target(path: Path, *, config_dir: Path | None = None, action: str = "remove") -> None:
    """Refused unless `path` is an ordinary directory that may be deleted wholesale."""
    resolved = path.resolve()
    problem = system_path_problem(resolved)
    if problem:
        raise Refused(f"refusing to {action} {path}: {problem}")
    if config_dir is not None:
        config = Path(config_dir).resolve()
        if resolved == config or config.is_relative_to(resolved) or resolved.is_relative_to(config):
            raise Refused(f"refusing to {action} {path}: it is or overlaps the Milvus config dir {config_dir}")
    if path.is_symlink():
        raise Refused(f"refusing to {action} {path}: it is a symbolic link (to {os.readlink(path)})")
    if os.path.ismount(resolved):
        raise Refused(
            f"refusing to {action} {path}: it is a mount point",
            hint="remove its contents by hand, or point rocksmq.path at a subdirectory",
        )
    nested = mounts_below(resolved)
    if nested:
        raise Refused(
            f"refusing to {action} {path}: {', '.join(str(p) for p in nested[:3])} below it is a mount point "
            "(another filesystem)", hint="unmount it first; the tool never deletes across filesystems")
    if resolved.is_dir() and is_locked(resolved):
        raise Refused(f"refusing to {action} {path}: a running process holds its RocksDB LOCK (is Milvus using it?)")
