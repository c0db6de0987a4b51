"""The report of a run: JSON (for machines, fleets) and Markdown (for people)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.migration.journal import Journal, write_json_atomic
from migrator.util.files import write_bytes_atomic
from migrator.util.redact import redact, redact_text


def build_report(journal: Journal, *, dry_run: bool = False) -> dict[str, Any]:
    plan = journal.data["plan"]
    marks = journal.data.get("marks", {})
    downtime = None
    if "deny_at" in marks and "allow_at" in marks:
        downtime = round(marks["allow_at"] - marks["deny_at"], 2)
    verify = journal.recall("verify", "counts") or {}
    before = (journal.recall("snapshot", "snapshot") or plan["snapshot"])["collections"]
    return redact({
        "run_id": journal.data["run_id"],
        "dry_run": dry_run,
        "status": journal.status,
        "error": journal.data.get("error"),
        "playbook": plan["playbook_path"],
        "milvus_version": plan["milvus_version"],
        "from": plan["source_mq"],
        "to": plan["target_mq"],
        "started_at": journal.data["started_at"],
        "ended_at": journal.data.get("ended_at"),
        "write_downtime_s": downtime,
        "restart_to_all_loaded_strong_s": verify.get("restart_to_all_strong_s"),
        "steps": [
            {"id": step_id, "state": entry.get("state"), "seconds": entry.get("seconds"),
             "summary": entry.get("summary") or entry.get("error")}
            for step_id, entry in journal.data["steps"].items()
        ],
        "counts": [
            {"collection": c["key"], "loaded": c["loaded"], "before": c["rows"],
             "after": verify.get("collections", {}).get(c["key"], {}).get("rows")}
            for c in before
        ],
        "findings": plan.get("findings", []),
        "config_diff": plan.get("config_diff", ""),
    })


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# milvus-migrate report {report['run_id']}{' (dry run)' if report['dry_run'] else ''}",
        "",
        f"- {report['from']} -> {report['to']} on Milvus {report['milvus_version']} ({report['playbook']})",
        f"- status: **{report['status']}**" + (f" ({report['error']})" if report.get("error") else ""),
        f"- write-downtime (deny to allow): {_seconds(report['write_downtime_s'])}",
        f"- restart until every loaded collection answers a Strong query: "
        f"{_seconds(report['restart_to_all_loaded_strong_s'])}",
        "",
        "| step | state | seconds | what happened |",
        "|---|---|---:|---|",
    ]
    for step in report["steps"]:
        summary = (step["summary"] or "").replace("\n", " ").replace("|", "\\|")
        lines.append(f"| {step['id']} | {step['state']} | {_seconds(step['seconds'], unit='')} | {summary} |")
    lines += ["", "| collection | loaded | rows before | rows after |", "|---|---|---:|---:|"]
    for count in report["counts"]:
        after = "-" if count["after"] is None else count["after"]
        lines.append(f"| {count['collection']} | {'yes' if count['loaded'] else 'no'} | {count['before']} | {after} |")
    findings = [f for f in report["findings"] if f["level"] != "info"]
    if findings:
        lines += ["", "Findings:"] + [f"- {f['level']}: {f['key']}: {f['message']}" for f in findings]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None, unit: str = " s") -> str:
    return "-" if value is None else f"{value:.1f}{unit}"


def write_report(report: dict[str, Any], state_dir: Path) -> tuple[Path, Path]:
    directory = state_dir / "reports"
    json_path = directory / f"{report['run_id']}.json"
    md_path = directory / f"{report['run_id']}.md"
    # Both 0600 and replaced atomically: a planted symlink is replaced, never written through.
    write_json_atomic(json_path, report)
    write_bytes_atomic(md_path, redact_text(render_markdown(report)).encode("utf-8"))
    return json_path, md_path
