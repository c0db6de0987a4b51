"""close-gate / open-gate: the firewall gate around the switch (migration/gate.py, decision 0022).

The rule is journaled before it is installed, so every later run (resume, rollback, `writes
allow`) knows what to remove. Closing is proven from outside the tool's own client: a plain
connection to the client port and to the metrics port must be refused.
"""

from __future__ import annotations

import time

from migrator.errors import NotRolledBack
from migrator.migration import gate
from migrator.migration.steps.base import RunContext
from migrator.runtime import firewall


class GateNotClosed(NotRolledBack):
    """A client could still open a connection to Milvus with the gate closed."""


def close_gate(ctx: RunContext, step_id: str) -> str:
    from migrator.migration.steps.stop import make_probe

    rule = ctx.gate_rule()
    if rule is None:
        choice = gate.GateChoice.from_dict(ctx.plan.gate)
        rule = gate.rule_for(ctx.journal.run_id, choice, ctx.playbook.milvus.uri, ctx.runtime.metrics_url)
        ctx.journal.mark("gate", rule.to_dict())  # journaled before it exists: a kill leaves no stray rule
    if ctx.journal.marks.clients_off_at is None:
        make_probe(ctx)  # while clients still work: a create collection behind the gate waits for nothing
    firewall.install(rule)
    ctx.journal.mark("gate_closed_at", time.time())
    if ctx.journal.marks.clients_off_at is None:
        ctx.journal.mark("clients_off_at", time.time())
    still_open = gate.open_to_clients(ctx.playbook.milvus.uri, ctx.runtime.metrics_url)
    if still_open:
        raise GateNotClosed(f"the {rule.tool} rule is in place, yet a client can still connect to "
                            f"{', '.join(still_open)}",
                            hint="another rule may accept these packets first, or Milvus listens in another "
                                 "network namespace; set migration.gate: isolation in the playbook")
    ctx.journal.remember(step_id, rule=rule.name, tool=rule.tool)
    ports = ", ".join(str(port) for port in rule.ports)
    return f"clients cut off: {rule.tool} rejects every connection to ports {ports} but the tool's ({rule.exempt})"


def closed_by_the_run(ctx: RunContext) -> bool:
    """Did this run leave its gate closed (installed last, not removed since)?"""
    marks = ctx.journal.marks
    return (marks.gate is not None and marks.gate_closed_at is not None
            and (marks.gate_opened_at is None or marks.gate_opened_at < marks.gate_closed_at))


def reinstall_if_closed(ctx: RunContext) -> None:
    """A resumed run (or rollback) finds its gate as it left it: a rule lost meanwhile (a reboot, a
    firewall reload) is installed again before any step goes on."""
    rule = None if ctx.dry_run or not closed_by_the_run(ctx) else ctx.gate_rule()
    if rule is None:
        return
    if not firewall.installed(rule):
        firewall.install(rule)
        ctx.env.log.warning("gate.reinstalled", rule=rule.name, tool=rule.tool)


def ensure_gate_holds(ctx: RunContext, step_id: str) -> None:
    """Before a step behind the gate: the rule is still in place and a client's connection is still
    refused. A firewall reloaded behind the tool's back lets clients write again; from there the
    switch could lose what they wrote, so the run stops here (and rolls back). A rollback cannot
    stop: it puts the rule back and goes on, and says so."""
    from migrator.migration.journal import Phase

    rule = None if ctx.dry_run or not closed_by_the_run(ctx) else ctx.gate_rule()
    if rule is None:
        return
    problems = []
    if not firewall.installed(rule):
        problems.append(f"its {rule.tool} rule {rule.name} is gone")
    still_open = gate.open_to_clients(ctx.playbook.milvus.uri, ctx.runtime.metrics_url)
    if still_open:
        problems.append(f"a client can connect to {', '.join(still_open)}")
    if problems:
        firewall.install(rule)  # cut them off again at once
        if ctx.journal.phase == Phase.ROLLBACK:
            ctx.env.log.warning("gate.reinstalled", rule=rule.name, step=step_id, problems=problems)
            return
        raise GateNotClosed(f"the gate does not hold before {step_id}: {'; '.join(problems)}",
                            hint="something removed or bypassed the rule (a firewall reload?); keep other tools "
                                 "off the firewall while a migration runs")


def open_gate(ctx: RunContext, step_id: str) -> str:
    rule = ctx.gate_rule()
    if rule is None:
        return "no gate was closed by this run"
    removed = firewall.remove(rule)
    ctx.journal.mark("gate_opened_at", time.time())
    return (f"clients may connect again: the {rule.tool} rule {rule.name} "
            + ("removed" if removed else "was gone already"))
