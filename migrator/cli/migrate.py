"""plan, apply, status, rollback, verify: the migration's commands (thin: parse, call, render)."""

from __future__ import annotations

from pathlib import Path

import typer

from migrator.mq import Mq

PlaybookOption = typer.Option(..., "--playbook", "-p", help="The deployment's playbook (playbooks/*.yaml).")
TargetOption = typer.Option(None, "--to", help="Target MQ: natsmq (the default) or rocksmq.")
SetOption = typer.Option(None, "--set", help="natsmq.server.KEY=VALUE for the NATS target (repeatable).")

# Examples under each command's help; "\b" keeps click from re-flowing the lines.
PLAN_EXAMPLES = """Examples:

\b
  milvus-migrate plan -p playbooks/systemd.yaml --out plan.json
  milvus-migrate plan -p playbooks/systemd.yaml --set natsmq.server.port=4223 --out plan.json
  milvus-migrate plan -p playbooks/systemd.yaml --to rocksmq      # back, before Milvus 2.6
  milvus-migrate plan -p playbooks/systemd.yaml --output json     # for a script (exit 3: refused)
"""

APPLY_EXAMPLES = """Examples:

\b
  milvus-migrate apply plan.json --dry-run    # rehearse: read-only checks run, nothing changes
  milvus-migrate apply plan.json              # asks before it starts; --yes does not ask
  milvus-migrate apply -p playbooks/systemd.yaml --yes --output json
  milvus-migrate apply --resume -p playbooks/systemd.yaml   # after a crash, kill -9 or Ctrl-C

\b
Exit: 0 done, 1 failed and rolled back, 2 bad input, 3 refused (nothing changed),
4 failed and NOT rolled back (see `status`), 130 interrupted (`apply --resume`).
"""

STATUS_EXAMPLES = """Examples:

\b
  milvus-migrate status -p playbooks/systemd.yaml
  milvus-migrate status -p playbooks/systemd.yaml --output json   # cron: exit 4 needs you

\b
Exit: 0 nothing to do (or a run in progress); 4 the last run failed or is unfinished,
writes are still denied, or Milvus is not running (`next` says what to run); 3 could not
tell (etcd, runtime).
"""

ROLLBACK_EXAMPLES = """Examples:

\b
  milvus-migrate rollback -p playbooks/systemd.yaml          # asks first
  milvus-migrate rollback -p playbooks/systemd.yaml --yes    # a done run: migrates back
"""


def register(app: typer.Typer) -> None:
    @app.command("plan", epilog=PLAN_EXAMPLES)
    def plan_command(
        ctx: typer.Context,
        playbook: Path = PlaybookOption,
        to: str | None = TargetOption,
        set_: list[str] | None = SetOption,
        out: Path | None = typer.Option(None, "--out", help="Write the plan (JSON) here."),
    ) -> None:
        """Read-only: gather facts, run every preflight rule, show the steps and the config diff."""
        from migrator.cli.render import render_plan
        from migrator.errors import Refused
        from migrator.verbs.plan import parse_sets
        from migrator.verbs.plan import plan as make_plan

        env = ctx.obj
        plan = make_plan(env, playbook, target=to or Mq.NATSMQ.value, sets=parse_sets(set_ or []), out=out)
        env.emit(plan.to_dict(), render_plan(plan, out))
        if plan.errors:
            raise Refused(f"preflight found {len(plan.errors)} problem(s); see the findings above",
                          hint="fix them and plan again; nothing was changed")

    @app.command("apply", epilog=APPLY_EXAMPLES)
    def apply_command(
        ctx: typer.Context,
        plan_file: Path | None = typer.Argument(None, help="A plan from `milvus-migrate plan --out`."),
        playbook: Path | None = typer.Option(None, "--playbook", "-p", help="Plan and apply in one go."),
        to: str | None = TargetOption,
        set_: list[str] | None = SetOption,
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Rehearse: read-only checks run, nothing changes."),
        resume: bool = typer.Option(False, "--resume", help="Continue the migration in the journal."),
        no_rollback: bool = typer.Option(False, "--no-rollback", help="On failure leave it for the operator (exit 4)."),
    ) -> None:
        """Run the migration: restarts with clients isolated, FlushAll, the switch, proof, clients back."""
        from migrator.cli.render import render_report
        from migrator.verbs.apply import apply
        from migrator.verbs.plan import parse_sets

        env = ctx.obj
        report = apply(env, plan_path=plan_file, playbook_path=playbook, target=to, sets=parse_sets(set_ or []),
                       yes=yes, dry_run=dry_run, resume=resume, rollback_on_failure=not no_rollback)
        env.emit(report, render_report(report))

    @app.command("status", epilog=STATUS_EXAMPLES)
    def status_command(ctx: typer.Context, playbook: Path = PlaybookOption) -> None:
        """Where a migration stands (the journal), and whether clients can write now."""
        from migrator.cli.render import render_status
        from migrator.errors import NotRolledBack
        from migrator.verbs.status import needs_operator, status

        env = ctx.obj
        result = status(env, playbook)
        env.emit(result, render_status(result))
        problem = needs_operator(result)
        if problem:
            raise NotRolledBack(problem, hint=result.get("next"))

    @app.command("rollback", epilog=ROLLBACK_EXAMPLES)
    def rollback_command(
        ctx: typer.Context,
        playbook: Path = PlaybookOption,
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    ) -> None:
        """Back to the MQ the last migration started from (finished, failed or interrupted)."""
        from migrator.cli.render import render_report
        from migrator.verbs.apply import rollback

        env = ctx.obj
        report = rollback(env, playbook, yes=yes)
        env.emit(report, render_report(report))

    @app.command("verify")
    def verify_command(ctx: typer.Context, playbook: Path = PlaybookOption) -> None:
        """The post-migration checks on their own (for cron or CI); exit 4 when one fails, 3 when
        Milvus cannot be reached."""
        from migrator.cli.render import render_verify
        from migrator.errors import NotRolledBack
        from migrator.verbs.verify import verify

        env = ctx.obj
        result = verify(env, playbook)
        env.emit(result, render_verify(result))
        if not result["ok"]:
            raise NotRolledBack("verify found rows or collections missing since the migration",
                                hint="the report of the migration has the counts it saw; "
                                     "docs/troubleshooting.md says what to check")
