"""The journal: where a migration stands, written atomically right after every step.

One JSON file per deployment (`<state_dir>/journal.json`), schema-versioned like dbt's
run_results.json. Written with temp file + fsync + rename, so a kill -9 at any instant leaves
either the previous or the next state, never half of one.

The journal is data the tool checks, never instructions it follows (decision 0015): loading
validates every field against the typed model below (a wrong type is BadInput naming the file and
the field), and `run_id` has one strict shape, so no path built from it leaves its directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from migrator.errors import BadInput, Refused
from migrator.migration.configstates import RecordedConfigStates
from migrator.util.files import MIB, open_no_follow, read_bounded, write_bytes_atomic
from migrator.util.redact import redact
from migrator.util.strenum import StrEnum

SCHEMA_VERSION = 1
JOURNAL_LIMIT = 64 * MIB  # a journal holds the plan (snapshot of every collection) and step data
# What new_run_id makes (a UTC second): the only run_id a journal may hold, since reports, the
# config-states dir, moved-aside stores and backups are named after it.
RUN_ID_PATTERN = r"^[0-9]{8}T[0-9]{6}Z$"


class RunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # failed, not rolled back: the operator decides (rollback or resume)
    INTERRUPTED = "interrupted"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"


# A migration still to be finished (resumed or rolled back).
UNFINISHED = (RunStatus.RUNNING, RunStatus.INTERRUPTED, RunStatus.FAILED, RunStatus.ROLLING_BACK)


class Phase(StrEnum):
    """Whether `apply --resume` goes on forward or finishes a rollback."""

    APPLY = "apply"
    ROLLBACK = "rollback"


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def write_json_atomic(path: Path, data: Any) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))


class _Record(BaseModel):
    # Strict: a number written as a string, or a list where a mapping belongs, is damage, not
    # something to coerce. Enums are given by their values in the file (strict=False on them).
    model_config = ConfigDict(strict=True, extra="forbid", validate_assignment=True)


class StepRecord(_Record):
    state: StepState = Field(default=StepState.PENDING, strict=False)
    attempts: int = Field(default=0, ge=0)
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None
    summary: str | None = None
    error: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)  # what the step recorded for a resume


class ClientViewSegment(_Record):
    """What the tool's own client saw during one process of the run (migration/clientview.py)."""

    writes: int = 0
    acknowledged: int = 0
    refused: dict[str, int] = Field(default_factory=dict)
    refused_from: str | None = None
    refused_until: str | None = None
    last_acknowledged_before: str | None = None
    first_acknowledged_after: str | None = None
    seconds_without_an_acknowledged_write: float | None = None


class Marks(_Record):
    """Run-level facts: instants are unix times."""

    clients_off_at: float | None = None  # the first stop cut clients off
    clients_back_at: float | None = None  # a write acknowledged through the public port again
    rollback_started_at: float | None = None
    gate_closed_at: float | None = None  # the firewall gate's rule last installed
    gate_opened_at: float | None = None  # the firewall gate's rule last removed (clients may connect)
    all_readable_at: float | None = None  # every loaded collection answered a search again
    # The firewall gate's rule set (runtime/firewall.py GateRule.to_dict), journaled before it is
    # installed; checked by GateRule.checked before any of it reaches a command.
    gate: dict[str, Any] | None = None
    config_states: RecordedConfigStates | None = None  # migration/configstates.py
    client_view: list[ClientViewSegment] = Field(default_factory=list)


class WriteRecord(_Record):
    """A `writes deny`/`writes allow` made by hand during the run (verbs/writes.py)."""

    action: str
    at: str
    unix: float
    file: str
    changed: bool
    proof: str
    during: RunStatus | None = Field(default=None, strict=False)


class JournalDocument(_Record):
    schema_version: int
    run_id: Annotated[str, StringConstraints(pattern=RUN_ID_PATTERN)]
    status: RunStatus = Field(strict=False)
    phase: Phase | None = Field(default=None, strict=False)
    started_at: str
    ended_at: str | None = None
    plan: dict[str, Any]  # the plan as saved, checked by Plan.from_dict when it is used
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    rollback: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    marks: Marks = Field(default_factory=Marks)
    writes: list[WriteRecord] = Field(default_factory=list)


_JOURNAL_HINT = "move it aside if it is not the journal of this deployment's last migration"


def validation_message(error: ValidationError) -> str:
    """The first problem of a pydantic validation, as `field.path: what is wrong`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


class Journal:
    """The journal.json of a deployment; every mutation is saved before it returns."""

    def __init__(self, path: Path, document: JournalDocument) -> None:
        self.path = path
        self.document = document

    @classmethod
    def create(cls, path: Path, *, run_id: str, plan: dict[str, Any], dry_run: bool = False) -> Journal:
        try:
            document = JournalDocument(schema_version=SCHEMA_VERSION, run_id=run_id, status=RunStatus.RUNNING,
                                       started_at=_now(), plan=plan)
        except ValidationError as error:
            raise BadInput(f"{path}: {validation_message(error)}") from None
        journal = cls(path, document)
        journal.dry_run = dry_run
        journal.save()
        return journal

    @classmethod
    def scratch_of(cls, journal: Journal) -> Journal:
        """A journal never saved, holding `journal`'s plan and steps: checks run outside a migration
        (verbs/verify.py) keep their scratch facts in it."""
        scratch = cls.create(journal.path, run_id=new_run_id(), plan=journal.plan, dry_run=True)
        scratch.document.steps = {key: entry.model_copy(deep=True) for key, entry in journal.steps.items()}
        return scratch

    @classmethod
    def load(cls, path: Path) -> Journal | None:
        if not os.path.lexists(path):
            return None
        raw = read_bounded(path, JOURNAL_LIMIT, what="journal")
        return cls(path, parse_document(raw, where=str(path)))

    # A dry run keeps its journal in memory only: it must change nothing on disk.
    dry_run = False

    def save(self) -> None:
        if not self.dry_run:
            # Step errors and summaries quote Milvus and runtime messages: redacted like any output.
            write_json_atomic(self.path,
                              redact(self.document.model_dump(mode="json", by_alias=True, exclude_none=True)))

    # -- what the run is ------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.document.run_id

    @property
    def status(self) -> RunStatus:
        return self.document.status

    @property
    def phase(self) -> Phase | None:
        return self.document.phase

    @property
    def plan(self) -> dict[str, Any]:
        """The plan as saved (verbs/deployment.py:recorded_plan checks it)."""
        return self.document.plan

    @property
    def started_at(self) -> str:
        return self.document.started_at

    @property
    def ended_at(self) -> str | None:
        return self.document.ended_at

    @property
    def error(self) -> str | None:
        return self.document.error

    @property
    def steps(self) -> dict[str, StepRecord]:
        return self.document.steps

    @property
    def marks(self) -> Marks:
        return self.document.marks

    @property
    def writes(self) -> list[WriteRecord]:
        return self.document.writes

    # -- changes, each saved ----------------------------------------------------------------------

    def set_status(self, status: RunStatus, error: str | None = None, *, phase: Phase | None = None) -> None:
        self.document.status = status
        if phase is not None:
            self.document.phase = phase
        if error is not None:
            self.document.error = error
        if status in (RunStatus.DONE, RunStatus.ROLLED_BACK, RunStatus.FAILED, RunStatus.INTERRUPTED):
            self.document.ended_at = _now()
        self.save()

    def step(self, step_id: str) -> StepRecord:
        return self.document.steps.setdefault(step_id, StepRecord())

    def is_done(self, step_id: str) -> bool:
        entry = self.document.steps.get(step_id)
        return entry is not None and entry.state == StepState.DONE

    def started(self, step_id: str) -> bool:
        return step_id in self.document.steps

    def begin(self, step_id: str) -> None:
        entry = self.step(step_id)
        entry.state, entry.started_at = StepState.RUNNING, _now()
        entry.attempts += 1
        self.save()

    def remember(self, step_id: str, **values: Any) -> None:
        """Record facts a step needs on resume (e.g. the original forceDeny) BEFORE acting on them."""
        self.step(step_id).data.update(values)
        self.save()

    def recall(self, step_id: str, key: str, default: Any = None) -> Any:
        entry = self.document.steps.get(step_id)
        return default if entry is None else entry.data.get(key, default)

    def finish(self, step_id: str, seconds: float, summary: str | None = None) -> None:
        entry = self.step(step_id)
        entry.state, entry.ended_at, entry.seconds = StepState.DONE, _now(), round(seconds, 3)
        if summary:
            entry.summary = summary
        self.save()

    def fail(self, step_id: str, seconds: float, error: str, state: StepState = StepState.FAILED) -> None:
        entry = self.step(step_id)
        entry.state, entry.ended_at, entry.seconds, entry.error = state, _now(), round(seconds, 3), error
        self.save()

    def mark(self, name: str, value: Any) -> None:
        """Set one of the run-level facts (Marks); a wrong name or type is a bug, raised here."""
        setattr(self.document.marks, name, value)
        self.save()

    def add_client_view(self, seen: dict[str, Any]) -> None:
        """What the tool's own client saw in this process of the run, beside the earlier ones."""
        self.document.marks.client_view.append(ClientViewSegment.model_validate(seen))
        self.save()

    def add_write(self, entry: dict[str, Any]) -> None:
        self.document.writes.append(WriteRecord.model_validate(entry, strict=False))
        self.save()


def parse_document(raw: bytes, *, where: str) -> JournalDocument:
    """A journal's bytes -> its document; BadInput naming `where` and the field for anything else."""
    from pydantic_core import from_json

    try:
        # pydantic's own parser: its depth limit answers a JSON nested 100k deep with an error,
        # where json.loads would raise RecursionError.
        data = from_json(raw)
    except ValueError as error:
        raise BadInput(f"{where}: unreadable journal ({error})", hint=_JOURNAL_HINT) from None
    if not isinstance(data, dict):
        raise BadInput(f"{where}: not a milvus-migrate journal: a JSON {type(data).__name__}, not an object",
                       hint=_JOURNAL_HINT)
    if data.get("schema_version") != SCHEMA_VERSION:
        raise BadInput(f"{where}: not a milvus-migrate journal: schema {data.get('schema_version')!r} is not "
                       f"{SCHEMA_VERSION} (written by another version of milvus-migrate?)", hint=_JOURNAL_HINT)
    try:
        return JournalDocument.model_validate(data)
    except ValidationError as error:
        raise BadInput(f"{where}: not a milvus-migrate journal: {validation_message(error)}",
                       hint=_JOURNAL_HINT) from None


class DeploymentLock:
    """One apply/rollback per deployment at a time: an flock on `<state_dir>/lock`.

    The kernel drops an flock when its holder dies (kill -9 included), so a stale lock never
    blocks a resume; the file's content only names the holder for the refusal message.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None

    def acquire(self) -> None:
        # The lock file is opened without following a link (a planted symlink would make root
        # truncate its target) and created 0600.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise Refused(f"cannot create {self.path.parent}: {error.strerror or error}") from None
        handle = os.fdopen(open_no_follow(self.path, os.O_RDWR | os.O_CREAT), "r+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            handle.seek(0)
            holder = handle.read(400).strip() or "unknown process"
            handle.close()
            raise Refused(f"another migration holds {self.path}: {holder}",
                          hint="wait for it, or check `milvus-migrate status`") from error
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {_now()}\n")
            handle.flush()
        except OSError as error:
            handle.close()
            raise Refused(f"cannot write {self.path}: {error.strerror or error}") from None
        self._handle = handle

    def held_by_other(self) -> str | None:
        """The holder's description when another process holds the lock, else None (read-only check)."""
        if not os.path.lexists(self.path):
            return None
        with os.fdopen(open_no_follow(self.path, os.O_RDONLY), encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return handle.read(400).strip() or "unknown process"
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> DeploymentLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
