"""A deployment as the verbs see it: its playbook, its runtime, its token, its journal and lock."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from migrator.context import Environment
from migrator.errors import BadInput, MigrateError, Refused
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


def effective_config(deployment: Deployment, version: str | None) -> Any:
    """The config as the deployment's Milvus (of `version`; None: unknown) reads it now."""
    from migrator.config import EtcdSource, load_layers

    spec = deployment.loaded.spec
    etcd = EtcdSource(spec.config.etcd.endpoint) if spec.config.etcd is not None else None
    return load_layers(spec.config.dir, version, spec.milvus_environment(deployment.runtime.environment()), etcd,
                       env_origin=f"environment of the {spec.runtime.kind} runtime")


def run_context(env: Environment, deployment: Deployment, plan: Plan, journal: Journal, *, dry_run: bool):
    """What every step runs with."""
    from migrator.migration.steps.base import RunContext

    return RunContext(env=env, playbook=deployment.loaded.spec, plan=plan, journal=journal,
                      runtime=deployment.runtime,
                      milvus_environ=deployment.loaded.spec.milvus_environment(deployment.runtime.environment()),
                      token=deployment.token, dry_run=dry_run)


def recorded_plan(journal: Journal) -> Plan:
    return Plan.from_dict(journal.plan, where=f"{journal.path}: plan")


def check_recorded_run(journal: Journal, plan: Plan, loaded: LoadedPlaybook) -> None:
    """Before a resume or a rollback acts on a journal: its plan must be one a plan made from the
    operator's playbook could hold, and its config states only that playbook's config files, saved in
    the run's own config-states dir (the journal is data, never instructions). BadInput otherwise."""
    from migrator.migration.plan import field_problems
    from migrator.migration.steps.base import load_config_states

    problems = field_problems(plan, loaded)
    if problems:
        raise BadInput(f"{journal.path}: its plan does not fit {loaded.path}: {'; '.join(problems)}",
                       hint="this journal is not of this deployment: move it aside")
    if journal.marks.config_states is not None:
        load_config_states(journal.marks.config_states, journal, loaded.spec, plan)


def require_journal(deployment: Deployment, what: str) -> Journal:
    journal = deployment.journal()
    if journal is None:
        raise BadInput(f"no migration recorded in {deployment.journal_path}; nothing to {what}")
    return journal


def cannot_reach(error: BaseException) -> str | None:
    """What did not answer (as a hint), when `error` says Milvus, its NATS, etcd or the
    deployment's runtime could not be reached; None for any other error."""
    import urllib.error

    from migrator.milvus.client import MilvusUnavailable
    from migrator.milvus.etcd import EtcdUnreachable
    from migrator.milvus.nats import NatsUnreachable
    from migrator.runtime.base import CommandFailed

    if isinstance(error, MilvusUnavailable):
        return "Milvus did not answer: is it running, and do the playbook's milvus.uri and milvus.token_env reach it?"
    if isinstance(error, NatsUnreachable):
        return "Milvus's NATS server did not answer: is Milvus running on natsmq, its NATS port reachable?"
    if isinstance(error, EtcdUnreachable):
        return "etcd did not answer: check the playbook's config.etcd endpoint and that etcd is up"
    if isinstance(error, CommandFailed):
        return "a command of the deployment's runtime failed: check the playbook's runtime section"
    if isinstance(error, (ConnectionError, TimeoutError, urllib.error.URLError)):
        return "a connection failed: check that the services the playbook names are up"
    return None


@contextmanager
def nothing_changed_yet() -> Iterator[None]:
    """Around what a verb does before its first change: Milvus, NATS, etcd or the runtime not
    answering there refuses the verb (exit 3), since nothing needs rolling back."""
    try:
        yield
    except Exception as error:
        unreachable = cannot_reach(error)
        if unreachable is None:
            raise
        message = error.message if isinstance(error, MigrateError) else str(error)
        raise Refused(message, hint=f"{unreachable}; nothing was changed") from error
