"""Child processes of the tool's own (its client writers): stopped the same way everywhere."""

from __future__ import annotations

import signal
import subprocess


def terminate(process: subprocess.Popen, wait_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL once `wait_s` passed; returns when the child is reaped."""
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    except ProcessLookupError:
        pass
