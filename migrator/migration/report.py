"""The report of a run: JSON (for machines, fleets) and Markdown (for people)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.migration.journal import ClientViewSegment, Journal, RunStatus, StepState, write_json_atomic
from migrator.migration.steps.pipeline import snapshot_step
from migrator.util.files import child_path, write_bytes_atomic
from migrator.util.printable import one_line
from migrator.util.redact import redact, redact_text


def build_report(journal: Journal, *, dry_run: bool = False) -> dict[str, Any]:
    plan = journal.plan
    marks = journal.marks
    downtime = None
    if marks.clients_off_at is not None and marks.clients_back_at is not None:
        downtime = round(marks.clients_back_at - marks.clients_off_at, 2)
    read_downtime = None
    if marks.clients_off_at is not None and marks.all_readable_at is not None:
        read_downtime = round(marks.all_readable_at - marks.clients_off_at, 2)
    verify = journal.recall("verify", "counts") or {}  # behind port isolation: Strong counts
    stored = journal.recall("verify", "stored") or {}  # behind the firewall gate: datacoord's stored rows
    status, checked = str(journal.status), {}
    if dry_run:  # nothing ran: a step passed its checks, the run is a dry run, whatever the journal says
        status = "dry-run" if journal.status == RunStatus.DONE else "dry-run refused"
        checked = {StepState.DONE: "checked"}
    before = (journal.recall(snapshot_step(plan.get("gate")).step_id, "snapshot") or plan["snapshot"])["collections"]
    gate = plan.get("gate") or {}
    return redact({
        "run_id": journal.run_id,
        "dry_run": dry_run,
        "status": status,
        "error": journal.error,
        "playbook": plan["playbook_path"],
        "milvus_version": plan["milvus_version"],
        "source_mq": plan["source_mq"],
        "target_mq": plan["target_mq"],
        "started_at": journal.started_at,
        "ended_at": journal.ended_at,
        "write_downtime_s": downtime,
        "read_downtime_s": read_downtime,
        "gate": {"kind": gate.get("kind", "isolation"), "why": gate.get("why", "")},
        "clients": clients_saw(marks.client_view),
        "restart_to_all_loaded_strong_s": verify.get("restart_to_all_strong_s"),
        "steps": [
            {"id": step_id, "state": checked.get(entry.state, str(entry.state)), "seconds": entry.seconds,
             "summary": entry.summary or entry.error}
            for step_id, entry in journal.steps.items()
        ],
        "counts": [
            {"collection": c["key"], "loaded": c["loaded"], "before": c["rows"],
             "after": stored.get(c["key"], verify.get("collections", {}).get(c["key"], {}).get("rows"))}
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
    """The report for people: every value it quotes on one line, control characters escaped
    (util/printable.py), on screen and in the .md file alike."""
    lines = [
        f"# milvus-migrate report {one_line(report['run_id'])}{' (dry run)' if report['dry_run'] else ''}",
        "",
        f"- {report['source_mq']} -> {report['target_mq']} on Milvus {one_line(report['milvus_version'])} "
        f"({one_line(report['playbook'])})",
        f"- status: **{report['status']}**" + (f" ({one_line(report['error'])})" if report.get("error") else ""),
        f"- clients kept away by: {report['gate']['kind']} ({one_line(report['gate']['why'])})",
        f"- write-downtime (clients cut off to a write acknowledged again): {_seconds(report['write_downtime_s'])}",
        f"- read-downtime (clients cut off to every loaded collection answering a search again): "
        f"{_seconds(report['read_downtime_s'])}",
        *_clients_lines(report.get("clients") or {}),
        "",
        "| step | state | seconds | what happened |",
        "|---|---|---:|---|",
    ]
    for step in report["steps"]:
        lines.append(f"| {_cell(step['id'])} | {_cell(step['state'])} | {_seconds(step['seconds'], unit='')} | "
                     f"{_cell(step['summary'] or '')} |")
    lines += ["", "| collection | loaded | rows before | rows after |", "|---|---|---:|---:|"]
    for count in report["counts"]:
        after = "-" if count["after"] is None else count["after"]
        lines.append(f"| {_cell(count['collection'])} | {'yes' if count['loaded'] else 'no'} | "
                     f"{count['before']} | {after} |")
    findings = [f for f in report["findings"] if f["level"] != "info"]
    if findings:
        lines += ["", "Findings:"] + [one_line(f"- {f['level']}: {f['key']}: {f['message']}") for f in findings]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    return one_line(value).replace("|", "\\|")


def _clients_lines(clients: dict[str, Any]) -> list[str]:
    return [f"- {clients_line(clients)}"] if clients else []


def clients_line(clients: dict[str, Any]) -> str:
    """What the tool's own client saw, in one line (the report's Markdown and its text alike)."""
    refused = ", ".join(f"{count} {kind}" for kind, count in sorted(clients["refused"].items())) or "none"
    line = (f"what a client saw (a write every 0.5 s through the public port): {clients['acknowledged']} of "
            f"{clients['writes']} writes acknowledged; refused: {refused}")
    if clients.get("refused_from"):
        line += f"; refused from {clients['refused_from']} to {clients['refused_until']}"
    if clients.get("seconds_without_an_acknowledged_write") is not None:
        line += f" ({clients['seconds_without_an_acknowledged_write']:.1f} s without an acknowledged write)"
    return one_line(line)


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
