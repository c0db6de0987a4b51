"""The progress display: live on a terminal (elapsed time, writes denied for N s), plain lines
when piped or TERM=dumb, no colour under NO_COLOR, nothing but JSON with --log-format json."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from migrator.cli import main
from migrator.cli.progress import LineProgress, LiveProgress
from migrator.context import Environment
from migrator.migration.engine import run_steps
from migrator.migration.journal import Journal
from migrator.migration.steps.base import RunContext, Step
from tests.support.config import fixture_dir
from tests.support.sandbox import quiet_env

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_COLOUR = re.compile(r"\x1b\[[0-9;]*3[0-7]m")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def journal_denied_since(tmp_path: Path, seconds_ago: float) -> Journal:
    journal = Journal.create(tmp_path / "journal.json", run_id="20261130T000000Z", plan={})
    journal.mark("clients_off_at", time.time() - seconds_ago)
    return journal


def step(step_id: str) -> Step:
    return Step(step_id, f"what {step_id} does", lambda ctx: f"{step_id} done")


class Clock:
    """time.time and time.monotonic, standing still until moved on."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_live_line_shows_elapsed_time_and_how_long_writes_are_denied(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    monkeypatch.setattr(time, "monotonic", clock)
    screen = Terminal()
    display = LiveProgress(screen, colour=True)
    display.follow(journal_denied_since(tmp_path, 42))
    display.start(3, 12, step("flush-all"))
    clock.now += 1.3
    display.end(step("flush-all"), "FlushAll done", 1.3)  # the live line is drawn once more as it stops
    plain = _ANSI.sub("", screen.getvalue())
    assert "[3/12] flush-all: what flush-all does" in plain
    assert re.search(r"flush-all does\s+1\.3 s\s+writes denied for 43 s", plain), plain
    assert "+ [3/12] flush-all: FlushAll done (1.3 s)  writes denied for 43 s" in plain
    assert _COLOUR.search(screen.getvalue())  # green tick line, yellow deny


def test_no_color_keeps_the_live_line_without_colours(tmp_path: Path) -> None:
    screen = Terminal()
    display = LiveProgress(screen, colour=False)
    display.start(1, 2, step("deny-writes"))
    display.end(step("deny-writes"), "FAILED: probe accepted", 0.4)
    assert "x [1/2] deny-writes: FAILED: probe accepted (0.4 s)" in _ANSI.sub("", screen.getvalue())
    assert not _COLOUR.search(screen.getvalue())


def test_an_interrupted_step_gives_the_cursor_back(tmp_path: Path) -> None:
    screen = Terminal()
    display = LiveProgress(screen, colour=True)
    display.start(1, 2, step("stop"))
    display.close()  # what the CLI does on its way out after Ctrl-C
    assert screen.getvalue().endswith("\x1b[?25h") or "\x1b[?25h" in screen.getvalue().rsplit("\x1b[?25l", 1)[1]


def test_plain_lines_say_how_long_writes_were_denied_until_allowed(tmp_path: Path) -> None:
    stream = io.StringIO()
    journal = journal_denied_since(tmp_path, 10)
    display = LineProgress(stream)
    display.follow(journal)
    display.start(1, 2, step("verify"))
    display.end(step("verify"), "counts equal", 2.0)
    journal.mark("clients_back_at", time.time())
    display.end(step("allow-writes"), "writes allowed", 1.0)
    assert stream.getvalue() == ("[1/2] verify: what verify does ...\n    counts equal (2.0 s; writes denied for 10 s)\n"
                                 "    writes allowed (1.0 s)\n")


def test_the_engine_drives_the_live_display(tmp_path: Path) -> None:
    screen = Terminal()
    display = LiveProgress(screen, colour=False)
    journal = Journal.create(tmp_path / "journal.json", run_id="20261130T000000Z", plan={})
    display.follow(journal)
    ctx = RunContext(env=quiet_env(), playbook=SimpleNamespace(), plan=SimpleNamespace(), journal=journal,
                     runtime=SimpleNamespace(), milvus_environ={})
    run_steps(ctx, [step("preflight"), step("snapshot")], rollback=lambda c: [], progress=display)
    plain = _ANSI.sub("", screen.getvalue())
    assert "+ [1/2] preflight: preflight done" in plain and "+ [2/2] snapshot: snapshot done" in plain


@pytest.mark.parametrize("stderr, environ, args, expected", [
    (Terminal, {"TERM": "xterm"}, [], LiveProgress),
    (Terminal, {"TERM": "xterm", "NO_COLOR": "1"}, [], LiveProgress),
    (Terminal, {"TERM": "dumb"}, [], LineProgress),
    (io.StringIO, {"TERM": "xterm"}, [], LineProgress),
    (Terminal, {"TERM": "xterm"}, ["--log-format", "json"], type(None)),
])
def test_the_cli_picks_the_display_for_its_stderr(stderr: type, environ: dict, args: list, expected: type) -> None:
    env = Environment(stdout=io.StringIO(), stderr=stderr(), stdin=None, environ=environ)
    code = main(["config", "show", "--config-dir", str(fixture_dir("v2.3-single")), *args], environment=env)
    assert code == 0, env.stderr.getvalue()
    assert type(env.progress) is expected
    if expected is LiveProgress:
        assert env.progress._colour is not ("NO_COLOR" in environ)


def test_the_cli_closes_the_display_on_its_way_out() -> None:
    closed = []
    env = Environment(stdout=io.StringIO(), stderr=Terminal(), stdin=None, environ={"TERM": "xterm"},
                      progress=SimpleNamespace(close=lambda: closed.append(True)))
    assert main(["config", "show", "--config-dir", "/nonexistent"], environment=env) == 2
    assert closed == [True]
