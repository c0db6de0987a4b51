"""Run the CLI in-process and capture what a user would see; or in its own process, reading its JSON logs."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from migrator.cli import main
from migrator.context import Environment


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def ctrl_c_as_at_a_terminal() -> None:
    """A Popen preexec_fn: SIGINT back to its default in the child, so Python turns it into
    KeyboardInterrupt there. A shell starts background jobs (`make test &`) with SIGINT ignored,
    and Python keeps an ignored SIGINT ignored: Ctrl-C tests would then see nothing happen."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Stream(io.StringIO):
    def isatty(self) -> bool:
        return False


def run_cli(args: Sequence[str], environ: Mapping[str, str] | None = None, stdin: str = "") -> CliResult:
    out, err = _Stream(), _Stream()
    env = Environment(stdout=out, stderr=err, stdin=_Stream(stdin))
    if environ is not None:
        env.environ = dict(environ)
    # click prints help and usage errors on sys.stdout/sys.stderr: capture those too.
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args), environment=env)
    return CliResult(exit_code=code, stdout=out.getvalue(), stderr=err.getvalue())


def run_tool(*args: str, on_event: Callable[[dict, subprocess.Popen], None] | None = None,
             timeout_s: float = 900) -> tuple[int, list[dict]]:
    """The real CLI in its own process, JSON logs read as they come; `on_event` may inject a fault
    (a signal to the tool, a frozen Milvus) when it sees an event."""
    process = subprocess.Popen([sys.executable, "-m", "migrator", "--log-format", "json", *args],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    events: list[dict] = []
    assert process.stderr is not None
    for line in process.stderr:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        events.append(event)
        if on_event is not None:
            on_event(event, process)  # keeps reading after a signal: a closed pipe would turn the exit into EPIPE
    process.stderr.close()
    return process.wait(timeout=timeout_s), events
