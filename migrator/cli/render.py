"""Every rendering of a result: the text for a terminal (plans, reports, status, config, inspect,
backups, playbooks, the sandbox, errors) and the one JSON document of --output json."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from migrator.migration.plan import Estimate, Plan, PlanFacts
from migrator.mq import Mq
from migrator.util.printable import one_line
from migrator.util.redact import redact_text
from migrator.util.sizes import human_bytes

# Version of the --output json document. The keys below are its contract (docs/runbook.md,
# "Automation"); a command's own data sits beside them.
OUTPUT_SCHEMA_VERSION = 1


def result_document(data: dict[str, Any], failure: Any = None) -> str:
    """One JSON object for a command's end: `schema_version`, `ok`, `exit_code`, and on a failure
    `error`, `hint` and `report` (the JSON report's path, when a run wrote one), then the
    command's own data (a failed apply's report included)."""
    document: dict[str, Any] = {"schema_version": OUTPUT_SCHEMA_VERSION, "ok": failure is None,
                                "exit_code": 0 if failure is None else failure.exit_code}
    if failure is not None:
        document.update(error=redact_text(failure.message),
                        hint=redact_text(failure.hint) if failure.hint else None,
                        report=failure.report_path)
    for key, value in data.items():
        document.setdefault(key, value)
    return json.dumps(document, indent=2, default=str)


def render_failure(message: str, hint: str | None, report_path: str | None) -> str:
    lines = [f"error: {message}"]
    if hint:
        lines.append(f"hint: {hint}")
    if report_path:
        lines.append(f"report: {report_path}")
    return "\n".join(lines)


def render_plan(plan: Plan, out: Path | None) -> str:
    lines = [f"plan: {plan.source_mq} -> {plan.target_mq} on Milvus {one_line(plan.milvus_version)} "
             f"({one_line(plan.playbook_path)})"]
    if plan.nothing_to_do:
        lines.append(f"Milvus already runs on {plan.target_mq}: nothing to do")
    lines.append("")
    for number, step in enumerate(plan.steps, 1):
        lines.append(f"  {number:2}. {step.id:15} {step.description}")
    kubernetes = plan.facts.get("kubernetes")
    if kubernetes:
        lines += ["", *_kubernetes_change(kubernetes), ""]
    elif plan.config_target:
        lines += ["", f"config change ({plan.config_target}):", plan.config_diff.rstrip() or "  (none)", ""]
    else:
        lines.append("")
    lines += _plan_facts(plan.facts)
    if plan.snapshot:
        snap = plan.snapshot["collections"]
        line = (f"collections: {len(snap)}, rows: {sum(c['rows'] for c in snap)}, "
                f"loaded: {sum(1 for c in snap if c['loaded'])}")
        scale = plan.facts.get("scale")
        if scale:
            line += (f", partitions: {scale['partitions']}, flushed segments of the loaded ones: "
                     f"{scale['loaded_segments']}, rows not yet flushed: {scale['unflushed_rows']}")
        lines.append(line)
    lines += _estimate_lines(plan.estimate)
    for finding in plan.findings:
        lines.append(one_line(f"{finding.level}: {finding.key}: {finding.message}"))
    if out is not None and plan.errors:
        lines.append(f"\nplan written to {out}, but apply refuses it: fix the error(s) above, then plan again")
    elif out is not None and plan.nothing_to_do:
        lines.append(f"\nplan written to {out}; there is nothing to apply")
    elif out is not None:
        lines.append(f"\nplan written to {out}; apply it with `milvus-migrate apply {out}`")
        if kubernetes:
            lines.append(f"the change's files are written in {kubernetes['out_dir']}; apply runs the commands "
                         "only with runtime.run_kubectl: true, otherwise it prints them for you to run")
    return "\n".join(lines)


def _estimate_lines(estimate: Estimate) -> list[str]:
    """The write-downtime estimate, what it is made of, the budget and the rollback's bound."""
    if not estimate.get("write_downtime_s"):
        return []
    parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in estimate["parts"].items() if seconds)
    source = "from the playbook" if estimate.get("budget_from") == "playbook" else "from the estimate"
    return [f"write-downtime estimate: {estimate['write_downtime_s']:.0f} s ({parts})",
            f"write-downtime budget: {estimate['write_downtime_budget_s']:.0f} s ({source}); a rollback is bounded "
            f"by {estimate['rollback_budget_s']:.0f} s"]


def _plan_facts(facts: PlanFacts) -> list[str]:
    """Who sets the MQ keys, the target store, the road to 2.6: each a block ending in a blank line."""
    lines = []
    if facts.get("config_sources"):
        settings = facts["config_sources"]
        per_key = Counter(item["key"] for item in settings)
        # mq.type always; another key only where more than one source sets it or one is not obeyed.
        shown = [item for item in settings if item["key"] == "mq.type" or per_key[item["key"]] > 1
                 or item["status"] != "wins"]
        hidden = len(per_key) - len({item["key"] for item in shown})
        lines += ["who sets mq.type and natsmq.* (per key, the one Milvus goes by first):", *_config_sources(shown)]
        if hidden:
            lines.append(f"  (and {hidden} natsmq key(s) set by one file each: `--output json` lists them)")
        lines.append("")
    if facts.get("mq_pin"):
        pin = facts["mq_pin"]
        lines += [f"2.6 MQ pin {pin['key']}: {pin['value'] if pin['value'] is not None else '(not read)'}", ""]
    if facts.get("target_store"):
        lines += [*_target_store(facts["target_store"]), ""]
    if road := facts.get("road"):
        lines += [*_road(road), ""]
    return lines


def _config_sources(settings: list[dict[str, Any]]) -> list[str]:
    width = max(len(item["key"]) for item in settings)
    lines = []
    for item in settings:
        status = item["status"] + (f": {item['note']}" if item["note"] else "")
        lines.append(f"  {item['key'].ljust(width)} = {_shown(item['raw'])}  {item['source']}  [{status}]")
    return lines


def _target_store(store: dict[str, Any]) -> list[str]:
    kind = "NATS store" if store["kind"] == Mq.NATSMQ else "RocksMQ"
    where = " + ".join(store["paths"])
    if store["empty"]:
        return [f"target store ({kind}): {where}: empty"]
    contents = store["contents"]
    action = {"move-aside": "apply moves it aside (kept) before the restart", "keep": "Milvus runs on it now"}
    lines = [f"target store ({kind}): {where}: NOT empty, {human_bytes(contents.get('bytes_on_disk', 0))} on disk; "
             f"{action.get(store['action'], store['action'])}"]
    if store["kind"] == Mq.NATSMQ:
        lines.append(f"  {len(contents['streams'])} stream(s), oldest created "
                     f"{contents.get('oldest_stream_created') or '-'}, "
                     f"last written {contents.get('newest_write') or '-'}")
        for stream in contents["streams"]:
            age = "-" if stream["max_age_ns"] is None else f"{stream['max_age_ns'] // 60_000_000_000} min"
            lines.append(f"    {stream['account']}/{stream['name']:<32} {human_bytes(stream['bytes_on_disk']):>10}  "
                         f"max age {age}" + (f"  ({stream['problem']})" if stream["problem"] else ""))
    elif "problem" in contents:
        lines.append(f"  not readable as a RocksMQ: {contents['problem']}")
    else:
        lines.append(f"  {contents['topics']} topic(s), {contents['messages']} message(s), "
                     f"{human_bytes(contents['bytes'])} of payload, {contents.get('oldest_time') or '-'} .. "
                     f"{contents.get('newest_time') or '-'}")
    return lines


def _road(road: dict[str, Any]) -> list[str]:
    lines = [f"the road to Milvus 2.6 (Milvus {road['version']}, on {road['mq_now']} now; tested live: "
             f"{road['tested_live']}):"]
    lines += [f"  {number}. [{step['when']}] {step['text']}" for number, step in enumerate(road["steps"], 1)]
    alter = road.get("alter_wal")
    if alter:
        lines.append(f"  AlterWAL: POST {alter['url']} {json.dumps(alter['body'])}; done when {alter['done_when']}")
        for condition in alter["preconditions"]:
            mark = {True: "yes", False: "NO", None: "?"}[condition["met"]]
            lines.append(f"    [{mark:>3}] {condition['name']}: {condition['detail']}")
    return lines


def _kubernetes_change(kubernetes: dict[str, Any]) -> list[str]:
    """The Helm values or operator CR patch, then the commands that roll it out."""
    lines = [f"{kubernetes['manager']} change (Milvus's config is not edited here; the {kubernetes['manager']} "
             "rollout restarts the pod):"]
    return lines + _kubernetes_files_and_commands(kubernetes, f"{kubernetes['out_dir']}/")


def _kubernetes_files_and_commands(change: dict[str, Any], where: str = "") -> list[str]:
    lines = []
    for name, text in change["files"].items():
        lines.append(f"  {where}{name}:")
        lines += ["    " + line for line in text.splitlines()]
    lines.append("  then run:")
    lines += ["    " + " ".join(argv) for argv in change["commands"]]
    return lines


def render_report(report: dict[str, Any]) -> str:
    if report.get("kind") == "rehearsal":
        return render_rehearsal(report)
    """A run's report for a terminal: plain lines (the Markdown is the .md file's). The steps were
    shown as they ran, and a failure's error is the last line the CLI prints: neither is repeated."""
    if "steps" not in report:
        return report.get("message") or report.get("status", "")
    from migrator.migration.report import clients_line

    dry_run = " (dry run)" if report["dry_run"] else ""
    lines = [f"run {one_line(report['run_id'])}{dry_run}: {report['source_mq']} -> {report['target_mq']} on Milvus "
             f"{one_line(report['milvus_version'])} ({one_line(report['playbook'])})",
             f"status: {report['status']}",
             f"clients kept away by: {report['gate']['kind']}",
             f"write-downtime (clients cut off to a write acknowledged again): {_seconds(report['write_downtime_s'])}",
             f"read-downtime (clients cut off to every loaded collection answering a search again): "
             f"{_seconds(report['read_downtime_s'])}"]
    if report.get("restart_to_all_loaded_strong_s") is not None:  # port isolation's verify loads everything
        lines.append(f"restart until every loaded collection answers a Strong query: "
                     f"{_seconds(report['restart_to_all_loaded_strong_s'])}")
    if report.get("clients"):
        lines.append(clients_line(report["clients"]))
    if report["counts"]:
        width = max(len("collection"), *(len(one_line(count["collection"])) for count in report["counts"]))
        lines += ["", f"  {'collection':<{width}}  loaded  rows before  rows after"]
        for count in report["counts"]:
            after = "-" if count["after"] is None else count["after"]
            lines.append(f"  {one_line(count['collection']):<{width}}  {'yes' if count['loaded'] else 'no':<6}  "
                         f"{count['before']:>11}  {after:>10}")
    if report.get("report_files"):
        lines += ["", f"report: {', '.join(report['report_files'])}"]
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def render_rehearsal(report: dict[str, Any]) -> str:
    """What `rehearse` measured on the copy, beside the plan's estimate."""
    from migrator.util.sizes import human_bytes

    def seconds(value: Any) -> str:
        return "-" if value is None else f"{value:.1f} s"

    measured, estimate = report.get("measured") or {}, report.get("estimate") or {}
    lines = [f"rehearsal of {report['production']}: {report['status']}"
             + (f" ({report['error']})" if report.get("error") else "")]
    if report.get("source_mq"):
        lines.append(f"  {report['source_mq']} -> {report['target_mq']} on a copy of Milvus "
                     f"{report.get('milvus_version')}")
    if measured:
        writer = measured.get("writer") or {}
        lines += [
            f"  write-downtime measured: {seconds(measured.get('write_downtime_s'))} (the writer's longest gap between "
            f"acknowledged writes); the plan's estimate: {seconds(estimate.get('write_downtime_s'))}, "
            f"budget {seconds(estimate.get('write_downtime_budget_s'))}",
            f"  read-downtime measured: {seconds(measured.get('read_downtime_s'))} (longest gap between answered "
            f"reads); the plan's estimate: {seconds(estimate.get('read_downtime_s'))}",
            f"  the writer: {writer.get('acknowledged', 0)} of {writer.get('writes', 0)} writes acknowledged, "
            f"{writer.get('answered', 0)} of {writer.get('reads', 0)} reads answered; acknowledged and missing "
            f"after the migration: {measured.get('acknowledged_missing_count')}",
        ]
    for step in report.get("steps", []):
        lines.append(f"    {step['id']:26} {step['state'] or '':10} {seconds(step['seconds']):>8}  "
                     f"{step['summary'] or ''}")
    copy = report.get("copy")
    if copy:
        storage, rocksmq, etcd = copy["storage"], copy["rocksmq"], copy["etcd"]
        lines.append(f"  the copy: {seconds(copy['seconds'])}, {human_bytes(copy['bytes_on_disk'])} on disk "
                     f"(RocksMQ {human_bytes(rocksmq['linked_bytes'])} linked, {human_bytes(rocksmq['copied_bytes'])} "
                     f"copied; segment files {storage['linked_files']} linked, {storage['copied_files']} copied; "
                     f"{etcd['keys']} etcd keys at revision {etcd['revision']})")
    links = report.get("production_links")
    if links:
        lines.append(f"  production files shared by a link, unchanged: {links['checked'] - len(links['changed'])} "
                     f"of {links['checked']}")
    lines.append(f"  {report['copy_dir']}: " + ("deleted" if report.get("copy_removed") else "NOT deleted")
                 + f"; the rehearsal took {seconds(report.get('seconds'))}")
    return "\n".join(lines)


def render_status(result: dict[str, Any]) -> str:
    shown = dict(result)
    if result.get("source_mq"):
        shown["direction"] = f"{result['source_mq']} -> {result['target_mq']}"
    lines = [f"{key}: {one_line(shown[key])}" for key in ("status", "run_id", "direction", "error",
                                                          "mq_type_configured", "writes_denied",
                                                          "writes_denied_source", "milvus_running",
                                                          "lock_holder", "next") if shown.get(key) is not None]
    lines += _cut_off_lines(result)
    for step in result.get("steps", []):
        seconds = "" if step["seconds"] is None else f" {step['seconds']:.1f}s"
        lines.append(f"  {one_line(step['id']):22} {one_line(step['state']):12}{seconds}  "
                     f"{one_line(step['summary'] or '')}")
    for entry in result.get("writes", []):
        lines.append(one_line(f"  writes {entry['action']} by hand at {entry['at']} ({entry['file']}): "
                              f"{entry['proof']}"))
    return "\n".join(lines)


def _cut_off_lines(result: dict[str, Any]) -> list[str]:
    """For how long clients have been cut off, against the budget or the rollback's bound."""
    if result.get("clients_cut_off_s") is not None:
        line = f"clients cut off for: {result['clients_cut_off_s']:.0f} s"
        if result.get("rollback_ends_by"):
            line += (f" (the rollback gives up by {result['rollback_ends_by']}, "
                     f"{result['rollback_left_s']:.0f} s from now, at the latest)")
        elif result.get("budget_left_s") is not None:
            line += (f" of a {result['write_downtime_budget_s']:.0f} s budget "
                     f"({result['budget_left_s']:.0f} s left)")
        return [line]
    if result.get("write_downtime_s") is not None:
        return [f"write-downtime of the run: {result['write_downtime_s']:.1f} s"]
    return []


def render_writes(result: dict[str, Any]) -> str:
    lines = [f"writes {result['writes']}: forceDeny in {result['file']}"
             f"{'' if result['changed'] else ' (already so)'}; {result['proof']}"]
    if result.get("journal"):
        lines.append(f"recorded in {result['journal']}")
    if result.get("warning"):
        lines.append(f"warning: {result['warning']}")
    return "\n".join(lines)


def render_verify(result: dict[str, Any]) -> str:
    lines = [f"mq.type configured: {result['mq_type_configured']}"] + [f"ok: {c}" for c in result["checks"]]
    lines += [f"LOST: {one_line(item)}" for item in result.get("rows_below_migration_snapshot", [])]
    lines += [f"MISSING: {one_line(item)}" for item in result.get("collections_missing", [])]
    return "\n".join(lines)


# --- config -------------------------------------------------------------------------------


def _shown(raw: str | None) -> str:
    if raw is None:
        return "(not set)"
    return raw if raw != "" else "(empty)"


def render_config(data: dict[str, Any]) -> str:
    settings = data["settings"]
    width = max(len(item["key"]) for item in settings)
    text = [f"files (lowest precedence first): {', '.join(data['files'])}", f"etcd: {data['etcd']}",
            f"mq in use: {data['mq_type']}", ""]
    text += [f"{item['key'].ljust(width)} = {_shown(item['raw'])}  ({item['source']})" for item in settings]
    if data.get("mq_pin"):
        pin = data["mq_pin"]
        value = pin["value"] if pin["value"] is not None else "(not read)"
        text += ["", f"2.6 MQ pin {pin['key']} = {value}" + (f"  ({pin['note']})" if pin.get("note") else "")]
    if data.get("sources"):
        text += ["", "who sets mq.type and natsmq.* (per key, the one Milvus goes by first):",
                 *_config_sources(data["sources"])]
    return "\n".join(text)


def render_edit(data: dict[str, Any]) -> str:
    text = [data["diff"].rstrip("\n") if data["changed"] else f"{data['config_target']}: already as "
                                                              "asked, nothing to change"]
    text += [f"refused: {refusal['message']}" for refusal in data["refusals"]]
    text += [f"{f['level']}: {f['key']}: {f['message']}" for f in data["findings"]]
    written = data.get("written")
    if written:
        text.append(f"written: {written['file']} (original kept: {written['original']}, sha256 {written['sha256']})")
    return "\n".join(text)


# --- RocksMQ ------------------------------------------------------------------------------


def render_stats(stats: Any, advice: Any) -> str:
    """`inspect rocksmq`: a RocksmqStats and its Advice."""
    estimate = "" if stats.exact else " (estimated; --deep for exact counts)"
    lines = [
        f"RocksMQ {stats.path} (+ {stats.meta_path.name})",
        f"  on disk: data {human_bytes(stats.data_bytes_on_disk)}, meta {human_bytes(stats.meta_bytes_on_disk)}",
        f"  topics: {len(stats.topics)}, messages: {stats.messages}{estimate}, payload bytes: "
        f"{human_bytes(stats.bytes)}",
        f"  oldest: {stats.oldest_time or '-'}  newest: {stats.newest_time or '-'}",
        "  sizes: " + ", ".join(f"{name} {count}" for name, count in stats.histogram.messages.items()),
        "",
        f"  {'topic':<36} {'messages':>10} {'bytes':>10}  {'newest':<26} unconsumed",
    ]
    for topic in stats.topics:
        unconsumed = "-" if topic.unconsumed is None else str(topic.unconsumed)
        newest = topic.newest_time.isoformat(timespec="seconds") if topic.newest_time else "-"
        lines.append(f"  {topic.name:<36} {topic.messages:>10} {human_bytes(topic.bytes):>10}  "
                     f"{newest:<26} {unconsumed}")
    lines += ["", "Advice: " + advice.paragraph]
    return "\n".join(lines)


def render_manifest(verb: str, manifest: Any, where: Path) -> str:
    return (
        f"{verb} {where}: {len(manifest.files)} files, {manifest.total_bytes} bytes, mode {manifest.mode}, "
        f"of {manifest.source_data} (+ _meta_kv), taken {manifest.created_at}"
    )


# --- playbooks ----------------------------------------------------------------------------


def render_playbook(summary: dict[str, Any]) -> str:
    runtime = summary["runtime"]
    details = ", ".join(f"{k}={v}" for k, v in runtime.items() if k != "kind" and v not in (None, [], {}))
    rows = [
        ("playbook", f"{summary['playbook']} (valid)"),
        ("name", summary["name"]),
        ("milvus", summary["milvus"]),
        ("health", summary["health"]),
        ("config dir", summary["config_dir"]),
        ("runtime", f"{runtime['kind']}: {details}"),
        ("logs", summary["logs"]),
        ("state dir", summary["state_dir"]),
    ]
    rows += [("path map", f"{inside} -> {host}") for inside, host in summary["path_map"].items()]
    if summary["backup_dir"]:
        rows.append(("backup dir", summary["backup_dir"]))
    if summary["mq_environment"]:
        rows.append(("warning", "environment sets " + ", ".join(summary["mq_environment"]) +
                     ": it beats any config file edit (plan refuses unless it matches the target)"))
    for name, host in summary.get("config_mounts", {}).items():
        rows.append(("config mount", f"{name} -> {host}" if host else
                     f"{name} not mounted from the host: an edit inside the container would be lost"))
    lines = [f"{name:12} {one_line(value)}" for name, value in rows]
    lines += [one_line(f"{finding['level']}: {finding['key']}: {finding['message']}")
              for finding in summary["findings"]]
    if change := summary.get("kubernetes_change"):
        lines.append("kubernetes   the change to natsmq; files:")
        lines += _kubernetes_files_and_commands(change)
    return "\n".join(lines)


# --- the sandbox --------------------------------------------------------------------------


def render_sandbox(info: Any) -> str:
    rows = [
        ("running", f"yes (pid {info.pid})" if info.running else "no"),
        ("uri", info.uri),
        ("config", str(info.config)),
        ("logs", str(info.log_dir)),
        ("playbook", str(info.playbook)),
    ]
    if info.mq_config is not None or info.mq_log is not None:
        rows.append(("mq (config)", str(info.mq_config)))
        rows.append(("mq (log)", str(info.mq_log or "-")))
    return "\n".join(f"{name:12} {value}" for name, value in rows)


def render_seed(counts: dict[str, tuple[int, bool]]) -> str:
    return "\n".join(f"{key:32} {rows:>7} rows{'' if loaded else '  (not loaded)'}"
                     for key, (rows, loaded) in counts.items())


def render_sandbox_down(directory: Path, result: Any, timeout: float) -> str:
    if result.pid is None:
        return f"sandbox in {directory} was not running"
    how = "stopped" if result.graceful else f"killed after {timeout:.0f} s"
    return f"sandbox pid {result.pid} {how} in {result.seconds:.1f} s; process gone"
