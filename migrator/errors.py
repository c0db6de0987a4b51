"""The error tree and the exit codes: raised deep down, translated once in cli.main."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Documented process exit codes (README.md, docs/runbook.md "Exit codes")."""

    OK = 0  # done, or nothing to do
    ROLLED_BACK = 1  # failed and rolled back
    BAD_INPUT = 2  # usage, playbook, config
    REFUSED = 3  # refused by preflight or by the environment
    NOT_ROLLED_BACK = 4  # failed and NOT rolled back: the journal says what to do
    INTERRUPTED = 130  # Ctrl-C / SIGTERM, journal saved


class MigrateError(Exception):
    """Base of every error the tool reports to the operator.

    `message` is one line for the operator and must never hold a secret;
    `hint` optionally says what to do next; `report` is the report of the run that failed
    (its `report_files` included), when one was written, so the CLI can say where it is.
    """

    exit_code: ExitCode = ExitCode.NOT_ROLLED_BACK

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.report: dict[str, Any] | None = None


class BadInput(MigrateError):
    """A flag, file, key or value given by the operator is wrong. Nothing was changed."""

    exit_code = ExitCode.BAD_INPUT


class Refused(MigrateError):
    """The environment refuses the operation (preflight, lock, stale plan, taken port)."""

    exit_code = ExitCode.REFUSED


class CannotWrite(Refused):
    """A file the tool writes could not be written (a full, read-only or broken disk). Before a
    run begins nothing was changed (3); once it has, apply says so itself (verbs/apply.py)."""


class Damaged(Refused):
    """A backup failed its check against its manifest: what would act on it refuses (3); `backup
    verify`, whose answer it is, says so as a failed check (4)."""


class RolledBack(MigrateError):
    """The operation failed and the deployment was returned to where it started."""

    exit_code = ExitCode.ROLLED_BACK


class NotRolledBack(MigrateError):
    """The operation failed and was left as is; the journal says what to run."""

    exit_code = ExitCode.NOT_ROLLED_BACK


class Interrupted(MigrateError):
    """Ctrl-C or SIGTERM: the journal is saved; `apply --resume` continues."""

    exit_code = ExitCode.INTERRUPTED


class RehearsalFailed(MigrateError):
    """`rehearse`: the migration of the throwaway copy failed. Production was only read."""

    exit_code = ExitCode.ROLLED_BACK
