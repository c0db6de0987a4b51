"""The Environment: one object carrying streams, output format, clock and logger.

Verbs take it as their first argument, so tests run the whole CLI in-process with
their own streams and environment variables (httpie's `context.Environment`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO


@dataclass
class Environment:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO | None = field(default_factory=lambda: sys.stdin)
    output: str = "text"  # text | json
    log_format: str = "console"  # console | json
    log_file: Path | None = None
    verbose: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    progress: Any = None  # hears each step start and end (migration/engine.py Progress); set by the CLI
    result: Any = None  # --output json: the command's data, written by the CLI as one document at the end
    playbook: Path | None = None  # the playbook the command acts through: hints name it (verbs/deployment.py)
    _log: Any = field(default=None, repr=False)

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    @property
    def json_output(self) -> bool:
        return self.output == "json"

    @property
    def interactive(self) -> bool:
        """A person can answer a question: stdin and stdout are terminals and stderr is not
        reserved for JSON log lines."""
        return bool(self.stdin is not None and self.stdin.isatty() and self.stdout.isatty()
                    and self.log_format != "json")

    @property
    def dumb_terminal(self) -> bool:
        """stderr cannot redraw a line: not a terminal, or TERM=dumb."""
        return not self.stderr.isatty() or self.environ.get("TERM") == "dumb"

    @property
    def colour(self) -> bool:
        """Colours on stderr: a terminal that can show them, and no NO_COLOR (https://no-color.org)."""
        return not self.dumb_terminal and not self.environ.get("NO_COLOR")

    @property
    def log(self) -> Any:
        # structlog is configured on first use: importing it costs more than typer itself,
        # and `--help` must stay fast.
        if self._log is None:
            from migrator.util.logging import make_logger

            # With a progress display, a step's failure is its FAILED line: not said twice on the console.
            quiet = frozenset({"step.failed", "step.interrupted"}) if self.progress is not None else frozenset()
            self._log = make_logger(_ConsoleStream(self), log_format=self.log_format, log_file=self.log_file,
                                    verbose=self.verbose, colour=self.colour, console_quiet=quiet)
        return self._log

    def emit(self, data: dict[str, Any], text: str | None = None) -> None:
        """A command's result: printed as text now, or kept for the one JSON document the CLI
        writes when the command ends (success or failure alike). Secrets redacted (util/redact.py),
        control characters escaped (util/printable.py)."""
        from migrator.util.printable import printable
        from migrator.util.redact import redact, redact_text

        data, text = redact(data), printable(redact_text(text)) if text is not None else None
        if self.json_output:
            self.result = data if self.result is None else {**self.result, **data}
            return
        if text is not None:
            self.stdout.write(text if text.endswith("\n") else text + "\n")
            self.stdout.flush()

    def say(self, text: str) -> None:
        """A note for a human, on stderr so stdout stays machine-readable (a JSON log line with
        --log-format json, so stderr stays JSON only)."""
        if self.log_format == "json":
            self.log.info("cli.note", message=text)
            return
        from migrator.util.printable import printable
        from migrator.util.redact import redact_text

        self.stderr.write(printable(redact_text(text)) + "\n")
        self.stderr.flush()


class _ConsoleStream:
    """stderr as the log sees it: while a progress display holds a live line, a log line is printed
    above it through the display (`above`), never written into the middle of it."""

    def __init__(self, env: Environment) -> None:
        self._env = env

    def write(self, text: str) -> None:
        above = getattr(self._env.progress, "above", None)
        if above is None or not above(text):
            self._env.stderr.write(text)

    def flush(self) -> None:
        self._env.stderr.flush()

    def isatty(self) -> bool:
        return self._env.stderr.isatty()
