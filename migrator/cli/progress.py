"""What the operator sees of a running migration, on stderr (stdout stays the result).

On a terminal, a live line for the running step (its elapsed time, and for how long writes have
been denied), and a line per step once it ends; plain lines when stderr is not a terminal or
TERM=dumb; nothing with --log-format json, where the engine's step.start/step.end events say it.
NO_COLOR turns colours off. The engine calls `start` and `end` (migration/engine.py Progress);
`follow` gives the display the run's journal, whose marks say when writes were denied.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TextIO

from migrator.context import Environment
from migrator.util.printable import one_line
from migrator.util.redact import redact_text

if TYPE_CHECKING:
    from migrator.migration.journal import Journal



def progress_for(env: Environment) -> LineProgress | LiveProgress | None:
    if env.log_format == "json":
        return None
    if env.dumb_terminal:
        return LineProgress(env.stderr)
    return LiveProgress(env.stderr, colour=env.colour)


def writes_denied_for(journal: Journal | None, now: float | None = None) -> float | None:
    """Seconds since the run cut clients off, while they still are (migration/budget.py); None when
    they are not."""
    from migrator.migration.budget import clients_cut_off_for

    return None if journal is None else clients_cut_off_for(journal.marks, now)


class LineProgress:
    """A line when a step starts and one when it ends."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._journal: Journal | None = None

    def follow(self, journal: Journal) -> None:
        self._journal = journal

    def start(self, number: int, total: int, step: Any) -> None:
        self._stream.write(f"[{number}/{total}] {one_line(step.id)}: {one_line(step.description)} ...\n")
        self._stream.flush()

    def end(self, step: Any, summary: str, seconds: float) -> None:
        denied = writes_denied_for(self._journal)
        since = "" if denied is None else f"; writes denied for {denied:.0f} s"
        self._stream.write(f"    {one_line(redact_text(summary))} ({seconds:.1f} s{since})\n")
        self._stream.flush()

    def close(self) -> None:
        """Nothing to undo on a plain stream."""


class LiveProgress:
    """rich's Live display, one per step: the running step's line is redrawn four times a second
    and replaced by a permanent line when the step ends."""

    def __init__(self, stream: TextIO, *, colour: bool) -> None:
        self._stream = stream
        self._colour = colour
        self._console: Any = None
        self._live: Any = None
        self._journal: Journal | None = None
        self._spinner: Any = None
        self._step: Any = None
        self._position = ""
        self._started = 0.0

    def follow(self, journal: Journal) -> None:
        self._journal = journal

    def _get_console(self) -> Any:
        if self._console is None:  # rich costs an import only once a step runs
            from rich.console import Console

            self._console = Console(file=self._stream, force_terminal=True, no_color=not self._colour,
                                    highlight=False, emoji=False)
        return self._console

    def start(self, number: int, total: int, step: Any) -> None:
        from rich.live import Live
        from rich.spinner import Spinner

        self.close()
        self._step, self._position, self._started = step, f"[{number}/{total}]", time.monotonic()
        self._spinner = Spinner("dots", style="cyan")
        self._live = Live(self, console=self._get_console(), refresh_per_second=4, transient=True)
        self._live.start()

    def __rich__(self) -> Any:
        """The running step's line, rendered at each refresh."""
        from rich.table import Table
        from rich.text import Text

        line = Table.grid(padding=(0, 1))
        line.add_row(self._spinner,
                     Text(f"{self._position} {one_line(self._step.id)}: {one_line(self._step.description)}"),
                     Text(f"{time.monotonic() - self._started:.1f} s", style="bold"), self._denied_text())
        return line

    def _denied_text(self) -> Any:
        from rich.text import Text

        denied = writes_denied_for(self._journal)
        return Text("" if denied is None else f"writes denied for {denied:.0f} s", style="yellow")

    def end(self, step: Any, summary: str, seconds: float) -> None:
        from rich.text import Text

        self.close()
        failed = summary.startswith("FAILED")
        line = Text(f"{'x' if failed else '+'} {self._position} {one_line(step.id)}: ",
                    style="red" if failed else "green")
        line.append(f"{one_line(redact_text(summary))} ({seconds:.1f} s)", style="red" if failed else "")
        denied = self._denied_text()
        if denied:
            line.append("  ").append_text(denied)
        self._get_console().print(line)

    def above(self, text: str) -> bool:
        """Print `text` (a log line, ANSI colours kept) above the live line; False when none is shown."""
        if self._live is None:
            return False
        from rich.text import Text

        self._live.console.print(Text.from_ansi(text.rstrip("\n")))
        return True

    def close(self) -> None:
        """Stop the live line (a step interrupted by Ctrl-C never ends): the cursor comes back."""
        if self._live is not None:
            self._live.stop()
            self._live = None
