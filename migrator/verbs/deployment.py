"""A deployment as the verbs see it: its playbook, its runtime, its token, its journal and lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from migrator.context import Environment
from migrator.errors import BadInput
from migrator.migration.journal import DeploymentLock, Journal
from migrator.migration.plan import Plan
from migrator.playbook import LoadedPlaybook, load_playbook


@dataclass
class Deployment:
    """A loaded playbook with what the verbs derive from it."""

    loaded: LoadedPlaybook
    runtime: Any
    token: str | None

    @property
    def journal_path(self) -> Path:
        return self.loaded.spec.migration.state_dir / "journal.json"

    @property
    def lock(self) -> DeploymentLock:
        return DeploymentLock(self.loaded.spec.migration.state_dir / "lock")

    def journal(self) -> Journal | None:
        return Journal.load(self.journal_path)


def open_deployment(env: Environment, playbook_path: Path) -> Deployment:
    return deployment_for(env, load_playbook(playbook_path))


def deployment_for(env: Environment, loaded: LoadedPlaybook) -> Deployment:
    from migrator.runtime import runtime_for_playbook

    return Deployment(loaded, runtime_for_playbook(loaded.spec, env.environ), loaded.spec.milvus.token(env.environ))


def run_context(env: Environment, deployment: Deployment, plan: Plan, journal: Journal, *, dry_run: bool):
    """What every step runs with."""
    from migrator.migration.steps.base import RunContext

    return RunContext(env=env, playbook=deployment.loaded.spec, plan=plan, journal=journal,
                      runtime=deployment.runtime,
                      milvus_environ=deployment.loaded.spec.milvus_environment(deployment.runtime.environment()),
                      token=deployment.token, dry_run=dry_run)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def recorded_plan(journal: Journal) -> Plan:
    return Plan.from_dict(journal.data["plan"])


def require_journal(deployment: Deployment, what: str) -> Journal:
    journal = deployment.journal()
    if journal is None:
        raise BadInput(f"no migration recorded in {deployment.journal_path}; nothing to {what}")
    return journal
