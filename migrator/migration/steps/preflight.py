"""preflight: the plan's rules that can change between plan and apply, against the deployment now."""

from __future__ import annotations

from migrator.errors import NotRolledBack, Refused
from migrator.migration import preflight
from migrator.migration.steps.base import RunContext


class OverBudget(NotRolledBack):
    """The plan's estimate does not fit the write-downtime budget: stopped before the first stop."""


def preflight_step(ctx: RunContext) -> str:
    estimate = getattr(ctx.plan, "estimate", None) or {}
    seconds, budget = estimate.get("write_downtime_s"), estimate.get("write_downtime_budget_s")
    if seconds is not None and budget is not None and seconds > budget:
        raise OverBudget(f"the estimated write-downtime, {seconds:.0f} s, exceeds the budget of {budget:.0f} s",
                         hint="raise migration.write_downtime_budget_s in the playbook (or leave it out for one "
                         "from the estimate), then plan again")
    with ctx.milvus() as milvus:
        version = milvus.version()
    configured = ctx.effective().mq_type()
    problems = preflight.recheck(version, configured, ctx.plan.source_mq, ctx.plan.target_mq)
    if problems:
        raise Refused("preflight: " + "; ".join(finding.message for finding in problems))
    return f"Milvus {version} reachable, configured for {configured}"
