"""Stand-in journald: records (time, size) of the sandbox's stdout log whenever it grows, so
the stand-ins can answer `--since T` the way journald does (lines stamped on arrival)."""

from __future__ import annotations

import os
import time

import _standin

index = _standin.HOME / "journal.index"
path = _standin.stdout_log()
last = None
with open(index, "a") as out:
    while True:
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            size = 0
        if size != last:
            out.write(f"{time.time():.6f} {size}\n")
            out.flush()
            last = size
        time.sleep(0.02)
