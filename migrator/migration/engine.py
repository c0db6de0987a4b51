"""Runs the steps: journal after each, one dry-run gate, rollback by itself after a failure.

A failure once a step with side effects has started rolls back unless told not to, with the
rollback steps the caller gives (steps/pipeline.py builds them from the journal). Ctrl-C or
SIGTERM saves the journal and exits 130; `apply --resume` continues. Once clients are cut off,
each step runs under what is left of the write-downtime budget, and the rollback under a bound
of its own (migration/budget.py).
"""

from __future__ import annotations

import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from migrator.errors import (
    Interrupted,
    MigrateError,
    NotRolledBack,
    Refused,
    RolledBack,
)
from migrator.migration.budget import ROLLBACK, BudgetSpent, budget_for
from migrator.migration.dryrun import check_step
from migrator.migration.journal import Phase, RunStatus, StepState
from migrator.migration.steps.base import RunContext, Step
from migrator.migration.steps.gate import ensure_gate_holds

RollbackSteps = Callable[[RunContext], list[Step]]


class Progress(Protocol):
    """Who hears about each step as it starts and ends (the CLI's display; see cli/progress.py)."""

    def start(self, number: int, total: int, step: Step) -> None: ...

    def end(self, step: Step, summary: str, seconds: float) -> None: ...


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd, a CI timeout, kill) takes the same path as Ctrl-C: journal saved, exit 130."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_steps(ctx: RunContext, steps: list[Step], *, rollback: RollbackSteps, rollback_on_failure: bool = True,
              progress: Progress | None = None) -> None:
    """The migration's steps, in order, skipping those the journal has as done."""
    _run(ctx, steps, phase=Phase.APPLY, status=RunStatus.RUNNING, progress=progress,
         on_failure=lambda step, error, message: _after_failure(ctx, steps, step, error, message, rollback,
                                                                rollback_on_failure, progress))
    ctx.journal.set_status(RunStatus.DONE)


def _run(ctx: RunContext, steps: list[Step], *, phase: Phase, status: RunStatus, progress: Progress | None,
         on_failure: Callable[[Step, Exception, str], None]) -> None:
    journal, log = ctx.journal, ctx.env.log
    # The phase tells `apply --resume` whether to go on forward or to finish a rollback.
    journal.set_status(status, phase=phase)
    current = "between steps"
    try:
        with sigterm_as_interrupt():
            for number, step in enumerate(steps, 1):
                if journal.is_done(step.id):
                    continue
                current = step.id
                _set_budget(ctx, phase)
                _run_one(ctx, step, number, len(steps), on_failure, progress)
                current = "between steps"
    except KeyboardInterrupt:
        # A signal inside a step is journaled by _run_one; this one landed between steps.
        if journal.status != RunStatus.INTERRUPTED:
            journal.set_status(RunStatus.INTERRUPTED, error=f"interrupted during {current}")
            log.warning("apply.interrupted", step=current, phase=phase)
        raise Interrupted(f"interrupted during {current}; the journal is saved",
                          hint="continue with `milvus-migrate apply --resume`, or undo with "
                          "`milvus-migrate rollback`") from None


def _set_budget(ctx: RunContext, phase: Phase) -> None:
    """The budget the next step runs under; said once, when it starts counting."""
    budget = None if ctx.dry_run else budget_for(phase, ctx.journal.marks,
                                                  getattr(ctx.plan, "estimate", None) or {}, ctx.run_started_at)
    if budget is not None and budget != ctx.budget and budget.what != ROLLBACK:
        ctx.env.log.warning("budget.start", budget=budget.what, seconds=budget.seconds,
                            left_s=round(budget.left(), 1), until=_clock(budget.until()))
    ctx.budget = budget


def _clock(unix: float) -> str:
    """Local time with its offset: the operator reads it at a terminal, a fleet parses it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(unix))


def _run_one(ctx: RunContext, step: Step, number: int, total: int, on_failure: Callable[[Step, Exception, str], None],
             progress: Progress | None) -> None:
    journal, log = ctx.journal, ctx.env.log
    started = time.monotonic()
    journal.begin(step.id)
    log.info("step.start", step=step.id, number=number, total=total, dry_run=ctx.dry_run)
    if progress:
        progress.start(number, total, step)
    try:
        if ctx.budget is not None:
            ctx.budget.check(step.id)
        if step.behind_gate:
            ensure_gate_holds(ctx, step.id)
        # Under --dry-run a step with side effects only has what it would do checked (migration/dryrun.py).
        summary = check_step(ctx, step) if ctx.dry_run and step.side_effects else step.do(ctx)
    except KeyboardInterrupt:
        seconds = time.monotonic() - started
        journal.fail(step.id, seconds, "interrupted", state=StepState.INTERRUPTED)
        journal.set_status(RunStatus.INTERRUPTED, error=f"interrupted during {step.id}")
        log.warning("step.interrupted", step=step.id, seconds=round(seconds, 2))
        raise
    except Exception as error:  # every failure is journaled, then handled once
        seconds = time.monotonic() - started
        message = error.message if isinstance(error, MigrateError) else f"{type(error).__name__}: {error}"
        if ctx.budget is not None and ctx.budget.left() <= 0 and not isinstance(error, BudgetSpent):
            # Its deadlines were cut to the budget: that, not the deadline in the playbook, ended it.
            message += f" (the {ctx.budget.what} budget of {ctx.budget.seconds:.0f} s is spent)"
        journal.fail(step.id, seconds, message)
        log.error("step.failed", step=step.id, seconds=round(seconds, 2), error=message)
        if ctx.env.verbose:
            ctx.env.stderr.write(traceback.format_exc())
        if progress:
            progress.end(step, f"FAILED: {message}", seconds)
        on_failure(step, error, message)
        raise  # on_failure raises its own error; this only keeps a broken one from going on
    seconds = time.monotonic() - started
    journal.finish(step.id, seconds, summary)
    log.info("step.end", step=step.id, seconds=round(seconds, 2), summary=summary)
    if progress:
        progress.end(step, summary or "done", seconds)


def _after_failure(ctx: RunContext, steps: list[Step], step: Step, error: Exception, message: str,
                   rollback: RollbackSteps, rollback_on_failure: bool, progress: Progress | None) -> None:
    # The deployment differs from where it started once any step with side effects has started.
    changed = any(ctx.journal.started(s.id) for s in steps if s.side_effects)
    if not changed or ctx.dry_run:
        ctx.journal.set_status(RunStatus.ROLLED_BACK, error=f"{step.id}: {message}")
        if isinstance(error, Refused):  # preflight said no: exit 3, as a refused plan does
            raise Refused(f"{step.id}: {message}; nothing was changed")
        raise RolledBack(f"{step.id} failed: {message}; nothing had been changed")
    if step.after_switch:
        ctx.journal.set_status(RunStatus.FAILED, error=f"{step.id}: {message}")
        raise NotRolledBack(f"{step.id} failed: {message}; the migration to {ctx.plan.target_mq} itself is done and "
                            "verified, and clients are back: nothing was rolled back",
                            hint="fix the cause, then `milvus-migrate apply --resume` runs what is left")
    if not rollback_on_failure:
        ctx.journal.set_status(RunStatus.FAILED, error=f"{step.id}: {message}")
        raise NotRolledBack(f"{step.id} failed: {message}; left as is (--no-rollback)",
                            hint="see `milvus-migrate status`; then `milvus-migrate apply --resume` "
                            "or `milvus-migrate rollback`")
    try:
        run_rollback(ctx, rollback(ctx), progress)
    except MigrateError as error:
        ctx.journal.set_status(RunStatus.FAILED, error=f"{step.id}: {message}; rollback failed: {error.message}")
        raise NotRolledBack(f"{step.id} failed: {message}; the automatic rollback failed too: {error.message}",
                            hint="see `milvus-migrate status`; fix the cause, then `milvus-migrate rollback`"
                            ) from error
    raise RolledBack(f"{step.id} failed: {message}; rolled back to {ctx.plan.source_mq}, clients back")


def run_rollback(ctx: RunContext, steps: list[Step], progress: Progress | None = None) -> None:
    """Back to the source MQ, resumable like the migration itself. Each run of a rollback has its
    own bound, counted from its start and said before its first step."""

    def failed(step: Step, error: Exception, message: str) -> None:
        raise NotRolledBack(f"rollback step {step.id} failed: {message}",
                            hint="see `milvus-migrate status`; fix the cause, then `milvus-migrate rollback`")

    ctx.journal.mark("rollback_started_at", time.time())
    bound = budget_for(Phase.ROLLBACK, ctx.journal.marks, getattr(ctx.plan, "estimate", None) or {},
                       ctx.run_started_at)
    ctx.env.log.warning("rollback.start", source=ctx.plan.source_mq, target=ctx.plan.target_mq,
                        bound_s=bound.seconds if bound else None,
                        ends_by=_clock(bound.until()) if bound else None)
    _run(ctx, steps, phase=Phase.ROLLBACK, status=RunStatus.ROLLING_BACK, progress=progress, on_failure=failed)
    ctx.journal.set_status(RunStatus.ROLLED_BACK)
    ctx.env.log.warning("rollback.done", mq=ctx.plan.source_mq)
