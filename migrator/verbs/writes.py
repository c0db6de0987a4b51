"""writes deny|allow: deny or allow Milvus's writes now, where forceDeny wins, proved by a probe.

The documented way out after a crash left writes denied (and into a maintenance window). The
same helpers as the migration's deny-writes and allow-writes steps; an entry in the journal's
`writes` list when a migration is recorded, so `status` shows it and `apply --resume` knows.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrator.context import Environment
from migrator.errors import MigrateError, NotRolledBack, Refused
from migrator.migration.journal import Journal
from migrator.playbook import Playbook, load_playbook
from migrator.verbs.apply import UNFINISHED, confirm
from migrator.verbs.deployment import (
    Deployment,
    deployment_for,
    driver_for,
    effective_config,
    nothing_changed_yet,
)

if TYPE_CHECKING:
    from migrator.config.layers import EffectiveConfig


@dataclass
class WritesContext:
    """What `set_force_deny` reads of a step's RunContext, outside a run: the Environment and
    the config of the Milvus version found now."""

    env: Environment
    deployment: Deployment
    milvus_version: str

    @property
    def playbook(self) -> Playbook:
        return self.deployment.loaded.spec

    def effective(self) -> EffectiveConfig:
        return effective_config(self.deployment, self.milvus_version)


def writes(env: Environment, playbook_path: Path, *, deny: bool, yes: bool = False) -> dict[str, Any]:
    from migrator.config import FORCE_DENY
    from migrator.migration.writes import (
        WritesNotControlled,
        set_force_deny,
        wait_for_write_state,
    )
    from migrator.milvus.client import MilvusAdapter

    loaded = load_playbook(playbook_path)
    spec = loaded.spec
    action = "deny" if deny else "allow"
    driver_for(spec).refuse_writes(action)
    deployment = deployment_for(env, loaded)
    with deployment.held():  # not while an apply or a rollback runs: they own forceDeny then
        journal = deployment.journal()
        gate_opened = None
        if not deny and journal is not None and journal.marks.gate is not None:
            gate_opened = _open_the_gate(env, journal, spec.name, yes)
        with ExitStack() as stack:
            with nothing_changed_yet():
                milvus = stack.enter_context(MilvusAdapter.connect(spec.milvus.uri, token=deployment.token))
                ctx = WritesContext(env, deployment, milvus.version())
                quota = ctx.effective().get("quotaAndLimits.enabled")
                if not quota.value:
                    raise Refused(f"quotaAndLimits.enabled is not true ({quota.source}): Milvus ignores forceDeny",
                                  hint="it is read at start only: set it true, restart Milvus, then try again")

                unfinished = journal is not None and journal.status in UNFINISHED
                confirm(env, _question(spec.name, deny, unfinished), yes)
                milvus.ensure_probe()  # DDL works under a deny too; made first all the same
            changed = set_force_deny(ctx, deny)
            written = ctx.effective().file_value(FORCE_DENY)
            if written is None:  # pragma: no cover - set_force_deny has just written it into a file
                raise RuntimeError(f"{FORCE_DENY} is set in no config file after it was written")
            target = str(written[0].path)
            try:
                proof = _prove(ctx, milvus, wait_for_write_state, deny=deny)
            except WritesNotControlled as error:  # says itself that forceDeny was written
                raise NotRolledBack(f"{error.message} ({target})", hint=_unproved_hint(deny)) from error
            except MigrateError as error:
                raise NotRolledBack(f"forceDeny={str(deny).lower()} is written in {target}, but the probe failed: "
                                    f"{error.message}", hint=_unproved_hint(deny)) from error
        entry = {"action": action, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "unix": time.time(), "file": target, "changed": changed, "proof": proof,
                 "during": journal.status if journal is not None else None}
        if journal is not None:
            _journal_it(journal, entry)
    return {"writes": "denied" if deny else "allowed", "file": target, "changed": changed, "proof": proof,
            "journal": str(deployment.journal_path) if journal is not None else None,
            "gate": gate_opened, "warning": _warning(deny, unfinished)}


def _open_the_gate(env: Environment, journal: Journal, name: str, yes: bool) -> str | None:
    """A run left its firewall gate closed (killed, or failed without a rollback): remove the rule
    it journaled, first, or no client (and no probe) reaches Milvus. Says what it did, or None."""
    from migrator.runtime import firewall

    if journal.marks.gate is None:
        return None
    rule = firewall.GateRule.checked(journal.marks.gate, where=str(journal.path))
    if not firewall.installed(rule):
        return None
    confirm(env, f"Remove the firewall rule {rule.name} that keeps every client away from {name}? [y/N] ", yes)
    firewall.remove(rule)
    journal.add_write({"action": "allow", "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "unix": time.time(), "file": f"firewall rule {rule.name}", "changed": True,
                       "proof": f"the {rule.tool} rule removed", "during": journal.status})
    return f"removed the firewall rule {rule.name}: clients may connect again"


def _prove(ctx: WritesContext, milvus: Any, wait_for_write_state: Any, *, deny: bool) -> str:
    deadlines = ctx.playbook.migration.deadlines
    if deny:
        seconds, _ = wait_for_write_state(milvus, denied=True, deadline_s=deadlines.deny_s)
        return f"a probe insert was rejected after {seconds:.1f} s"
    seconds, probe_id = wait_for_write_state(milvus, denied=False, deadline_s=deadlines.deny_s * 2)
    if not milvus.probe_visible(probe_id, deadline_s=deadlines.verify_s):
        raise NotRolledBack(f"probe {probe_id} was accepted but a Strong query does not see it")
    milvus.drop_probe()
    return f"a probe insert went through after {seconds:.1f} s and a Strong query sees it"


def _question(name: str, deny: bool, unfinished: bool) -> str:
    if deny:
        return f"Deny every insert, upsert and delete on {name} now? [y/N] "
    caution = (" A migration is unfinished: it can then only be rolled back, not resumed." if unfinished else "")
    return f"Allow writes on {name} now?{caution} [y/N] "


def _warning(deny: bool, unfinished: bool) -> str | None:
    if not deny and unfinished:
        return ("writes were allowed during an unfinished migration: `apply --resume` now refuses; "
                "`milvus-migrate rollback` returns to the source MQ")
    if deny:
        # Seen on 2.3.5: the HTTP handlers skip the gRPC interceptors where forceDeny is checked.
        return ("forceDeny stops gRPC clients only: on Milvus 2.3.5 writes through the HTTP API (the client "
                "port's /v1 and the metrics port's /api/v1) are still accepted (docs/milvus.md)")
    return None


def _unproved_hint(deny: bool) -> str:
    if deny:
        return ("Milvus applies forceDeny at its quota center's next cycle; after a restart that waits for the "
                "old process's sessions (up to 30 s): run `writes deny` again, or see docs/troubleshooting.md")
    return "run `writes allow` again; `milvus-migrate status` shows the config; see docs/troubleshooting.md"


def _journal_it(journal: Journal, entry: dict[str, Any]) -> None:
    journal.add_write(entry)
