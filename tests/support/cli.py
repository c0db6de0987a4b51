"""Run the CLI in-process and capture what a user would see."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from migrator.cli import main
from migrator.context import Environment


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


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
