"""preflight: the plan's rules that can change between plan and apply, against the deployment now."""

from __future__ import annotations

from migrator.errors import Refused
from migrator.migration import preflight
from migrator.migration.steps.base import RunContext


def preflight_step(ctx: RunContext) -> str:
    with ctx.milvus() as milvus:
        version = milvus.version()
    configured = ctx.effective().mq_type()
    problems = preflight.recheck(version, configured, ctx.plan.source_mq, ctx.plan.target_mq)
    if problems:
        raise Refused("preflight: " + "; ".join(finding.message for finding in problems))
    return f"Milvus {version} reachable, configured for {configured}"
