"""structlog set-up: console or JSON lines on stderr, optionally JSON lines to a file too.

Event names are an interface (docs/logging.md); secrets are redacted here, once, so no
caller can leak a token or a password in a URI into a log.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Protocol, TextIO

import structlog
from structlog.typing import Processor

from migrator.util.redact import redact


def _redact_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    return {k: redact(v, k) for k, v in event_dict.items()}


class ConsoleStream(Protocol):
    """Where console lines go: stderr, or the Environment's stream that clears the progress display first."""

    def write(self, text: str) -> object: ...

    def flush(self) -> object: ...

    def isatty(self) -> bool: ...


class _TeeLogger:
    """Writes each rendered line to stderr and, as JSON, to the log file."""

    def __init__(self, stream: ConsoleStream, file: TextIO | None) -> None:
        self._stream = stream
        self._file = file

    def msg(self, message: str) -> None:
        console, as_json = message.split("\x00", 1)
        if console:
            self._stream.write(console + "\n")
            self._stream.flush()
        if self._file is not None:
            self._file.write(as_json + "\n")
            self._file.flush()

    log = debug = info = warning = error = critical = exception = msg


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50, "exception": 40}


def make_logger(stream: ConsoleStream, *, log_format: str, log_file: Path | None, verbose: bool,
                colour: bool | None = None, console_quiet: frozenset[str] = frozenset()) -> Any:
    """A structlog logger writing to `stream` (console or JSON lines) and, as JSON, to `log_file`.

    `colour` (default: whether `stream` is a terminal) lets the caller honour NO_COLOR and TERM=dumb;
    events named in `console_quiet` go to the file only (another display says them on the console)."""
    json_renderer = structlog.processors.JSONRenderer(sort_keys=False)
    if log_format == "json":
        console_renderer: Any = json_renderer
    else:
        console_renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty() if colour is None else colour)

    # Console: warnings and up by default (the progress lines say what happens), every event
    # with --verbose or --log-format json; the log file always gets info and up.
    console_min = 10 if verbose else 20 if log_format == "json" else 30
    file_min = 20

    def render_both(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
        level = _LEVELS.get(name, 20)
        shown = level >= console_min and event_dict.get("event") not in console_quiet
        console = console_renderer(logger, name, dict(event_dict)) if shown else ""
        return console + "\x00" + str(json_renderer(logger, name, dict(event_dict)))  # json.dumps: a str

    file = None
    if log_file is not None:
        import os

        from migrator.util.files import open_no_follow

        log_file.parent.mkdir(parents=True, exist_ok=True)
        # 0600 and never through a planted symlink: the log holds hosts, paths and collections.
        descriptor = open_no_follow(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        file = os.fdopen(descriptor, "a", encoding="utf-8")  # lives with the process
    processors: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_processor,
        render_both,
    ]
    min_level = min(console_min, file_min) if file is not None else console_min
    return structlog.wrap_logger(
        _TeeLogger(stream, file),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        cache_logger_on_first_use=False,
    )
