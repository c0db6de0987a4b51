"""plan, apply, status, rollback, verify: plain functions taking the Environment (no typer here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from migrator.context import Environment
from migrator.errors import BadInput, Refused
from migrator.journal import DONE, FAILED, INTERRUPTED, ROLLED_BACK, ROLLING_BACK, RUNNING, DeploymentLock, Journal
from migrator.plan import Plan, check_fresh
from migrator.playbook import LoadedPlaybook, load_playbook

UNFINISHED = (RUNNING, INTERRUPTED, FAILED, ROLLING_BACK)


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


def open_deployment(env: Environment, playbook_path: Path) -> Deployment:
    return _deployment(env, load_playbook(playbook_path))


def _deployment(env: Environment, loaded: LoadedPlaybook) -> Deployment:
    from migrator.runtime import runtime_for_playbook

    return Deployment(loaded, runtime_for_playbook(loaded.spec, env.environ), loaded.spec.milvus.token(env.environ))


def parse_sets(assignments: list[str]) -> dict[str, Any]:
    from migrator.config import parse_assignment

    return dict(parse_assignment(item) for item in assignments)


def plan(env: Environment, playbook_path: Path, *, target: str = "natsmq", sets: Mapping[str, Any] | None = None,
         out: Path | None = None) -> Plan:
    from migrator.planner import build_plan

    loaded = load_playbook(playbook_path)
    if loaded.spec.runtime.kind == "kubernetes":
        return _plan_kubernetes(env, loaded, target=target, sets=sets or {}, out=out)
    deployment = _deployment(env, loaded)
    built = build_plan(env, deployment.loaded, target=target, sets=sets or {},
                       runtime_environ=deployment.runtime.environment(), token=deployment.token)
    if out is not None:
        built.save(out)
    return built


def _plan_kubernetes(env: Environment, loaded: LoadedPlaybook, *, target: str, sets: Mapping[str, Any],
                     out: Path | None) -> Plan:
    """The change for Helm/the operator; its files go beside the plan file (the commands name them)."""
    from migrator.planner import build_kubernetes_plan
    from migrator.runtime.kubernetes import KubernetesChange

    out_dir = out.resolve().parent if out is not None else loaded.spec.migration.state_dir / "kubernetes"
    built = build_kubernetes_plan(env, loaded, target=target, sets=sets, token=loaded.spec.milvus.token(env.environ),
                                  out_dir=out_dir)
    if out is not None:
        built.save(out)
        KubernetesChange.from_dict(built.facts["kubernetes"]).write_files(out_dir)
    return built


def _run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _context(env: Environment, deployment: Deployment, plan_: Plan, journal: Journal, dry_run: bool):
    from migrator.planner import milvus_environment
    from migrator.steps.base import RunContext

    return RunContext(env=env, playbook=deployment.loaded.spec, plan=plan_, journal=journal,
                      runtime=deployment.runtime,
                      milvus_environ=milvus_environment(deployment.loaded, deployment.runtime.environment()),
                      token=deployment.token, dry_run=dry_run)


def _confirm(env: Environment, plan_: Plan, yes: bool) -> None:
    _ask(env, f"Migrate {plan_.playbook_path} from {plan_.source_mq} to {plan_.target_mq} "
              f"({len(plan_.steps)} steps; writes are denied meanwhile)? [y/N] ", yes)


def _ask(env: Environment, question: str, yes: bool) -> None:
    if yes:
        return
    if not env.interactive:
        raise BadInput("apply changes a live deployment: pass --yes when not on a terminal")
    env.stderr.write(question)
    env.stderr.flush()
    assert env.stdin is not None
    if env.stdin.readline().strip().lower() not in ("y", "yes"):
        raise BadInput("not confirmed; nothing was changed")


def apply(
    env: Environment,
    *,
    plan_path: Path | None = None,
    playbook_path: Path | None = None,
    target: str = "natsmq",
    sets: Mapping[str, Any] | None = None,
    yes: bool = False,
    dry_run: bool = False,
    resume: bool = False,
    rollback_on_failure: bool = True,
) -> dict[str, Any]:
    from migrator.engine import Progress, rollback, run_steps
    from migrator.steps.pipeline import planned_steps

    if plan_path is None and playbook_path is None:
        raise BadInput("give a PLAN file, or --playbook to plan and apply in one go")
    loaded = load_playbook(playbook_path if playbook_path is not None else Path(Plan.load(plan_path).playbook_path))
    if loaded.spec.runtime.kind == "kubernetes":
        return _apply_kubernetes(env, loaded, plan_path=plan_path, target=target, sets=sets or {}, yes=yes,
                                 dry_run=dry_run, resume=resume)
    deployment = _deployment(env, loaded)
    if resume:
        journal = Journal.load(deployment.journal_path)
        if journal is None:
            raise BadInput(f"--resume: no journal at {deployment.journal_path}; nothing to resume")
        if journal.status in (DONE, ROLLED_BACK):
            return {"status": journal.status, "message": f"the last migration is already {journal.status}"}
        plan_ = Plan.from_dict(journal.data["plan"])
    else:
        plan_ = _fresh_plan(env, loaded, plan_path, target, sets)
        if plan_.nothing_to_do:
            return {"status": DONE, "message": f"Milvus already runs on {plan_.target_mq}: nothing to do"}
        previous = Journal.load(deployment.journal_path)
        if previous is not None and previous.status in UNFINISHED and not dry_run:
            raise Refused(f"an earlier migration is {previous.status} ({deployment.journal_path})",
                          hint="`milvus-migrate apply --resume` continues it, `milvus-migrate rollback` undoes it")
        if not dry_run:
            _confirm(env, plan_, yes)

    progress = Progress(env.stderr)
    if dry_run:
        holder = deployment.lock.held_by_other()
        if holder:
            raise Refused(f"another migration holds {deployment.lock.path}: {holder}")
        journal = Journal.create(deployment.journal_path, run_id=_run_id(), plan=plan_.to_dict(), dry_run=True)
        ctx = _context(env, deployment, plan_, journal, dry_run=True)
        run_steps(ctx, planned_steps(plan_, deployment.loaded.spec), progress=progress)
        return _finish(env, ctx, dry_run=True)

    with deployment.lock:
        if not resume:
            journal = Journal.create(deployment.journal_path, run_id=_run_id(), plan=plan_.to_dict())
        ctx = _context(env, deployment, plan_, journal, dry_run=False)
        env.log.info("apply.start", run_id=journal.data["run_id"], source=plan_.source_mq, target=plan_.target_mq,
                     resume=resume)
        try:
            if journal.data.get("phase") == "rollback":
                rollback(ctx, progress)
            else:
                run_steps(ctx, planned_steps(plan_, deployment.loaded.spec),
                          rollback_on_failure=rollback_on_failure, progress=progress)
        finally:
            # Written on failure too: the report says what happened and what was rolled back.
            report = _finish(env, ctx, dry_run=False)
        return report


def _fresh_plan(env: Environment, loaded: LoadedPlaybook, plan_path: Path | None, target: str,
                sets: Mapping[str, Any] | None) -> Plan:
    """The plan file, refused when stale, or a plan made now; refused when preflight found errors."""
    if plan_path is not None:
        plan_ = Plan.load(plan_path)
        check_fresh(plan_, loaded.sha256)
    else:
        plan_ = plan(env, loaded.path, target=target, sets=sets)
    if plan_.errors:
        raise Refused("preflight refused: " + "; ".join(f"{f.key}: {f.message}" for f in plan_.errors))
    return plan_


def _apply_kubernetes(env: Environment, loaded: LoadedPlaybook, *, plan_path: Path | None, target: str,
                      sets: Mapping[str, Any], yes: bool, dry_run: bool, resume: bool) -> dict[str, Any]:
    """Helm/the operator roll the change out. The tool runs its commands only when the playbook asks
    (runtime.run_kubectl) and helm/kubectl are on PATH; otherwise it writes the files and says what to
    run: nothing failed, the operator applies it (exit 0)."""
    from migrator.runtime.kubernetes import KubernetesChange, run_change

    if resume:
        raise BadInput("--resume: apply on Kubernetes keeps no journal; run apply again "
                       "(the same helm upgrade or kubectl patch applied twice changes nothing more)")
    plan_ = _fresh_plan(env, loaded, plan_path, target, sets)
    kubernetes = plan_.facts["kubernetes"]
    change = KubernetesChange.from_dict(kubernetes)
    out_dir = Path(kubernetes["out_dir"])
    runtime = loaded.spec.runtime
    missing = change.missing_tools()
    runs = runtime.run_kubectl and not missing
    if dry_run:
        would = (f"run: {change.shown_commands()}" if runs
                 else f"write {', '.join(change.files)} in {out_dir} and print the commands for you to run")
        return {"status": "dry-run", "message": f"dry run, nothing written or run: apply would {would}",
                "kubernetes": kubernetes}
    if not runs:
        why = "runtime.run_kubectl is false" if not runtime.run_kubectl else f"{', '.join(missing)} not on PATH"
        written = change.write_files(out_dir)
        return {"status": "emitted", "message": _kubernetes_handover(why, plan_, written, change),
                "kubernetes": kubernetes}
    _ask(env, f"Roll out {plan_.target_mq} to {runtime.manager} release {runtime.release} in namespace "
              f"{runtime.namespace} ({change.shown_commands()})? [y/N] ", yes)
    with DeploymentLock(loaded.spec.migration.state_dir / "lock"):
        env.log.info("apply.kubernetes.start", target=plan_.target_mq, manager=runtime.manager,
                     commands=len(change.commands))
        run_change(change, runtime, out_dir)
        env.log.info("apply.kubernetes.end", target=plan_.target_mq)
    return {"status": DONE, "kubernetes": kubernetes,
            "message": f"ran: {change.shown_commands()}; the rollout finished. Check the new pod's log for "
                       f"`try to init mq` with mqType={plan_.target_mq}, then allow writes again."}


def _kubernetes_handover(why: str, plan_: Plan, written: list[Path], change: Any) -> str:
    lines = [f"{why}: the tool does not roll out the change; the operator applies it:",
             "  1. deny writes and FlushAll (docs/deployments/kubernetes.md)",
             f"  2. review {', '.join(str(path) for path in written)}",
             "  3. run:"]
    lines += ["       " + " ".join(argv) for argv in change.commands]
    lines.append(f"  4. check the new pod's log for `try to init mq` with mqType={plan_.target_mq}, then allow writes")
    return "\n".join(lines)


def _finish(env: Environment, ctx: Any, *, dry_run: bool) -> dict[str, Any]:
    from migrator.report import build_report, write_report

    report = build_report(ctx.journal, dry_run=dry_run)
    if not dry_run:
        json_path, md_path = write_report(report, ctx.state_dir)
        report["report_files"] = [str(json_path), str(md_path)]
    env.log.info("apply.end", status=report["status"], write_downtime_s=report["write_downtime_s"])
    return report


def status(env: Environment, playbook_path: Path) -> dict[str, Any]:
    from migrator.config import FORCE_DENY

    deployment = open_deployment(env, playbook_path)
    journal = Journal.load(deployment.journal_path)
    result: dict[str, Any] = {"playbook": str(deployment.loaded.path), "journal": str(deployment.journal_path),
                              "lock_holder": deployment.lock.held_by_other(), "milvus_running": None}
    try:
        result["milvus_running"] = deployment.runtime.running()
    except Exception as error:  # noqa: BLE001 - status must answer even when the runtime cannot
        result["milvus_running_error"] = str(error)
    if journal is None:
        result["status"] = "no migration recorded"
        return result
    plan_ = Plan.from_dict(journal.data["plan"])
    ctx = _context(env, deployment, plan_, journal, dry_run=True)
    effective = ctx.effective()
    deny = effective.get(FORCE_DENY)
    result.update(
        status=journal.status,
        run_id=journal.data["run_id"],
        direction=f"{plan_.source_mq} -> {plan_.target_mq}",
        error=journal.data.get("error"),
        mq_type_configured=effective.mq_type(),
        writes_denied=bool(deny.value),
        writes_denied_source=str(deny.source),
        steps=[{"id": k, "state": v.get("state"), "seconds": v.get("seconds"),
                "summary": v.get("summary") or v.get("error")} for k, v in journal.data["steps"].items()],
        next=_next_action(journal.status),
    )
    return result


def _next_action(state: str) -> str:
    return {
        RUNNING: "an apply is running, or died: if `lock_holder` is empty, `milvus-migrate apply --resume`",
        INTERRUPTED: "`milvus-migrate apply --resume` to continue, or `milvus-migrate rollback`",
        FAILED: "fix the cause, then `milvus-migrate apply --resume` or `milvus-migrate rollback`",
        ROLLING_BACK: "`milvus-migrate rollback` to finish the rollback",
        DONE: "nothing; `milvus-migrate verify` re-checks, `milvus-migrate rollback` goes back",
        ROLLED_BACK: "nothing; Milvus runs on the source MQ again",
    }.get(state, "")


def rollback(env: Environment, playbook_path: Path, *, yes: bool = False) -> dict[str, Any]:
    """A finished migration: migrate back. A failed or interrupted one: finish its rollback."""
    from migrator.engine import Progress
    from migrator.engine import rollback as engine_rollback

    deployment = open_deployment(env, playbook_path)
    journal = Journal.load(deployment.journal_path)
    if journal is None or journal.status == ROLLED_BACK:
        return {"status": "nothing to roll back"}
    plan_ = Plan.from_dict(journal.data["plan"])
    if journal.status == DONE:
        return apply(env, playbook_path=playbook_path, target=plan_.source_mq, yes=yes)
    _confirm(env, plan_, yes)
    with deployment.lock:
        ctx = _context(env, deployment, plan_, journal, dry_run=False)
        try:
            engine_rollback(ctx, Progress(env.stderr))
        finally:
            report = _finish(env, ctx, dry_run=False)
        return report


def verify(env: Environment, playbook_path: Path) -> dict[str, Any]:
    """The post-migration checks on their own (cron, CI): read-only but for one probe insert."""
    from migrator.errors import NotRolledBack
    from migrator.steps import verify as checks
    from migrator.steps.writes import wait_for_write_state

    deployment = open_deployment(env, playbook_path)
    journal = Journal.load(deployment.journal_path)
    if journal is None:
        raise BadInput(f"no migration recorded in {deployment.journal_path}; nothing to verify against")
    plan_ = Plan.from_dict(journal.data["plan"])
    with deployment.lock:
        # Checks keep their scratch facts (the NATS port) in a journal that is never saved.
        scratch = Journal.create(deployment.journal_path, run_id=_run_id(), plan=journal.data["plan"], dry_run=True)
        scratch.data["steps"] = journal.data["steps"]
        ctx = _context(env, deployment, plan_, scratch, dry_run=True)
        effective_mq = ctx.effective().mq_type()
        result: dict[str, Any] = {"mq_type_configured": effective_mq, "checks": []}
        if effective_mq == "natsmq":
            result["checks"].append(checks.check_nats(ctx))
        from migrator.milvus import Snapshot

        with ctx.milvus() as milvus:
            current = milvus.snapshot(deadline_s=ctx.deadlines.verify_s)
            result["checks"].append(f"{len(current.collections)} collections answer; "
                                    f"{sum(1 for c in current.collections if c.loaded)} loaded ones a Strong count")
            if not bool(ctx.effective().get("quotaAndLimits.limitWriting.forceDeny").value):
                milvus.ensure_probe()
                _, probe_id = wait_for_write_state(ctx, milvus, denied=False, deadline_s=ctx.deadlines.deny_s)
                if not milvus.probe_visible(probe_id, deadline_s=ctx.deadlines.verify_s):
                    raise NotRolledBack("a probe insert was accepted but a Strong query does not see it")
                milvus.drop_probe()
                result["checks"].append("a probe insert is visible to a Strong query")
        if journal.status == DONE:
            before = Snapshot.from_dict(journal.recall("snapshot", "snapshot"))
            lost = [f"{c.key}: {c.rows} at migration, now {now.rows}" for c in before.collections
                    for now in current.collections if now.key == c.key and now.rows < c.rows]
            missing = sorted({c.key for c in before.collections} - {c.key for c in current.collections})
            result["rows_below_migration_snapshot"] = lost
            result["collections_missing"] = missing
        result["ok"] = not result.get("rows_below_migration_snapshot") and not result.get("collections_missing")
        return result
