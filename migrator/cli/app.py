"""The typer app: global options, the command groups, and `main`, which maps errors to exit codes.

Only typer and the light modules are imported here: `--help` is the first thing every
user runs and must not pay for pymilvus, grpc or pandas (verbs import them lazily).
"""

from __future__ import annotations

import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Optional, Sequence

import typer

from migrator import __version__
from migrator.cli import backup as backup_commands
from migrator.cli import config as config_commands
from migrator.cli import inspect as inspect_commands
from migrator.cli import migrate as migrate_commands
from migrator.cli import playbook as playbook_commands
from migrator.cli import sandbox as sandbox_commands
from migrator.cli.progress import LineProgress
from migrator.context import Environment
from migrator.errors import ExitCode, MigrateError
from migrator.util.redact import redact_text


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class LogFormat(str, Enum):
    console = "console"
    json = "json"


app = typer.Typer(
    name="milvus-migrate",
    help="Migrate a Milvus standalone message queue between RocksMQ and NATS, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"milvus-migrate {__version__}")
        raise typer.Exit(0)


@app.callback()
def global_options(
    ctx: typer.Context,
    output: OutputFormat = typer.Option(OutputFormat.text, "--output", "-o", help="Result format on stdout."),
    log_format: LogFormat = typer.Option(LogFormat.console, "--log-format", help="Structured log format on stderr."),
    log_file: Optional[Path] = typer.Option(None, "--log-file", help="Also append JSON log lines to this file."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs and tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
) -> None:
    env: Environment = ctx.obj if isinstance(ctx.obj, Environment) else Environment()
    env.output = output.value
    env.log_format = log_format.value
    env.log_file = log_file
    env.verbose = verbose
    if env.progress is None:
        env.progress = LineProgress(env.stderr)
    ctx.obj = env


migrate_commands.register(app)
config_commands.register(app)
sandbox_commands.register(app)
inspect_commands.register(app)
backup_commands.register(app)
playbook_commands.register(app)


def main(argv: Sequence[str] | None = None, environment: Environment | None = None) -> int:
    """Entry point: run the CLI and translate every error into a message and an exit code."""
    env = environment or Environment()
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(argv) if argv is not None else sys.argv[1:],
            prog_name="milvus-migrate",
            standalone_mode=False,
            obj=env,
        )
        return int(result) if isinstance(result, int) else ExitCode.OK
    except MigrateError as error:
        if env.verbose:
            env.stderr.write(traceback.format_exc())
        env.stderr.write(f"error: {redact_text(error.message)}\n")
        if error.hint:
            env.stderr.write(f"hint: {error.hint}\n")
        return int(error.exit_code)
    except typer.Abort:
        env.stderr.write("interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except typer.TyperException as error:  # click usage errors: bad flag, missing argument
        show = getattr(error, "show", None)
        if show is not None:
            show(file=env.stderr)
        else:
            env.stderr.write(f"error: {error}\n")
        return int(ExitCode.BAD_INPUT)
    except KeyboardInterrupt:
        env.stderr.write("interrupted\n")
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
