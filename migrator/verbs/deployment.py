"""A deployment as the verbs see it: its playbook, its runtime, its token, its journal and lock."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from migrator.context import Environment
from migrator.errors import BadInput, MigrateError, Refused
from migrator.migration.journal import DeploymentLock, Journal
from migrator.migration.plan import Plan
from migrator.playbook import LoadedPlaybook, Playbook, load_playbook
from migrator.runtime.base import Runtime

if TYPE_CHECKING:
    from migrator.config.layers import EffectiveConfig
    from migrator.migration.steps.base import RunContext


@dataclass
class Deployment:
    """A loaded playbook with what the verbs derive from it."""

    loaded: LoadedPlaybook
    runtime: Runtime
    token: str | None

    @property
    def journal_path(self) -> Path:
        return self.loaded.spec.migration.state_dir / "journal.json"

    @property
    def lock(self) -> DeploymentLock:
        return DeploymentLock(self.loaded.spec.migration.state_dir / "lock")

    def journal(self) -> Journal | None:
        return Journal.load(self.journal_path)

    @contextmanager
    def held(self, *, room_for: int | None = None) -> Iterator[None]:
        """The deployment's lock for the block, and (`room_for`, bytes of a run's journal) room set
        aside in the state dir so the run can always record how it ended (util/files.py). A full
        disk or a broken state dir while taking them changed nothing: Refused (3)."""
        from migrator.util.files import reserved_room

        lock = self.lock
        try:
            lock.acquire()
        except OSError as error:  # the holder's line could not be written: the lock was not taken
            raise Refused(f"cannot take the lock {lock.path}: {error.strerror or error}",
                          hint=f"free room in {lock.path.parent}; nothing was changed") from None
        try:
            if room_for is None:
                yield
            else:
                with reserved_room(self.loaded.spec.migration.state_dir, reserve_for(room_for)):
                    yield
        finally:
            lock.release()


class Driver(Protocol):
    """What the verbs do on a deployment, by who restarts its Milvus: this tool, through the runtime of
    the playbook's kind (ToolDriven: the engine's journaled steps), or Helm/the operator on Kubernetes
    (verbs/kubernetes.py: the change handed over). `driver_for` is the one place that tells them apart;
    the runtime itself comes from runtime_for_playbook, which has none for Kubernetes."""

    def plan(self, env: Environment, loaded: LoadedPlaybook, *, target: str, sets: Mapping[str, Any],
             out: Path | None) -> Plan: ...

    def apply(self, env: Environment, loaded: LoadedPlaybook, saved: Plan | None, *, plan_path: Path | None,
              target: str | None, sets: Mapping[str, Any], yes: bool, dry_run: bool, resume: bool,
              rollback_on_failure: bool) -> dict[str, Any]: ...

    def summary(self, spec: Playbook) -> dict[str, Any]:
        """What `playbook check` says of the change beside the playbook's own fields."""
        ...

    def refuse_writes(self, action: str) -> None:
        """BadInput when `writes deny|allow` cannot act on this deployment."""

    def production_runtime(self, env: Environment, loaded: LoadedPlaybook) -> Runtime | None:
        """The runtime a rehearsal reads production's environment through; None where none runs here."""

    def rehearsal_refusal(self) -> Refused | None:
        """Why a rehearsal needs --binary on this kind of deployment, if it says more than the default."""


class ToolDriven:
    """process, systemd, compose, docker, command: the tool stops and starts Milvus itself."""

    def plan(self, env: Environment, loaded: LoadedPlaybook, *, target: str, sets: Mapping[str, Any],
             out: Path | None) -> Plan:
        from migrator.migration.planner import build_plan

        deployment = deployment_for(env, loaded)
        built = build_plan(env, deployment.loaded, target=target, sets=sets,
                           runtime_environ=deployment.runtime.environment(), token=deployment.token)
        if out is not None:
            built.save(out)
        return built

    def apply(self, env: Environment, loaded: LoadedPlaybook, saved: Plan | None, *, plan_path: Path | None,
              target: str | None, sets: Mapping[str, Any], yes: bool, dry_run: bool, resume: bool,
              rollback_on_failure: bool) -> dict[str, Any]:
        from migrator.verbs.apply import run_migration  # the verb's own module, which imports this one

        return run_migration(env, loaded, saved, plan_path=plan_path, target=target, sets=sets, yes=yes,
                             dry_run=dry_run, resume=resume, rollback_on_failure=rollback_on_failure)

    def summary(self, spec: Playbook) -> dict[str, Any]:
        return {}

    def refuse_writes(self, action: str) -> None:
        return None

    def production_runtime(self, env: Environment, loaded: LoadedPlaybook) -> Runtime | None:
        return deployment_for(env, loaded).runtime

    def rehearsal_refusal(self) -> Refused | None:
        return None


def driver_for(spec: Playbook) -> Driver:
    if spec.runtime.kind == "kubernetes":
        from migrator.verbs.kubernetes import HelmOrOperator

        return HelmOrOperator()
    return ToolDriven()


def reserve_for(journal_bytes: int) -> int:
    """Room a run sets aside: enough for its journal rewritten and both reports, several times over."""
    return max(1024 * 1024, 8 * journal_bytes)


def open_deployment(env: Environment, playbook_path: Path) -> Deployment:
    return deployment_for(env, load_playbook(playbook_path))


def deployment_for(env: Environment, loaded: LoadedPlaybook) -> Deployment:
    from migrator.runtime import runtime_for_playbook

    env.playbook = loaded.path  # hints name it (runnable)
    return Deployment(loaded, runtime_for_playbook(loaded.spec, env.environ), loaded.spec.milvus.token(env.environ))


def milvus_version(deployment: Deployment) -> str:
    """Milvus's version, asked over its client port (MilvusUnavailable when it does not answer)."""
    from migrator.milvus.client import MilvusAdapter

    with MilvusAdapter.connect(deployment.loaded.spec.milvus.uri, token=deployment.token) as milvus:
        return milvus.version()


def effective_config(deployment: Deployment, version: str | None) -> EffectiveConfig:
    """The config as the deployment's Milvus (of `version`; None: unknown) reads it now."""
    from migrator.config import EtcdSource, load_layers

    spec = deployment.loaded.spec
    etcd = EtcdSource(spec.config.etcd.endpoint) if spec.config.etcd is not None else None
    return load_layers(spec.config.dir, version, spec.milvus_environment(deployment.runtime.environment()), etcd,
                       env_origin=f"environment of the {spec.runtime.kind} runtime")


def run_context(env: Environment, deployment: Deployment, plan: Plan, journal: Journal, *,
                dry_run: bool) -> RunContext:
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
    if journal is None:  # the input is fine; there is nothing to act on (3)
        raise Refused(f"no migration recorded in {deployment.journal_path}; nothing to {what}",
                      hint="`milvus-migrate status` says what the deployment runs on")
    return journal


_COMMAND = re.compile(r"`milvus-migrate (apply --resume|rollback|status|verify|writes allow|writes deny)"
                      r"(?: --playbook PB)?`")


def runnable(text: str, playbook: Path | None) -> str:
    """`text` with every `milvus-migrate <command>` it names given the playbook it needs, so a hint
    runs as printed (`apply --resume` without one is a usage error)."""
    if playbook is None:
        return text
    return _COMMAND.sub(lambda m: f"`milvus-migrate {m.group(1)} -p {shlex.quote(str(playbook))}`", text)


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
