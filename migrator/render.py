"""Text renderings of plans, reports and status for a terminal (JSON output needs none)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.plan import Plan


def render_plan(plan: Plan, out: Path | None) -> str:
    lines = [f"plan: {plan.source_mq} -> {plan.target_mq} on Milvus {plan.milvus_version} ({plan.playbook_path})"]
    if plan.nothing_to_do:
        lines.append(f"Milvus already runs on {plan.target_mq}: nothing to do")
    lines.append("")
    for number, step in enumerate(plan.steps, 1):
        lines.append(f"  {number:2}. {step.id:15} {step.description}")
    kubernetes = plan.facts.get("kubernetes")
    if kubernetes:
        lines += ["", *_kubernetes_change(kubernetes), ""]
    else:
        lines += ["", f"config change ({plan.config_target}):", plan.config_diff.rstrip() or "  (none)", ""]
    if plan.snapshot:
        snap = plan.snapshot["collections"]
        lines.append(f"collections: {len(snap)}, rows: {sum(c['rows'] for c in snap)}, "
                     f"loaded: {sum(1 for c in snap if c['loaded'])}")
    estimate = plan.estimate
    if estimate:
        lines.append(f"write-downtime estimate: ~{estimate['write_downtime_typical_s']} s typical, "
                     f"{estimate['write_downtime_bound_s']:.0f} s at most (deadlines)")
    for finding in plan.findings:
        lines.append(f"{finding.level}: {finding.key}: {finding.message}")
    if out is not None:
        lines.append(f"\nplan written to {out}; apply it with `milvus-migrate apply {out}`")
        if kubernetes:
            lines.append(f"the change's files are written in {kubernetes['out_dir']}; apply runs the commands "
                         "only with runtime.run_kubectl: true, otherwise it prints them for you to run")
    return "\n".join(lines)


def _kubernetes_change(kubernetes: dict[str, Any]) -> list[str]:
    """The Helm values or operator CR patch, then the commands that roll it out."""
    lines = [f"{kubernetes['manager']} change (Milvus's config is not edited here; the {kubernetes['manager']} "
             "rollout restarts the pod):"]
    for name, text in kubernetes["files"].items():
        lines.append(f"  {kubernetes['out_dir']}/{name}:")
        lines += ["    " + line for line in text.splitlines()]
    lines.append("  then run:")
    lines += ["    " + " ".join(argv) for argv in kubernetes["commands"]]
    return lines


def render_report(report: dict[str, Any]) -> str:
    if "steps" not in report:
        return report.get("message") or report.get("status", "")
    from migrator.report import render_markdown

    text = render_markdown(report)
    if report.get("report_files"):
        text += f"\nreport: {', '.join(report['report_files'])}"
    return text


def render_status(result: dict[str, Any]) -> str:
    lines = [f"{key}: {result[key]}" for key in ("status", "run_id", "direction", "error", "mq_type_configured",
                                                 "writes_denied", "writes_denied_source", "milvus_running",
                                                 "lock_holder", "next") if result.get(key) is not None]
    for step in result.get("steps", []):
        seconds = "" if step["seconds"] is None else f" {step['seconds']:.1f}s"
        lines.append(f"  {step['id']:22} {step['state']:12}{seconds}  {step['summary'] or ''}")
    return "\n".join(lines)
