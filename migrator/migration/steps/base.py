"""What a step is, and the context every step runs in."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from migrator.context import Environment
from migrator.migration.budget import Budget, CappedDeadlines
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
    # The budget the running step is under (migration/budget.py; the engine sets it before each step).
    budget: Budget | None = None
    run_started_at: float = field(default_factory=time.time)
    _config_states: Any = field(default=None, repr=False)

    @property
    def deadlines(self) -> Any:
        """The playbook's deadlines, cut to what is left of the budget."""
        deadlines = self.playbook.migration.deadlines
        return deadlines if self.budget is None else CappedDeadlines(deadlines, self.budget)

    def cap(self, seconds: float) -> float:
        """A wait of `seconds`, cut to what is left of the budget."""
        return seconds if self.budget is None else self.budget.cap(seconds)

    @property
    def state_dir(self) -> Path:
        return self.playbook.migration.state_dir

    @contextmanager
    def milvus(self, timeout: float = 30.0, *, isolated: bool = False) -> Iterator[Any]:
        """A client of Milvus: on its public uri, or (`isolated`) on the private client port of an
        isolated start, reached through the runtime (a container's own loopback included)."""
        from migrator.milvus.client import MilvusAdapter

        alive = self.runtime.running
        timeout = max(self.cap(timeout), 1.0)
        if not isolated:
            with MilvusAdapter.connect(self.playbook.milvus.uri, token=self.token, timeout=timeout,
                                       alive=alive) as adapter:
                yield adapter
            return
        with self.runtime.reach(self.config_states().private_port) as address:
            scheme = "https" if self.playbook.milvus.uri.startswith("https") else "http"
            with MilvusAdapter.connect(f"{scheme}://{address}", token=self.token, timeout=timeout,
                                       alive=alive) as adapter:
                yield adapter

    def config_states(self) -> Any:
        """The run's config states (migration/configstates.py), computed by the first config step."""
        if self._config_states is None:
            recorded = self.journal.marks.config_states
            if recorded is None:
                raise RuntimeError("config states used before the step that computes them")  # a pipeline bug
            self._config_states = load_config_states(recorded, self.journal, self.playbook, self.plan)
        return self._config_states

    def effective(self) -> Any:
        """The config as Milvus would read it now (files re-read: earlier steps edit them)."""
        from migrator.config import EtcdSource, load_layers

        etcd = self.playbook.config.etcd
        source = EtcdSource(etcd.endpoint) if etcd is not None else None
        return load_layers(self.playbook.config.dir, self.plan.milvus_version, self.milvus_environ, source,
                           env_origin=f"environment of {self.playbook.runtime.kind} runtime")


def load_config_states(recorded: Any, journal: Journal, playbook: Playbook, plan: Plan) -> Any:
    """The config states `journal` recorded, checked against the operator's playbook: only its config
    layers, copies only in the run's config-states dir (configstates.ConfigStates.load)."""
    from migrator.config.layers import config_files_for
    from migrator.migration.configstates import ConfigStates, states_dir

    layers = {str(playbook.config.dir / name) for name in config_files_for(plan.milvus_version)}
    return ConfigStates.load(recorded, directory=states_dir(playbook.migration.state_dir, journal.run_id),
                             config_files=layers, where=str(journal.path))


@dataclass(frozen=True)
class Step:
    """One stage of the migration: a stable id (journal key), what it does, and its action.

    `side_effects` is the dry-run gate: such a step only says what it would do under --dry-run.
    `after_switch` marks the steps that run once the migration is proven (no rollback for them).
    `do` returns a one-line summary for the journal, progress display and report.
    """

    id: str
    description: str
    do: Callable[[RunContext], str | None]
    side_effects: bool = True
    would: Callable[[RunContext], str] | None = None
    # After the switch is proven and clients are back (backup, clean-up): its failure leaves the
    # migration done and is no reason to undo it.
    after_switch: bool = False
