"""What a step is, and the context every step runs in."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrator.context import Environment
from migrator.migration.budget import Budget, CappedDeadlines
from migrator.migration.journal import Journal
from migrator.migration.plan import Plan
from migrator.playbook import Deadlines, Playbook
from migrator.runtime.base import Runtime

if TYPE_CHECKING:  # imported where used: each pulls in more than a step needs to be defined
    from migrator.config.layers import EffectiveConfig
    from migrator.migration.configstates import ConfigStates
    from migrator.milvus.client import MilvusAdapter
    from migrator.runtime.firewall import GateRule


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
    _config_states: ConfigStates | None = field(default=None, repr=False)

    @property
    def deadlines(self) -> Deadlines | CappedDeadlines:
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
    def milvus(self, timeout: float = 30.0, *, private: bool = False) -> Iterator[MilvusAdapter]:
        """A client of Milvus: on its public uri, or (`private`) the tool's own way in while clients
        are kept away: through the closed firewall gate (its exempt address), or on the private
        client port of an isolated start, reached through the runtime (a container's own loopback
        included)."""
        from migrator.migration import gate
        from migrator.milvus.client import MilvusAdapter

        alive = self.runtime.running
        timeout = max(self.cap(timeout), 1.0)
        uri = self.playbook.milvus.uri
        scheme = "https" if uri.startswith("https") else "http"
        if not private:
            with MilvusAdapter.connect(uri, token=self.token, timeout=timeout, alive=alive) as adapter:
                yield adapter
            return
        rule = self.gate_rule()
        way_in = gate.reach(rule, uri) if rule is not None else self.runtime.reach(self.config_states().private_port)
        with way_in as address, MilvusAdapter.connect(f"{scheme}://{address}", token=self.token, timeout=timeout,
                                                      alive=alive) as adapter:
            yield adapter

    def gate_rule(self) -> GateRule | None:
        """The firewall gate's rule set this run journaled (runtime/firewall.py GateRule), checked;
        None for a run behind port isolation, or before the gate closed."""
        from migrator.runtime.firewall import GateRule

        recorded = self.journal.marks.gate
        return None if recorded is None else GateRule.checked(recorded, where=str(self.journal.path))

    @property
    def exempt_source(self) -> str | None:
        """The local address the tool's HTTP calls to Milvus come from while the gate is closed."""
        rule = self.gate_rule()
        return None if rule is None else rule.exempt

    def use_config_states(self, states: ConfigStates) -> None:
        """The states the first config step computed (and journaled), kept for the steps after it."""
        self._config_states = states

    def config_states(self) -> ConfigStates:
        """The run's config states (migration/configstates.py), computed by the first config step."""
        if self._config_states is None:
            recorded = self.journal.marks.config_states
            if recorded is None:
                raise RuntimeError("config states used before the step that computes them")  # a pipeline bug
            self._config_states = load_config_states(recorded, self.journal, self.playbook, self.plan)
        return self._config_states

    def effective(self) -> EffectiveConfig:
        """The config as Milvus would read it now (files re-read: earlier steps edit them)."""
        from migrator.config import EtcdSource, load_layers

        etcd = self.playbook.config.etcd
        source = EtcdSource(etcd.endpoint) if etcd is not None else None
        return load_layers(self.playbook.config.dir, self.plan.milvus_version, self.milvus_environ, source,
                           env_origin=f"environment of {self.playbook.runtime.kind} runtime")


def load_config_states(recorded: Any, journal: Journal, playbook: Playbook, plan: Plan) -> ConfigStates:
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
    # Runs while the firewall gate must hold: the engine proves it does before the step starts.
    behind_gate: bool = False
