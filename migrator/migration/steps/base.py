"""What a step is, and the context every step runs in."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from migrator.context import Environment
from migrator.migration.journal import Journal
from migrator.migration.plan import Plan
from migrator.playbook import Playbook
from migrator.runtime.base import Runtime


@dataclass
class RunContext:
    env: Environment
    playbook: Playbook
    plan: Plan
    journal: Journal
    runtime: Runtime
    milvus_environ: dict[str, str]  # the environment the Milvus process sees
    token: str | None = None
    dry_run: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def deadlines(self) -> Any:
        return self.playbook.migration.deadlines

    @property
    def state_dir(self) -> Path:
        return self.playbook.migration.state_dir

    @contextmanager
    def milvus(self, timeout: float = 30.0) -> Iterator[Any]:
        from migrator.milvus.client import MilvusAdapter

        with MilvusAdapter.connect(self.playbook.milvus.uri, token=self.token, timeout=timeout) as adapter:
            yield adapter

    def effective(self) -> Any:
        """The config as Milvus would read it now (files re-read: earlier steps edit them)."""
        from migrator.config import EtcdSource, load_layers

        etcd = self.playbook.config.etcd
        source = EtcdSource(etcd.endpoint) if etcd is not None else None
        return load_layers(self.playbook.config.dir, self.plan.milvus_version, self.milvus_environ, source,
                           env_origin=f"environment of {self.playbook.runtime.kind} runtime")


@dataclass(frozen=True)
class Step:
    """One stage of the migration: a stable id (journal key), what it does, and its action.

    `side_effects` is the dry-run gate: such a step only says what it would do under --dry-run.
    `do` returns a one-line summary for the journal, progress display and report.
    """

    id: str
    description: str
    do: Callable[[RunContext], str | None]
    side_effects: bool = True
    would: Callable[[RunContext], str] | None = None
