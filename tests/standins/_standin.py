"""What the stand-in `systemctl` and `journalctl` share: the real sandbox Milvus they
start and stop, and a journald-like index of its stdout (time -> byte offset) for `--since`.

Set by the test fixture: STANDIN_SANDBOX (a sandbox dir made by `milvus-migrate sandbox up`) and
STANDIN_HOME (units/, journal.index). A cursor is a byte offset in the sandbox's
stdout log; `--since T` starts at the offset the index recorded at or before T.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

HOME = Path(os.environ["STANDIN_HOME"])
SANDBOX = Path(os.environ["STANDIN_SANDBOX"])


def runtime(extra_env: dict[str, str] | None = None):
    from migrator.verbs import sandbox as lifecycle

    layout, state = lifecycle.load(SANDBOX)
    base = lifecycle.runtime_for(layout, state)
    return dataclasses.replace(base, variables={**base.variables, **(extra_env or {})})


def stdout_log() -> Path:
    return runtime().stdout_log


def running_pid() -> int | None:
    return runtime().running_pid()


def start(extra_env: dict[str, str]) -> int:
    """Launch Milvus detached and return at once, like `systemctl start` of a Type=simple unit."""
    return runtime(extra_env).start()


def stop(timeout_s: float) -> None:
    runtime().stop(timeout_s)


def terminate() -> None:
    """SIGTERM to the process, without waiting (a stop job systemd queued)."""
    import os
    import signal

    pid = runtime().running_pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)


def offset_since(since: float) -> int:
    """The stdout log's size when the index last looked at or before `since` (unix seconds)."""
    offset = 0
    try:
        lines = (HOME / "journal.index").read_text().splitlines()
    except FileNotFoundError:
        return 0
    for line in lines:
        stamp, size = line.split()
        if float(stamp) > since:
            break
        offset = int(size)
    return offset


def follow(offset: int) -> None:
    """Print the stdout log from `offset`, following."""
    path = stdout_log()
    with open(path, "rb") as log:
        log.seek(offset)
        while True:
            chunk = log.read(65536)
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
                continue
            time.sleep(0.05)


def fail(message: str, code: int = 1) -> None:
    sys.stderr.write(message + "\n")
    sys.exit(code)


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())
