"""Which paths the tool, running as root, may take from data, and which files it may take orders from.

- `system_path_problem`: a directory apply would move aside, delete or hand to Milvus as a store (or
  a file it would have Milvus write) must not be a system directory, nor one that holds everyone's
  data (a home, /var/lib): a plan saying natsmq.server.storeDir is `/etc` must never get `/etc`
  renamed aside.
- `writable_by_others`: a file someone other than root and the caller could have written (or put
  where it is) is no instruction for root: a plan may name a playbook, and a playbook names the
  commands root runs.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

# Trees that belong to the system: nothing of Milvus's may be at or below them.
SYSTEM_TREES = tuple(Path(p) for p in (
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev", "/proc", "/sys",
))
# Directories that hold everyone's data: a store may be below one, never one itself.
SHARED_DIRS = frozenset(Path(p) for p in (
    "/", "/var", "/var/lib", "/var/log", "/var/tmp", "/var/cache", "/var/spool", "/var/run", "/var/opt", "/tmp",
    "/home", "/root", "/opt", "/srv", "/mnt", "/media", "/run", "/snap",
))


def homes() -> set[Path]:
    """Every user's home directory (not `/`)."""
    found = {Path.home().resolve()}
    for entry in pwd.getpwall():
        if entry.pw_dir and entry.pw_dir != "/":
            found.add(Path(entry.pw_dir).resolve())
    return found


def system_path_problem(path: str | Path) -> str | None:
    """Why `path` is a system directory (or inside one), a shared one, or a home; None when it is an
    ordinary place for Milvus's data. Judged on the path as written (`..` folded) and on where its
    existing part really leads (symbolic links followed)."""
    text = str(path)
    if not os.path.isabs(text):
        return f"{text!r} is not an absolute path"
    for candidate in dict.fromkeys((Path(os.path.normpath(text)), Path(os.path.realpath(text)))):
        for tree in SYSTEM_TREES:
            if candidate == tree or tree in candidate.parents:
                return f"{path} is {'' if candidate == tree else 'inside '}the system directory {tree}"
        if candidate in SHARED_DIRS:
            return f"{path} is the system directory {candidate}, which holds more than Milvus's data"
        if candidate in homes():
            return f"{path} is a home directory"
    return None


def system_file_problem(path: str | Path) -> str | None:
    """Why a file at `path` (a log another process appends to) would be a system file: in a system
    tree, or right in `/`, `/root` or a home (their dot-files run at login); None otherwise."""
    problem = system_path_problem(path)
    if problem:
        return problem
    parent = Path(os.path.normpath(str(path))).parent
    if parent in (Path("/"), Path("/root")) or parent in homes():
        return f"{path} is right in {parent}"
    return None


def overlap(path: str | Path, other: str | Path) -> bool:
    """`path` is `other`, inside it, or holds it (both resolved)."""
    one, two = Path(os.path.realpath(path)), Path(os.path.realpath(other))
    return one == two or two in one.parents or one in two.parents


def writable_by_others(path: Path) -> str | None:
    """Why a user other than root and the caller could have written the file at `path` or put it
    there: it, or a directory above it, belongs to another user or may be written by group or others
    (a directory with the sticky bit, like /tmp, lets nobody replace a file they do not own). None
    when only root and the caller could have (group root counts as root)."""
    trusted = {0, os.geteuid()}
    real = Path(os.path.realpath(path))
    for candidate in (real, *real.parents):
        try:
            status = os.stat(candidate)
        except OSError as error:
            return f"{candidate} cannot be checked: {error.strerror or error}"
        if status.st_uid not in trusted:
            return f"{candidate} belongs to uid {status.st_uid}"
        sticky_dir = candidate != real and status.st_mode & stat.S_ISVTX
        writable = status.st_mode & stat.S_IWOTH or (status.st_mode & stat.S_IWGRP and status.st_gid != 0)
        if writable and not sticky_dir:
            return f"{candidate} is writable by others (mode {stat.S_IMODE(status.st_mode):o})"
    return None
