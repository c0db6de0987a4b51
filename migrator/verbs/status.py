"""status: where the last migration stands (the journal), and what Milvus is configured to do now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.context import Environment
from migrator.migration.budget import cut_off_view
from migrator.migration.journal import Journal, RunStatus
from migrator.migration.plan import Plan
from migrator.playbook import LoadedPlaybook
from migrator.verbs.deployment import effective_config, open_deployment, recorded_plan, runnable

WRITES_ALLOW = "`milvus-migrate writes allow --playbook PB` allows them again, proved by a probe"
MILVUS_DOWN = "Milvus is not running (the playbook's runtime says so)"
START_MILVUS = "start Milvus through its runtime (systemctl, docker, ...), then `milvus-migrate status` again"


def status(env: Environment, playbook_path: Path) -> dict[str, Any]:
    from migrator.config import FORCE_DENY

    deployment = open_deployment(env, playbook_path)
    journal = deployment.journal()
    result: dict[str, Any] = {"playbook": str(deployment.loaded.path), "journal": str(deployment.journal_path),
                              "lock_holder": deployment.lock.held_by_other(), "milvus_running": None}
    try:
        result["milvus_running"] = deployment.runtime.running()
    except Exception as error:  # noqa: BLE001 - status must answer even when the runtime cannot
        result["milvus_running_error"] = str(error)
    plan = recorded_plan(journal) if journal is not None else None
    # A Kubernetes deployment never gets here: open_deployment has no runtime for it (Refused).
    effective = effective_config(deployment, plan.milvus_version if plan else deployment.loaded.spec.config.version)
    deny = effective.get(FORCE_DENY)
    result.update(mq_type_configured=effective.mq_type(), writes_denied=bool(deny.value),
                  writes_denied_source=str(deny.source))
    if journal is None or plan is None:
        result["status"] = "no migration recorded"
        result["next"] = (START_MILVUS if result["milvus_running"] is False
                          else WRITES_ALLOW if result.get("writes_denied") else None)
        result["next"] = runnable(result["next"], deployment.loaded.path) if result["next"] else None
        return result
    state = config_state(journal, plan, deployment.loaded)
    if state and state.startswith("isolated"):
        result.update(writes_denied=True, writes_denied_source=f"clients isolated: the config is {state}")
    result["gate"] = gate_view(journal, plan)
    if result["gate"].get("closed_now"):
        result.update(writes_denied=True,
                      writes_denied_source=f"the firewall gate {result['gate']['rule']} rejects every client")
    marks = journal.marks
    if marks.clients_off_at is not None and marks.all_readable_at is not None:
        result["read_downtime_s"] = round(marks.all_readable_at - marks.clients_off_at, 1)
    result.update(
        status=str(journal.status),
        run_id=journal.run_id,
        source_mq=plan.source_mq,
        target_mq=plan.target_mq,
        error=journal.error,
        config_state=state,
        clients_isolated=bool(state and state.startswith("isolated")),
        steps=[{"id": k, "state": str(v.state), "seconds": v.seconds, "summary": v.summary or v.error}
               for k, v in journal.steps.items()],
        writes=[entry.model_dump(mode="json") for entry in journal.writes],
        next=next_action(journal.status),
        **cut_off_view(journal, plan.estimate),
    )
    if result.get("writes_denied") and journal.status in (RunStatus.DONE, RunStatus.ROLLED_BACK):
        result["next"] = WRITES_ALLOW
    if result["milvus_running"] is False and journal.status in (RunStatus.DONE, RunStatus.ROLLED_BACK):
        result["next"] = START_MILVUS
    result["next"] = runnable(result["next"], deployment.loaded.path)
    return result


def gate_view(journal: Journal, plan: Plan) -> dict[str, Any]:
    """Which gate the run used and, for the firewall, whether its rule still rejects clients now."""
    from migrator.runtime import firewall

    view: dict[str, Any] = {"kind": (plan.gate or {}).get("kind", "isolation")}
    if journal.marks.gate is None:
        return view
    rule = firewall.GateRule.checked(journal.marks.gate, where=str(journal.path))
    view["rule"] = rule.name
    try:
        view["closed_now"] = firewall.installed(rule)
    except firewall.FirewallFailed as error:
        view["closed_now_error"] = error.message
    return view


def config_state(journal: Journal, plan: Plan, loaded: LoadedPlaybook) -> str | None:
    """Which of the run's config states the files are in now (migration/configstates.py), if known."""
    from migrator.migration.steps.base import load_config_states

    recorded = journal.marks.config_states
    if recorded is None:
        return None
    states = load_config_states(recorded, journal, loaded.spec, plan)
    found = set()
    for path in states.texts:
        try:
            found.add(states.state_of(path, Path(path).read_text(encoding="utf-8")))
        except OSError:
            found.add(None)
    return found.pop() if len(found) == 1 and None not in found else "changed since the run wrote it"


def next_action(state: RunStatus) -> str:
    return {
        RunStatus.RUNNING: "an apply is running, or died: if `lock_holder` is empty, `milvus-migrate apply --resume`",
        RunStatus.INTERRUPTED: "`milvus-migrate apply --resume` to continue, or `milvus-migrate rollback`",
        RunStatus.FAILED: "fix the cause, then `milvus-migrate apply --resume` or `milvus-migrate rollback`",
        RunStatus.ROLLING_BACK: "`milvus-migrate rollback` to finish the rollback",
        RunStatus.DONE: "nothing; `milvus-migrate verify` re-checks, `milvus-migrate rollback` goes back",
        # status() says START_MILVUS instead when Milvus does not run.
        RunStatus.ROLLED_BACK: "nothing; Milvus runs on the source MQ again",
    }.get(state, "")


def needs_operator(result: dict[str, Any]) -> str | None:
    """Why `status` exits 4, or None: the last run failed or was left unfinished, writes are
    still denied, or Milvus is not running, with no run in progress."""
    state = result.get("status")
    running = (RunStatus.RUNNING, RunStatus.ROLLING_BACK)
    in_progress = state in running and bool(result.get("lock_holder"))
    if state in (RunStatus.FAILED, RunStatus.INTERRUPTED) or (state in running and not in_progress):
        error = result.get("error")
        return f"the last migration is {state}" + (f": {error}" if error else "")
    if in_progress:
        return None
    if result.get("milvus_running") is False:
        return MILVUS_DOWN
    if result.get("writes_denied"):
        return f"writes are still denied (forceDeny true at {result['writes_denied_source']})"
    return None
