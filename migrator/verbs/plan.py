"""plan: read-only; gather the facts, run every preflight rule, save the plan."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migrator.context import Environment
from migrator.migration.plan import Plan
from migrator.mq import Mq
from migrator.playbook import LoadedPlaybook, load_playbook
from migrator.verbs.deployment import driver_for


def parse_sets(assignments: list[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` flags -> canonical key -> typed value."""
    from migrator.config import parse_assignment

    return dict(parse_assignment(item) for item in assignments)


def plan(env: Environment, playbook_path: Path, *, target: str = Mq.NATSMQ.value, sets: Mapping[str, Any] | None = None,
         out: Path | None = None) -> Plan:
    return plan_for(env, load_playbook(playbook_path), target=target, sets=sets or {}, out=out)


def plan_for(env: Environment, loaded: LoadedPlaybook, *, target: str, sets: Mapping[str, Any],
             out: Path | None = None) -> Plan:
    return driver_for(loaded.spec).plan(env, loaded, target=target, sets=sets, out=out)

