"""The Environment: one object carrying streams, output format, clock and logger.

Verbs take it as their first argument, so tests run the whole CLI in-process with
their own streams and environment variables (httpie's `context.Environment`).
"""

from __future__ import annotations

import json
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
    _log: Any = field(default=None, repr=False)

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    @property
    def json_output(self) -> bool:
        return self.output == "json"

    @property
    def interactive(self) -> bool:
        return bool(self.stdin is not None and self.stdin.isatty() and self.stdout.isatty())

    @property
    def log(self) -> Any:
        # structlog is configured on first use: importing it costs more than typer itself,
        # and `--help` must stay fast.
        if self._log is None:
            from migrator.util.logging import make_logger

            self._log = make_logger(self.stderr, log_format=self.log_format, log_file=self.log_file,
                                    verbose=self.verbose)
        return self._log

    def emit(self, data: Any, text: str | None = None) -> None:
        """Print a command's result: JSON (one document) or the text rendering."""
        if self.json_output:
            self.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
        elif text is not None:
            self.stdout.write(text if text.endswith("\n") else text + "\n")
        self.stdout.flush()

    def say(self, text: str) -> None:
        """Progress for a human; goes to stderr so stdout stays machine-readable."""
        self.stderr.write(text + "\n")
        self.stderr.flush()
