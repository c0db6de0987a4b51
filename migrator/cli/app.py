"""The typer app: global options, the command groups, and `main`, which maps errors to exit codes.

Only typer and the light modules are imported here: `--help` is the first thing every
user runs and must not pay for pymilvus, grpc or pandas (verbs import them lazily).
"""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from migrator import __version__
from migrator.cli import backup as backup_commands
from migrator.cli import config as config_commands
from migrator.cli import inspect as inspect_commands
from migrator.cli import migrate as migrate_commands
from migrator.cli import playbook as playbook_commands
from migrator.cli import rehearse as rehearse_commands
from migrator.cli import sandbox as sandbox_commands
from migrator.cli import writes as writes_commands
from migrator.cli.progress import progress_for
from migrator.context import Environment
from migrator.errors import ExitCode, MigrateError
from migrator.util.printable import one_line, printable
from migrator.util.redact import forget_secrets, redact_text

PROG_NAME = "milvus-migrate"


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class LogFormat(str, Enum):
    console = "console"
    json = "json"


app = typer.Typer(
    name=PROG_NAME,
    help="Migrate a Milvus standalone message queue between RocksMQ and NATS, safely.\n\n"
         "Global options (--output, --log-format, --log-file, --verbose) go before or after the command.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG_NAME} {__version__}")
        raise typer.Exit(0)


@app.callback()
def global_options(
    ctx: typer.Context,
    output: OutputFormat = typer.Option(OutputFormat.text, "--output", "-o",
                                        help="Result on stdout: text, or one JSON document (failures too)."),
    log_format: LogFormat = typer.Option(LogFormat.console, "--log-format",
                                         help="stderr: console lines, or JSON lines only."),
    log_file: Path | None = typer.Option(None, "--log-file", help="Also append JSON log lines to this file."),
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
        env.progress = progress_for(env)
    ctx.obj = env


migrate_commands.register(app)
writes_commands.register(app)
config_commands.register(app)
sandbox_commands.register(app)
inspect_commands.register(app)
backup_commands.register(app)
playbook_commands.register(app)
rehearse_commands.register(app)

# The root options a user may also give after the command (`apply PLAN --output json`).
GLOBAL_OPTIONS = ("output", "log_format", "log_file", "verbose")

# Commands that change nothing: an error they meet can never leave anything to roll back.
READ_ONLY = frozenset({
    ("plan",), ("status",), ("verify",), ("config", "show"), ("config", "diff"), ("inspect", "rocksmq"),
    ("playbook", "check"), ("sandbox", "status"), ("backup", "verify"),
})


def hoist_global_options(root: Any, argv: Sequence[str]) -> tuple[list[str], tuple[str, ...]]:
    """Move the global options found after a command to the front, where click reads them, and
    say which command the arguments name. A command's own option of the same spelling (and the
    value of any of its options) is left where it is."""
    global_takes_value = {opt: not param.is_flag for param in root.params if param.name in GLOBAL_OPTIONS
                          for opt in (*param.opts, *param.secondary_opts)}
    hoisted: list[str] = []
    kept: list[str] = []
    path: list[str] = []
    node = root
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            kept += argv[index:]
            break
        subcommand = getattr(node, "commands", {}).get(token)
        if subcommand is not None:
            node = subcommand
            path.append(token)
            kept.append(token)
            index += 1
            continue
        name, has_value = token.split("=", 1)[0], "=" in token
        own = {opt: not (param.is_flag or param.count) for param in node.params if param.param_type_name == "option"
               for opt in (*param.opts, *param.secondary_opts)}
        width = 1
        if name in own:
            width = 1 if has_value or not own[name] else 2
        elif node is not root and name in global_takes_value:
            width = 1 if has_value or not global_takes_value[name] else 2
            hoisted += argv[index:index + width]
            index += width
            continue
        kept += argv[index:index + width]
        index += width
    return hoisted + kept, tuple(path)


def _preset_formats(env: Environment, args: Sequence[str]) -> None:
    """Read --output and --log-format before click does, so that a usage error is reported in
    the format asked for (click stops before the global options' callback on such an error)."""
    names = {"--output": "output", "-o": "output", "--log-format": "log_format"}
    for index, token in enumerate(args):
        if token == "--":
            return
        name, _, value = token.partition("=")
        if name in names:
            value = value or (args[index + 1] if index + 1 < len(args) else "")
            if value in ("text", "json", "console"):
                setattr(env, names[name], value)


@dataclass
class Failure:
    """What the operator is told when a command fails, whatever raised it."""

    exit_code: int
    message: str
    hint: str | None = None
    report: dict[str, Any] | None = None
    usage: Any = None  # a click usage error: shown as click shows it, with the usage line
    traceback: str | None = None

    @property
    def report_path(self) -> str | None:
        files = (self.report or {}).get("report_files") or []
        return files[0] if files else None


def main(argv: Sequence[str] | None = None, environment: Environment | None = None) -> int:
    """Entry point: run the CLI and translate every error into a message, a hint and an exit code."""
    env = environment or Environment()
    forget_secrets()  # each command knows the secrets of its own playbook and flags
    command = typer.main.get_command(app)
    args, path = hoist_global_options(command, list(argv) if argv is not None else sys.argv[1:])
    _preset_formats(env, args)
    failure: Failure | None = None
    previous_sigterm = _sigterm_as_interrupt()
    try:
        result = command.main(args=args, prog_name=PROG_NAME, standalone_mode=False, obj=env)
        code = int(result) if isinstance(result, int) else int(ExitCode.OK)
        if code == ExitCode.INTERRUPTED:  # typer turns a Ctrl-C outside a step into exit 130
            failure = Failure(code, "interrupted")
        elif code != ExitCode.OK:
            failure = Failure(code, f"exit {code}")
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - every error leaves through one door
        failure = as_failure(error, read_only=path in READ_ONLY, verbose=env.verbose)
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    if env.progress is not None:
        env.progress.close()  # a live line left by an interrupted step: the cursor comes back
    tell(env, failure)
    return failure.exit_code if failure is not None else int(ExitCode.OK)


def _sigterm_as_interrupt() -> Any:
    """SIGTERM takes Ctrl-C's path in every command (apply's engine does the same for its steps):
    cleanups run (a restore undoes its renames) and the exit is 130 with a message, instead of a
    silent death mid-write. Returns the previous handler, None when not on the main thread."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding program): leave its signals alone
        return None


def as_failure(error: BaseException, *, read_only: bool, verbose: bool) -> Failure:
    """The one translation of an error into what the operator is told and the exit code."""
    trace = redact_text(traceback.format_exc()) if verbose else None
    if isinstance(error, (typer.Abort, KeyboardInterrupt)):
        return Failure(int(ExitCode.INTERRUPTED), "interrupted", traceback=trace)
    if isinstance(error, typer.TyperException):  # click usage errors: bad flag, missing argument
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        return Failure(int(ExitCode.BAD_INPUT), message, usage=error)
    message = error.message if isinstance(error, MigrateError) else f"unexpected error: {type(error).__name__}: {error}"
    if read_only:
        # A read-only command changed nothing: what it could not reach refuses it (3), never 4.
        from migrator.verbs.deployment import cannot_reach

        unreachable = cannot_reach(error)
        if unreachable is not None:
            return Failure(int(ExitCode.REFUSED), message, hint=f"{unreachable}; nothing was changed", traceback=trace)
        if not isinstance(error, MigrateError):
            return Failure(int(ExitCode.REFUSED), message, hint="nothing was changed; --verbose shows the traceback",
                           traceback=trace)
    if isinstance(error, MigrateError):
        return Failure(int(error.exit_code), message, hint=error.hint, report=error.report, traceback=trace)
    return Failure(int(ExitCode.NOT_ROLLED_BACK), message,
                   hint="`milvus-migrate status` says where the deployment stands; --verbose shows the traceback",
                   traceback=trace)


def tell(env: Environment, failure: Failure | None) -> None:
    """The end of every command: one JSON document on stdout with --output json; on stderr the
    error, its hint and where the report is (as JSON lines with --log-format json)."""
    from migrator.cli.render import render_failure, result_document

    if env.json_output and (failure is not None or env.result is not None):
        data = dict(env.result or {})
        if failure is not None and failure.report is not None:
            data = {**failure.report, **data}
        env.stdout.write(result_document(data, failure) + "\n")
        env.stdout.flush()
    if failure is None:
        return
    # An error and its hint are one line each, whatever they quote (a lock holder, a file name).
    from migrator.verbs.deployment import runnable

    message = one_line(redact_text(failure.message))
    hint = one_line(redact_text(runnable(failure.hint, env.playbook))) if failure.hint else None
    if env.log_format == "json":
        fields: dict[str, Any] = {"error": message, "exit_code": failure.exit_code, "hint": hint,
                                  "report": failure.report_path}
        if failure.traceback:
            fields["traceback"] = failure.traceback
        env.log.error("command.failed", **fields)
        return
    if failure.report is not None and not env.json_output:
        from migrator.cli.render import render_report

        env.stdout.write(printable(render_report(failure.report)) + "\n")
        env.stdout.flush()
    if failure.traceback:
        env.stderr.write(printable(failure.traceback))
    if failure.usage is not None and hasattr(failure.usage, "show"):
        failure.usage.show(file=env.stderr)
    elif failure.exit_code == ExitCode.INTERRUPTED and failure.message == "interrupted":
        env.stderr.write("interrupted\n")
    else:
        env.stderr.write(render_failure(message, hint, failure.report_path) + "\n")
    env.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
