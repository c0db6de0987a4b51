"""healthy: healthz on the metrics port says OK."""

from __future__ import annotations

from migrator.migration.steps.base import RunContext


def healthy(ctx: RunContext) -> str:
    return f"healthz OK after {ctx.runtime.wait_healthy(ctx.deadlines.start_s):.1f} s"
