"""apply and rollback: run the migration's steps (or the rollback's) under the deployment's lock."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from migrator.context import Environment
from migrator.errors import BadInput, MigrateError, Refused
from migrator.migration.journal import UNFINISHED, DeploymentLock, Journal, Phase, RunStatus, new_run_id
from migrator.migration.plan import Plan, check_fresh
from migrator.mq import Mq
from migrator.playbook import LoadedPlaybook, load_playbook
from migrator.verbs.deployment import (
    check_recorded_run,
    deployment_for,
    nothing_changed_yet,
    open_deployment,
    recorded_plan,
    run_context,
)
from migrator.verbs.plan import plan_for


def confirm(env: Environment, question: str, yes: bool) -> None:
    """Ask on a terminal; refuse without --yes elsewhere (a change to a live deployment)."""
    if yes:
        return
    if not env.interactive:
        raise BadInput("this changes a live deployment: pass --yes (no question is asked off a terminal "
                       "or with --log-format json)")
    env.stderr.write(question)
    env.stderr.flush()
    assert env.stdin is not None
    if env.stdin.readline().strip().lower() not in ("y", "yes"):
        raise BadInput("not confirmed; nothing was changed")


def _confirm_migration(env: Environment, plan: Plan, yes: bool) -> None:
    confirm(env, f"Migrate {plan.playbook_path} from {plan.source_mq} to {plan.target_mq} "
                 f"({len(plan.steps)} steps; clients cannot reach Milvus meanwhile)? [y/N] ", yes)


def apply(
    env: Environment,
    *,
    plan_path: Path | None = None,
    playbook_path: Path | None = None,
    target: str | None = None,
    sets: Mapping[str, Any] | None = None,
    yes: bool = False,
    dry_run: bool = False,
    resume: bool = False,
    rollback_on_failure: bool = True,
) -> dict[str, Any]:
    """`target` None: the plan's, or natsmq when planning now."""
    from migrator.migration.engine import run_rollback, run_steps
    from migrator.migration.steps.pipeline import forward_steps, rollback_steps

    if plan_path is None and playbook_path is None:
        raise BadInput("give a PLAN file, or --playbook to plan and apply in one go")
    saved = Plan.load(plan_path) if plan_path is not None else None
    if saved is not None:
        refuse_flags_beside_a_plan(saved, plan_path, playbook_path=playbook_path, target=target, sets=sets or {})
    loaded = load_playbook(playbook_path if playbook_path is not None else Path(saved.playbook_path))
    if loaded.spec.runtime.kind == "kubernetes":
        return _apply_kubernetes(env, loaded, plan_path=plan_path, target=target or Mq.NATSMQ.value, sets=sets or {},
                                 yes=yes, dry_run=dry_run, resume=resume)
    with nothing_changed_yet():
        deployment = deployment_for(env, loaded)
        if resume:
            journal = Journal.load(deployment.journal_path)
            if journal is None:
                raise BadInput(f"--resume: no journal at {deployment.journal_path}; nothing to resume")
            if journal.status in (RunStatus.DONE, RunStatus.ROLLED_BACK):
                return {"status": str(journal.status), "message": f"the last migration is already {journal.status}"}
            plan = recorded_plan(journal)
            if saved is not None and saved.created_at != plan.created_at:
                raise BadInput(f"--resume: {plan_path} is not the plan of the migration in {deployment.journal_path}"
                               f" (made {plan.created_at})",
                               hint="resume with --playbook alone: the journal holds its plan")
            check_recorded_run(journal, plan, loaded)
            refuse_resume_after_writes_allowed(journal)
        else:
            # The journal first: an unfinished migration is the news, whatever else is wrong now.
            previous = Journal.load(deployment.journal_path)
            if previous is not None and previous.status in UNFINISHED and not dry_run:
                raise Refused(f"an earlier migration is {previous.status} ({deployment.journal_path})",
                              hint="`milvus-migrate apply --resume` continues it, `milvus-migrate rollback` undoes it")
            plan = fresh_plan(env, loaded, plan_path, target or Mq.NATSMQ.value, sets)
            if plan.nothing_to_do:
                return {"status": str(RunStatus.DONE), "message": f"Milvus already runs on {plan.target_mq}: nothing to do"}
            if not dry_run:
                _confirm_migration(env, plan, yes)

    if dry_run:
        holder = deployment.lock.held_by_other()
        if holder:
            raise Refused(f"another migration holds {deployment.lock.path}: {holder}")
        journal = Journal.create(deployment.journal_path, run_id=new_run_id(), plan=plan.to_dict(), dry_run=True)
        ctx = run_context(env, deployment, plan, journal, dry_run=True)
        with reported(env, ctx, dry_run=True) as report:
            run_steps(ctx, forward_steps(plan, deployment.loaded.spec), rollback=rollback_steps,
                      progress=env.progress)
        return report

    with deployment.lock:
        if not resume:
            journal = Journal.create(deployment.journal_path, run_id=new_run_id(), plan=plan.to_dict())
        ctx = run_context(env, deployment, plan, journal, dry_run=False)
        env.log.info("apply.start", run_id=journal.run_id, source=plan.source_mq, target=plan.target_mq,
                     resume=resume)
        with reported(env, ctx, dry_run=False) as report:
            if journal.phase == Phase.ROLLBACK:
                run_rollback(ctx, rollback_steps(ctx), env.progress)
            else:
                run_steps(ctx, forward_steps(plan, deployment.loaded.spec), rollback=rollback_steps,
                          rollback_on_failure=rollback_on_failure, progress=env.progress)
        return report


def refuse_flags_beside_a_plan(plan: Plan, plan_path: Path, *, playbook_path: Path | None, target: str | None,
                               sets: Mapping[str, Any]) -> None:
    """A saved plan fixed the playbook, the target and the settings: a flag saying otherwise is
    a mistake to point out, not a wish to ignore (exit 2)."""
    if target is not None and target != plan.target_mq:
        raise BadInput(f"--to {target}: {plan_path} migrates to {plan.target_mq}",
                       hint=f"make a new plan with `milvus-migrate plan --to {target} --out ...`")
    if sets:
        raise BadInput(f"--set {', '.join(sets)}: {plan_path} already fixed its settings",
                       hint="make a new plan with those --set flags, then apply it")
    if playbook_path is not None and Path(playbook_path).resolve() != Path(plan.playbook_path).resolve():
        raise BadInput(f"--playbook {playbook_path}: {plan_path} was made for {plan.playbook_path}",
                       hint="apply the plan alone, or make a new plan for that playbook")


def refuse_resume_after_writes_allowed(journal: Journal) -> None:
    """`writes allow` during an unfinished migration voids its snapshot and FlushAll: going on
    from there could lose what was written meanwhile."""
    denied_at = journal.marks.clients_off_at
    allowed = [entry for entry in journal.writes
               if entry.action == "allow" and denied_at is not None and entry.unix > denied_at]
    if allowed:
        raise Refused(f"writes were allowed again by hand at {allowed[-1].at} during this migration: "
                      "its snapshot and FlushAll no longer hold",
                      hint="`milvus-migrate rollback` returns to the source MQ; then plan again")


@contextmanager
def reported(env: Environment, ctx: Any, *, dry_run: bool) -> Iterator[dict[str, Any]]:
    """Run the block, then write the report, on failure too; a failure carries its report (and
    so the paths of its files) to the CLI. The display follows the run's journal; a client of the
    tool's own writes throughout, and the report says what it saw (migration/clientview.py)."""
    from migrator.migration.clientview import ClientView

    if env.progress is not None:
        env.progress.follow(ctx.journal)
    view = None if dry_run else ClientView(ctx.playbook.milvus.uri, ctx.token)
    if view is not None:
        view.start()
        if not ctx.journal.marks.clients_off_at:  # clients are not cut off yet
            view.wait_for_first_write()
    report: dict[str, Any] = {}
    try:
        yield report
    except MigrateError as error:
        _keep_client_view(ctx, view)
        error.report = finish(env, ctx, dry_run=dry_run)
        raise
    except BaseException:
        _keep_client_view(ctx, view)
        finish(env, ctx, dry_run=dry_run)
        raise
    _keep_client_view(ctx, view, drop=True)
    report.update(finish(env, ctx, dry_run=dry_run))


def _keep_client_view(ctx: Any, view: Any, *, drop: bool = False) -> None:
    """What the tool's own client saw, kept in the journal (one entry per process of the run)."""
    from migrator.migration.clientview import drop as drop_view

    if view is None:
        return
    seen = view.stop(until_acknowledged_after=ctx.journal.marks.clients_back_at)
    ctx.journal.add_client_view(seen)
    if drop and ctx.journal.status in (RunStatus.DONE, RunStatus.ROLLED_BACK):
        try:
            drop_view(ctx.playbook.milvus.uri, ctx.token)
        except MigrateError as error:  # its rows are the tool's own; a leftover collection harms nothing
            ctx.env.log.warning("client_view.not_dropped", reason=error.message)


def fresh_plan(env: Environment, loaded: LoadedPlaybook, plan_path: Path | None, target: str,
               sets: Mapping[str, Any] | None) -> Plan:
    """The plan file, refused when stale, or a plan made now; refused when preflight found errors."""
    if plan_path is not None:
        plan = Plan.load(plan_path)
        check_fresh(plan, loaded)
    else:
        plan = plan_for(env, loaded, target=target, sets=sets or {})
    if plan.errors:
        raise Refused("preflight refused: " + "; ".join(f"{f.key}: {f.message}" for f in plan.errors))
    return plan


def finish(env: Environment, ctx: Any, *, dry_run: bool) -> dict[str, Any]:
    """The run's report, written to <state_dir>/reports/ unless this was a dry run."""
    from migrator.migration.report import build_report, write_report

    report = build_report(ctx.journal, dry_run=dry_run)
    if not dry_run:
        json_path, md_path = write_report(report, ctx.state_dir)
        report["report_files"] = [str(json_path), str(md_path)]
    env.log.info("apply.end", status=report["status"], write_downtime_s=report["write_downtime_s"],
                 report_files=report.get("report_files"))
    return report


def rollback(env: Environment, playbook_path: Path, *, yes: bool = False) -> dict[str, Any]:
    """A finished migration: migrate back. A failed or interrupted one: finish its rollback."""
    from migrator.migration.engine import run_rollback
    from migrator.migration.steps.pipeline import rollback_steps

    deployment = open_deployment(env, playbook_path)
    journal = deployment.journal()
    if journal is None or journal.status == RunStatus.ROLLED_BACK:
        return {"status": "nothing to roll back"}
    plan = recorded_plan(journal)
    if journal.status == RunStatus.DONE:
        return apply(env, playbook_path=playbook_path, target=plan.source_mq, yes=yes)
    check_recorded_run(journal, plan, deployment.loaded)
    _confirm_migration(env, plan, yes)
    with deployment.lock:
        ctx = run_context(env, deployment, plan, journal, dry_run=False)
        with reported(env, ctx, dry_run=False) as report:
            run_rollback(ctx, rollback_steps(ctx), env.progress)
        return report


def _apply_kubernetes(env: Environment, loaded: LoadedPlaybook, *, plan_path: Path | None, target: str,
                      sets: Mapping[str, Any], yes: bool, dry_run: bool, resume: bool) -> dict[str, Any]:
    """Helm/the operator roll the change out. The tool runs its commands only when the playbook asks
    (runtime.run_kubectl) and helm/kubectl are on PATH; otherwise it writes the files and says what to
    run: nothing failed, the operator applies it (exit 0)."""
    from migrator.migration.kubernetes import KubernetesChange, run_change

    if resume:
        raise BadInput("--resume: apply on Kubernetes keeps no journal; run apply again "
                       "(the same helm upgrade or kubectl patch applied twice changes nothing more)")
    plan = fresh_plan(env, loaded, plan_path, target, sets)
    kubernetes = plan.facts["kubernetes"]
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
        return {"status": "emitted", "message": _kubernetes_handover(why, plan, written, change),
                "kubernetes": kubernetes}
    confirm(env, f"Roll out {plan.target_mq} to {runtime.manager} release {runtime.release} in namespace "
              f"{runtime.namespace} ({change.shown_commands()})? [y/N] ", yes)
    with DeploymentLock(loaded.spec.migration.state_dir / "lock"):
        env.log.info("apply.kubernetes.start", target=plan.target_mq, manager=runtime.manager,
                     commands=len(change.commands))
        run_change(change, runtime, out_dir)
        env.log.info("apply.kubernetes.end", target=plan.target_mq)
    return {"status": str(RunStatus.DONE), "kubernetes": kubernetes,
            "message": f"ran: {change.shown_commands()}; the rollout finished. Check the new pod's log for "
                       f"`try to init mq` with mqType={plan.target_mq}, then allow writes again."}


def _kubernetes_handover(why: str, plan: Plan, written: list[Path], change: Any) -> str:
    lines = [f"{why}: the tool does not roll out the change; the operator applies it:",
             "  1. stop every writer, then FlushAll (docs/deployments/kubernetes.md)",
             f"  2. review {', '.join(str(path) for path in written)}",
             "  3. run:"]
    lines += ["       " + " ".join(argv) for argv in change.commands]
    lines.append(f"  4. check the new pod's log for `try to init mq` with mqType={plan.target_mq}, then allow writes")
    return "\n".join(lines)
