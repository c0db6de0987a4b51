"""Stand-in `systemctl` and `journalctl` executables that drive a real sandbox Milvus (the container
runtimes are tested on real containers: tests/integration/containers)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STANDINS = Path(__file__).resolve().parent
COMMANDS = ("systemctl", "journalctl")


@dataclass
class Standins:
    home: Path  # units/, journal.index
    sandbox: Path
    bin_dir: Path


@contextmanager
def standins_on_path(home: Path, sandbox: Path) -> Iterator[Standins]:
    """Put the stand-ins first on PATH (this process and its children) and run the stand-in
    journald; restores the environment and stops journald on exit."""
    bin_dir = home / "bin"
    for sub in (bin_dir, home / "units"):
        sub.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDINS / (name + ".py")}" "$@"\n')
        wrapper.chmod(0o755)
    saved = {key: os.environ.get(key) for key in ("PATH", "STANDIN_HOME", "STANDIN_SANDBOX")}
    os.environ.update(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                      STANDIN_HOME=str(home), STANDIN_SANDBOX=str(sandbox))
    journald = subprocess.Popen([sys.executable, str(STANDINS / "journald.py")], stdin=subprocess.DEVNULL)
    try:
        yield Standins(home=home, sandbox=sandbox, bin_dir=bin_dir)
    finally:
        journald.terminate()
        journald.wait(timeout=10)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
