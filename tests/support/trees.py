"""Directory trees nested deeper than Python's recursion: made and removed without recursing.

os.makedirs, os.walk (before 3.12) and shutil.rmtree all recurse once per level, and pytest removes
old temporary directories with shutil.rmtree: a test that leaves such a tree behind breaks a later
session's clean-up, so every test that makes one removes it with `remove_tree`.
"""

from __future__ import annotations

import os
from pathlib import Path


def nest(root: Path, depth: int) -> Path:
    """`depth` directories one in another under `root`; the deepest."""
    for _ in range(depth):
        root = root / "d"
        root.mkdir()
    return root


def remove_tree(top: Path) -> None:
    """Remove `top` however deep it nests: directories collected with a stack, removed deepest first."""
    order, pending = [], [os.fspath(top)]
    while pending:
        current = pending.pop()
        order.append(current)
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    os.unlink(entry.path)
    for directory in reversed(order):
        os.rmdir(directory)
