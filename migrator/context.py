"""The Environment: one object carrying streams, output format, clock and logger.

Verbs take it as their first argument, so tests run the whole CLI in-process with
their own streams and environment variables (httpie's `context.Environment`).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO


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

            self._log = make_logger(self.stderr, log_format=self.log_format, log_file=self.log_file,
                                    verbose=self.verbose, colour=self.colour)
        return self._log

    def emit(self, data: dict[str, Any], text: str | None = None) -> None:
        """A command's result: printed as text now, or kept for the one JSON document the CLI
        writes when the command ends (success or failure alike). Secrets redacted (util/redact.py)."""
        from migrator.util.redact import redact, redact_text

        data, text = redact(data), redact_text(text) if text is not None else None
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
        from migrator.util.redact import redact_text

        self.stderr.write(redact_text(text) + "\n")
        self.stderr.flush()
