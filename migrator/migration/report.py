"""The report of a run: JSON (for machines, fleets) and Markdown (for people)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.migration.journal import ClientViewSegment, Journal, write_json_atomic
from migrator.util.files import child_path, write_bytes_atomic
from migrator.util.redact import redact, redact_text


def build_report(journal: Journal, *, dry_run: bool = False) -> dict[str, Any]:
    plan = journal.plan
    marks = journal.marks
    downtime = None
    if marks.clients_off_at is not None and marks.clients_back_at is not None:
        downtime = round(marks.clients_back_at - marks.clients_off_at, 2)
    verify = journal.recall("verify", "counts") or {}
    before = (journal.recall("snapshot", "snapshot") or plan["snapshot"])["collections"]
    return redact({
        "run_id": journal.run_id,
        "dry_run": dry_run,
        "status": str(journal.status),
        "error": journal.error,
        "playbook": plan["playbook_path"],
        "milvus_version": plan["milvus_version"],
        "from": plan["source_mq"],
        "to": plan["target_mq"],
        "started_at": journal.started_at,
        "ended_at": journal.ended_at,
        "write_downtime_s": downtime,
        "clients": clients_saw(marks.client_view),
        "restart_to_all_loaded_strong_s": verify.get("restart_to_all_strong_s"),
        "steps": [
            {"id": step_id, "state": str(entry.state), "seconds": entry.seconds,
             "summary": entry.summary or entry.error}
            for step_id, entry in journal.steps.items()
        ],
        "counts": [
            {"collection": c["key"], "loaded": c["loaded"], "before": c["rows"],
             "after": verify.get("collections", {}).get(c["key"], {}).get("rows")}
            for c in before
        ],
        "findings": plan.get("findings", []),
        "config_diff": plan.get("config_diff", ""),
    })


def clients_saw(segments: list[ClientViewSegment]) -> dict[str, Any]:
    """The client view of every process of the run, added up (migration/clientview.py)."""
    if not segments:
        return {}
    refused: dict[str, int] = {}
    for segment in segments:
        for kind, count in segment.refused.items():
            refused[kind] = refused.get(kind, 0) + count
    froms = [s.refused_from for s in segments if s.refused_from]
    untils = [s.refused_until for s in segments if s.refused_until]
    gaps = [s.seconds_without_an_acknowledged_write for s in segments
            if s.seconds_without_an_acknowledged_write is not None]
    return {"writes": sum(s.writes for s in segments),
            "acknowledged": sum(s.acknowledged for s in segments), "refused": refused,
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
    json_path = child_path(directory, f"{report['run_id']}.json", what="run_id")
    md_path = child_path(directory, f"{report['run_id']}.md", what="run_id")
    # Both 0600 and replaced atomically: a planted symlink is replaced, never written through.
    write_json_atomic(json_path, report)
    write_bytes_atomic(md_path, redact_text(render_markdown(report)).encode("utf-8"))
    return json_path, md_path
