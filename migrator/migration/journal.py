"""The journal: where a migration stands, written atomically right after every step.

One JSON file per deployment (`<state_dir>/journal.json`), schema-versioned like dbt's
run_results.json. Written with temp file + fsync + rename, so a kill -9 at any instant leaves
either the previous or the next state, never half of one.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from migrator.errors import BadInput, Refused
from migrator.util.files import MIB, open_no_follow, read_bounded, write_bytes_atomic
from migrator.util.redact import redact

SCHEMA_VERSION = 1
JOURNAL_LIMIT = 64 * MIB  # a journal holds the plan (snapshot of every collection) and step data

# Journal statuses
RUNNING = "running"
DONE = "done"
FAILED = "failed"  # failed, not rolled back: the operator decides (rollback or resume)
INTERRUPTED = "interrupted"
ROLLING_BACK = "rolling-back"
ROLLED_BACK = "rolled-back"
STATUSES = (RUNNING, DONE, FAILED, INTERRUPTED, ROLLING_BACK, ROLLED_BACK)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def write_json_atomic(path: Path, data: Any) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))


class Journal:
    """In-memory view of journal.json; every mutation is saved before it returns."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def create(cls, path: Path, *, run_id: str, plan: dict[str, Any], dry_run: bool = False) -> "Journal":
        journal = cls(path, {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "status": RUNNING,
            "started_at": _now(),
            "ended_at": None,
            "plan": plan,
            "steps": {},
            "rollback": {},
            "error": None,
        })
        journal.dry_run = dry_run
        journal.save()
        return journal

    @classmethod
    def load(cls, path: Path) -> "Journal | None":
        if not os.path.lexists(path):
            return None
        raw = read_bounded(path, JOURNAL_LIMIT, what="journal")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise BadInput(f"{path}: unreadable journal ({error})", hint=_JOURNAL_HINT) from error
        problem = _shape_problem(data)
        if problem:
            raise BadInput(f"{path}: not a milvus-migrate journal: {problem}", hint=_JOURNAL_HINT)
        return cls(path, data)

    # A dry run keeps its journal in memory only: it must change nothing on disk.
    dry_run = False

    def save(self) -> None:
        if not self.dry_run:
            # Step errors and summaries quote Milvus and runtime messages: redacted like any output.
            write_json_atomic(self.path, redact(self.data))

    @property
    def status(self) -> str:
        return self.data["status"]

    def set_status(self, status: str, error: str | None = None) -> None:
        self.data["status"] = status
        if error is not None:
            self.data["error"] = error
        if status in (DONE, ROLLED_BACK, FAILED, INTERRUPTED):
            self.data["ended_at"] = _now()
        self.save()

    def step(self, step_id: str) -> dict[str, Any]:
        return self.data["steps"].setdefault(step_id, {"state": "pending", "data": {}})

    def is_done(self, step_id: str) -> bool:
        return self.data["steps"].get(step_id, {}).get("state") == DONE

    def started(self, step_id: str) -> bool:
        return step_id in self.data["steps"]

    def begin(self, step_id: str) -> None:
        entry = self.step(step_id)
        entry.update(state=RUNNING, started_at=_now())
        entry.setdefault("attempts", 0)
        entry["attempts"] += 1
        self.save()

    def remember(self, step_id: str, **values: Any) -> None:
        """Record facts a step needs on resume (e.g. the original forceDeny) BEFORE acting on them."""
        self.step(step_id)["data"].update(values)
        self.save()

    def recall(self, step_id: str, key: str, default: Any = None) -> Any:
        return self.data["steps"].get(step_id, {}).get("data", {}).get(key, default)

    def finish(self, step_id: str, seconds: float, summary: str | None = None) -> None:
        entry = self.step(step_id)
        entry.update(state=DONE, ended_at=_now(), seconds=round(seconds, 3))
        if summary:
            entry["summary"] = summary
        self.save()

    def fail(self, step_id: str, seconds: float, error: str, state: str = FAILED) -> None:
        entry = self.step(step_id)
        entry.update(state=state, ended_at=_now(), seconds=round(seconds, 3), error=error)
        self.save()

    def mark(self, key: str, value: Any) -> None:
        """Run-level facts (write-deny and allow instants)."""
        self.data.setdefault("marks", {})[key] = value
        self.save()


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

    def __enter__(self) -> "DeploymentLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()



_JOURNAL_HINT = "move it aside if it is not the journal of this deployment's last migration"


def _shape_problem(data: Any) -> str | None:
    """What makes `data` not a journal this version wrote (None when it is one): the fields every
    reader of the journal relies on, with their types."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    if data.get("schema_version") != SCHEMA_VERSION:
        return f"schema {data.get('schema_version')!r} is not {SCHEMA_VERSION}"
    expected = {"run_id": str, "status": str, "started_at": str, "plan": dict, "steps": dict, "rollback": dict}
    for key, kind in expected.items():
        if not isinstance(data.get(key), kind):
            return f"{key} must be a {'mapping' if kind is dict else 'string'}"
    if data["status"] not in STATUSES:
        return f"status {data['status']!r} is not one of {', '.join(STATUSES)}"
    for optional, kinds in (("error", (str, type(None))), ("ended_at", (str, type(None))), ("marks", dict),
                            ("phase", str)):
        if optional in data and not isinstance(data[optional], kinds):
            return f"{optional} has the wrong type"
    for step_id, entry in data["steps"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("state", ""), str) \
                or not isinstance(entry.get("data", {}), dict):
            return f"steps.{step_id} must be a mapping with a state and a data mapping"
    for name, value in data.get("marks", {}).items():
        problem = _mark_problem(name, value)
        if problem:
            return f"marks.{name} {problem}"
    return None


def _mark_problem(name: str, value: Any) -> str | None:
    """Instants (`*_at`) are unix times; the config states and the client view have their shapes."""
    if name.endswith("_at"):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "must be a number"
    if name == "config_states":
        if not (isinstance(value, dict) and isinstance(value.get("files"), dict)
                and isinstance(value.get("private_port"), int) and not isinstance(value.get("private_port"), bool)):
            return "must map files to their states and name the private port"
        return None
    if name == "client_view":
        return None if isinstance(value, list) and all(isinstance(v, dict) for v in value) else "must be a list of mappings"
    return None if isinstance(value, (int, float, str, list, dict)) else "has the wrong type"
