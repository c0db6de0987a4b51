"""apply and rollback: run the migration's steps (or the rollback's) under the deployment's lock."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from migrator.context import Environment
from migrator.errors import BadInput, MigrateError, Refused
from migrator.migration.journal import UNFINISHED, Journal, Phase, RunStatus, new_run_id
from migrator.migration.plan import Plan, check_fresh
from migrator.mq import Mq
from migrator.playbook import LoadedPlaybook, load_playbook
from migrator.verbs.deployment import (
    Deployment,
    check_recorded_run,
    deployment_for,
    driver_for,
    milvus_version,
    nothing_changed_yet,
    open_deployment,
    recorded_plan,
    run_context,
)
from migrator.verbs.plan import plan_for

if TYPE_CHECKING:
    from migrator.migration.clientview import ClientView
    from migrator.migration.steps.base import RunContext


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


def _confirm_migration(env: Environment, plan: Plan, yes: bool, *, loaded: LoadedPlaybook,
                       rollback_of: str | None = None) -> None:
    what = (f"Finish the rollback of run {rollback_of}: back to {plan.source_mq}" if rollback_of
            else f"Migrate from {plan.source_mq} to {plan.target_mq}")
    confirm(env, "\n".join([f"{what}?", *confirmation_summary(plan, loaded), "Go ahead? [y/N] "]), yes)


def confirmation_summary(plan: Plan, loaded: LoadedPlaybook) -> list[str]:
    """One screen: which Milvus, which way, what it holds, for how long clients are cut off."""
    from urllib.parse import urlsplit

    from migrator.util.printable import one_line
    from migrator.util.redact import redact_text

    spec = loaded.spec
    runtime = spec.runtime
    where = {"systemd": "unit", "docker": "container", "compose": "service", "process": "pid file"}.get(runtime.kind)
    handle = {"unit": getattr(runtime, "unit", None), "container": getattr(runtime, "container", None),
              "service": getattr(runtime, "service", None), "pid file": getattr(runtime, "pid_file", None)
              }.get(where) if where else None
    host = urlsplit("//" + spec.milvus.uri.split("://", 1)[-1].rsplit("@", 1)[-1]).hostname or spec.milvus.uri
    collections = plan.snapshot.get("collections", []) if plan.snapshot else []
    estimate = plan.estimate or {}
    lines = [
        f"  Milvus {plan.milvus_version} at {host} ({spec.name}; {runtime.kind}"
        + (f" {where} {handle}" if handle else "") + ")",
        f"  playbook {loaded.path}",
        f"  {plan.source_mq} -> {plan.target_mq}; config edit in {plan.config_target}",
        f"  {len(collections)} collection(s), {sum(c.get('rows', 0) for c in collections)} rows, "
        f"{sum(1 for c in collections if c.get('loaded'))} loaded",
    ]
    if estimate.get("write_downtime_s") is not None:
        lines.append(f"  clients cut off: about {estimate['write_downtime_s']:.0f} s (estimate), at most "
                     f"{estimate['write_downtime_budget_s']:.0f} s (budget); a rollback is bounded by "
                     f"{estimate['rollback_budget_s']:.0f} s")
    else:
        lines.append("  clients cut off: from the first stop until the last start (no estimate in this plan)")
    migration = spec.migration
    lines.append(f"  backup: {'into ' + str(migration.backup_dir) if migration.backup else 'no'}; "
                 f"clean-up of rocksmq.path: {'yes' if migration.cleanup else 'no'}")
    return [one_line(redact_text(line)) for line in lines]


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
    if plan_path is not None:
        saved = Plan.load(plan_path)
        refuse_flags_beside_a_plan(saved, plan_path, target=target, sets=sets or {})
        loaded = operator_playbook(saved, plan_path, playbook_path)
    elif playbook_path is not None:
        saved = None
        loaded = load_playbook(playbook_path)
    else:
        raise BadInput("give a PLAN file, or --playbook to plan and apply in one go")
    return driver_for(loaded.spec).apply(env, loaded, saved, plan_path=plan_path, target=target, sets=sets or {},
                                         yes=yes, dry_run=dry_run, resume=resume,
                                         rollback_on_failure=rollback_on_failure)


def run_migration(env: Environment, loaded: LoadedPlaybook, saved: Plan | None, *, plan_path: Path | None,
                  target: str | None, sets: Mapping[str, Any], yes: bool, dry_run: bool, resume: bool,
                  rollback_on_failure: bool) -> dict[str, Any]:
    """apply where the tool drives Milvus: the engine's steps under the deployment's lock, journaled."""
    from migrator.migration.engine import run_rollback, run_steps
    from migrator.migration.steps.gate import reinstall_if_closed
    from migrator.migration.steps.pipeline import forward_steps, rollback_steps

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
            if not dry_run:
                refuse_unfinished(deployment, previous)
            plan = fresh_plan(env, loaded, plan_path, target or Mq.NATSMQ.value, sets)
            if plan_path is not None:
                # As planning now does: a Milvus that does not answer refuses the run (3) before it
                # begins, whether the plan came from a file or was made just now.
                milvus_version(deployment)
            if plan.nothing_to_do:
                return {"status": str(RunStatus.DONE), "message": "Milvus already runs on "
                                                                  f"{plan.target_mq}: nothing to do"}
            if not dry_run:
                _confirm_migration(env, plan, yes, loaded=deployment.loaded)

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

    with deployment.held(room_for=journal_size(plan)):
        if resume:
            assert journal is not None  # loaded and checked above
            journal = reread_under_lock(deployment, journal)
        else:
            reread_under_lock(deployment, previous)
            journal = Journal.create(deployment.journal_path, run_id=new_run_id(), plan=plan.to_dict())
        ctx = run_context(env, deployment, plan, journal, dry_run=False)
        env.log.info("apply.start", run_id=journal.run_id, source=plan.source_mq, target=plan.target_mq,
                     resume=resume)
        if resume:
            reinstall_if_closed(ctx)
        with journal_written(deployment), reported(env, ctx, dry_run=False) as report:
            if journal.phase == Phase.ROLLBACK:
                run_rollback(ctx, rollback_steps(ctx), env.progress)
            else:
                run_steps(ctx, forward_steps(plan, deployment.loaded.spec), rollback=rollback_steps,
                          rollback_on_failure=rollback_on_failure, progress=env.progress)
        return report


def journal_size(plan: Plan) -> int:
    import json

    return len(json.dumps(plan.to_dict()))


@contextmanager
def journal_written(deployment: Deployment) -> Iterator[None]:
    """Once a run has begun, a journal that cannot be written is no refusal (3, "nothing changed"):
    what the run did is not recorded, which needs the operator (4)."""
    from migrator.errors import CannotWrite, NotRolledBack

    try:
        yield
    except CannotWrite as error:
        raise NotRolledBack(f"{error.message}: the journal {deployment.journal_path} may not say where the "
                            "deployment stands", hint=f"free room in {deployment.journal_path.parent}, then "
                            f"`milvus-migrate status -p {deployment.loaded.path}`; check Milvus by hand") from None


def operator_playbook(plan: Plan, plan_path: Path, playbook_path: Path | None) -> LoadedPlaybook:
    """The playbook apply acts through, which is always the operator's: `--playbook`, or else the
    one the plan names, when it is still the file the plan was made from (its sha256) and no user
    but root and the caller could have written it. A plan is data: it never chooses the commands
    root runs. Refused (3) before anything runs otherwise."""
    from migrator.util.paths import writable_by_others

    if playbook_path is not None:
        loaded = load_playbook(playbook_path)
        if loaded.sha256 != plan.playbook_sha256:
            raise Refused(f"{plan_path} was not made from --playbook {playbook_path} (the plan names "
                          f"{plan.playbook_path}; its recorded sha256 differs), or the playbook changed since",
                          hint=f"make a new plan: `milvus-migrate plan --playbook {playbook_path} --out PLAN`")
        return loaded
    loaded = load_playbook(Path(plan.playbook_path))
    if loaded.sha256 != plan.playbook_sha256:
        raise Refused(f"the plan is stale: the playbook {plan.playbook_path} changed since it was made",
                      hint="make a new plan with `milvus-migrate plan`")
    foreign = writable_by_others(loaded.path)
    if foreign:
        raise Refused(f"{plan_path} names the playbook {loaded.path}, which another user could have written "
                      f"({foreign}): the tool takes no commands from it",
                      hint=f"if it is yours, pass it yourself: `milvus-migrate apply {plan_path} --playbook PLAYBOOK`")
    return loaded


def refuse_unfinished(deployment: Deployment, journal: Journal | None) -> None:
    if journal is not None and journal.status in UNFINISHED:
        raise Refused(f"an earlier migration is {journal.status} ({deployment.journal_path})",
                      hint=f"`milvus-migrate apply --resume -p {deployment.loaded.path}` continues it, "
                           f"`milvus-migrate rollback -p {deployment.loaded.path}` undoes it")


@overload
def reread_under_lock(deployment: Deployment, seen: Journal) -> Journal: ...
@overload
def reread_under_lock(deployment: Deployment, seen: None) -> None: ...
def reread_under_lock(deployment: Deployment, seen: Journal | None) -> Journal | None:
    """The journal read again once the lock is held: between the first read and the lock (a prompt
    waits for a person) another apply or rollback may have started, stopped or finished, and its
    journal must never be replaced or continued from a stale copy. Refused (3) when it changed."""
    now = Journal.load(deployment.journal_path)
    def identity(journal: Journal | None) -> tuple[str, RunStatus, str | None] | None:
        return None if journal is None else (journal.run_id, journal.status, journal.ended_at)

    if identity(now) != identity(seen):
        refuse_unfinished(deployment, now)
        raise Refused(f"{deployment.journal_path} changed while this command waited for the lock "
                      "(another apply or rollback ran meanwhile)",
                      hint=f"`milvus-migrate status -p {deployment.loaded.path}` says where it stands; then run again")
    return now


def refuse_flags_beside_a_plan(plan: Plan, plan_path: Path, *, target: str | None, sets: Mapping[str, Any]) -> None:
    """A saved plan fixed the target and the settings: a flag saying otherwise is a mistake to
    point out, not a wish to ignore (exit 2)."""
    if target is not None and target != plan.target_mq:
        raise BadInput(f"--to {target}: {plan_path} migrates to {plan.target_mq}",
                       hint=f"make a new plan with `milvus-migrate plan --to {target} --out ...`")
    if sets:
        raise BadInput(f"--set {', '.join(sets)}: {plan_path} already fixed its settings",
                       hint="make a new plan with those --set flags, then apply it")


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
def reported(env: Environment, ctx: RunContext, *, dry_run: bool) -> Iterator[dict[str, Any]]:
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


def _keep_client_view(ctx: RunContext, view: ClientView | None, *, drop: bool = False) -> None:
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


def finish(env: Environment, ctx: RunContext, *, dry_run: bool) -> dict[str, Any]:
    """The run's report, written to <state_dir>/reports/ unless this was a dry run."""
    from migrator.errors import CannotWrite
    from migrator.migration.report import build_report, write_report

    report = build_report(ctx.journal, dry_run=dry_run)
    if not dry_run:
        try:
            json_path, md_path = write_report(report, ctx.state_dir)
        except CannotWrite as error:  # the run's outcome stands; only its report is missing
            env.log.warning("report.not_written", reason=error.message)
        else:
            report["report_files"] = [str(json_path), str(md_path)]
    env.log.info("apply.end", status=report["status"], write_downtime_s=report["write_downtime_s"],
                 report_files=report.get("report_files"))
    return report


def rollback(env: Environment, playbook_path: Path, *, yes: bool = False) -> dict[str, Any]:
    """A finished migration: migrate back. A failed or interrupted one: finish its rollback."""
    from migrator.migration.engine import run_rollback
    from migrator.migration.steps.gate import reinstall_if_closed
    from migrator.migration.steps.pipeline import rollback_steps

    deployment = open_deployment(env, playbook_path)
    journal = deployment.journal()
    if journal is None or journal.status == RunStatus.ROLLED_BACK:
        return {"status": "nothing to roll back"}
    plan = recorded_plan(journal)
    if journal.status == RunStatus.DONE:
        return apply(env, playbook_path=playbook_path, target=plan.source_mq, yes=yes)
    check_recorded_run(journal, plan, deployment.loaded)
    _confirm_migration(env, plan, yes, loaded=deployment.loaded, rollback_of=journal.run_id)
    with deployment.held(room_for=journal_size(plan)):
        journal = reread_under_lock(deployment, journal)
        ctx = run_context(env, deployment, plan, journal, dry_run=False)
        reinstall_if_closed(ctx)
        with journal_written(deployment), reported(env, ctx, dry_run=False) as report:
            run_rollback(ctx, rollback_steps(ctx), env.progress)
        return report

