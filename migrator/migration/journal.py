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
from migrator.util.files import write_bytes_atomic

SCHEMA_VERSION = 1

# Journal statuses
RUNNING = "running"
DONE = "done"
FAILED = "failed"  # failed, not rolled back: the operator decides (rollback or resume)
INTERRUPTED = "interrupted"
ROLLING_BACK = "rolling-back"
ROLLED_BACK = "rolled-back"


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
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise BadInput(f"{path}: unreadable journal ({error})") from error
        if data.get("schema_version") != SCHEMA_VERSION:
            raise BadInput(f"{path}: journal schema {data.get('schema_version')} is not {SCHEMA_VERSION}")
        return cls(path, data)

    # A dry run keeps its journal in memory only: it must change nothing on disk.
    dry_run = False

    def save(self) -> None:
        if not self.dry_run:
            write_json_atomic(self.path, self.data)

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            handle.seek(0)
            holder = handle.read().strip() or "unknown process"
            handle.close()
            raise Refused(f"another migration holds {self.path}: {holder}",
                          hint="wait for it, or check `milvus-migrate status`") from error
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {_now()}\n")
        handle.flush()
        self._handle = handle

    def held_by_other(self) -> str | None:
        """The holder's description when another process holds the lock, else None (read-only check)."""
        if not self.path.exists():
            return None
        with open(self.path, encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return handle.read().strip() or "unknown process"
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

