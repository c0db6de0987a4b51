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
    if "clients_off_at" in marks and "clients_back_at" in marks:
        downtime = round(marks["clients_back_at"] - marks["clients_off_at"], 2)
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
        "clients": clients_saw(marks.get("client_view", [])),
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


def clients_saw(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """The client view of every process of the run, added up (migration/clientview.py)."""
    if not segments:
        return {}
    refused: dict[str, int] = {}
    for segment in segments:
        for kind, count in segment.get("refused", {}).items():
            refused[kind] = refused.get(kind, 0) + count
    froms = [s["refused_from"] for s in segments if s.get("refused_from")]
    untils = [s["refused_until"] for s in segments if s.get("refused_until")]
    gaps = [s["seconds_without_an_acknowledged_write"] for s in segments
            if s.get("seconds_without_an_acknowledged_write") is not None]
    return {"writes": sum(s.get("writes", 0) for s in segments),
            "acknowledged": sum(s.get("acknowledged", 0) for s in segments), "refused": refused,
            "refused_from": min(froms) if froms else None, "refused_until": max(untils) if untils else None,
            "seconds_without_an_acknowledged_write": max(gaps) if gaps else None}


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# milvus-migrate report {report['run_id']}{' (dry run)' if report['dry_run'] else ''}",
        "",
        f"- {report['from']} -> {report['to']} on Milvus {report['milvus_version']} ({report['playbook']})",
        f"- status: **{report['status']}**" + (f" ({report['error']})" if report.get("error") else ""),
        f"- write-downtime (clients cut off to a write acknowledged again): {_seconds(report['write_downtime_s'])}",
        f"- restart until every loaded collection answers a Strong query: "
        f"{_seconds(report['restart_to_all_loaded_strong_s'])}",
        *_clients_lines(report.get("clients") or {}),
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


def _clients_lines(clients: dict[str, Any]) -> list[str]:
    if not clients:
        return []
    refused = ", ".join(f"{count} {kind}" for kind, count in sorted(clients["refused"].items())) or "none"
    line = (f"- what a client saw (a write every 0.5 s through the public port): {clients['acknowledged']} of "
            f"{clients['writes']} writes acknowledged; refused: {refused}")
    if clients.get("refused_from"):
        line += f"; refused from {clients['refused_from']} to {clients['refused_until']}"
    if clients.get("seconds_without_an_acknowledged_write") is not None:
        line += f" ({clients['seconds_without_an_acknowledged_write']:.1f} s without an acknowledged write)"
    return [line]


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
