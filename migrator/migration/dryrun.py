"""`apply --dry-run`: an honest preflight of every step, changing nothing.

At the engine's dry-run gate each step with side effects is checked instead of run: what it
would do, and the checks that concern it, run for real but read-only: each runtime command's argv
and whether its program exists and may be run (a stop command of `false`, or of `true`, which
stops nothing, is refused too), whether the log source can be read, whether etcd answers, the
NATS port (free for a NATS target, answering for a NATS source), disk room, write permission on the
config files the run edits and on its state dir, and the gate that keeps clients away. A failed
check refuses the step, naming it (exit 3); nothing is written.

Steps are matched to their checks by the words of their ids (stop, start, confirm, config...), so
a pipeline with other steps still gets every check that its ids name; every check also runs once
at the first step with side effects, whatever its id.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from migrator.config.keys import as_int
from migrator.errors import Refused
from migrator.migration.steps.base import RunContext, Step
from migrator.mq import Mq

# Programs that never stop or start anything: `false` always fails, `true` does nothing.
_NO_OPS = {"false": "always fails", "true": "does nothing"}
STATE_DIR_ROOM = 64 * 1024 * 1024  # the journal, config states, reports


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def client_gate(ctx: RunContext) -> Check:
    """The gate that would keep clients away while Milvus's MQ is unproven (migration/gate.py): the
    plan's firewall (decision 0022), its tool asked again now, or port isolation (decision 0008)."""
    from migrator.migration import gate
    from migrator.runtime import firewall

    choice = gate.GateChoice.from_dict(ctx.plan.gate)
    if choice.kind != gate.GateKind.FIREWALL:
        return Check("client gate", True, f"port isolation (a private client port, the HTTP API off, at every "
                                          f"restart): {choice.why}")
    tool, why = firewall.usable_tool()
    if tool is None:
        return Check("client gate", False, f"the plan keeps clients away with a firewall rule, but now: {why}")
    rule = gate.rule_for("20000101T000000Z", choice, ctx.playbook.milvus.uri, ctx.runtime.metrics_url)
    ports = ", ".join(str(port) for port in rule.ports)
    return Check("client gate", True, f"firewall: a {tool} rule would reject every connection to ports {ports} "
                                      "but the tool's own")


def check_argv(role: str, argv: list[str], path_variable: str | None) -> Check:
    shown = " ".join(argv)
    program = argv[0]
    found = program if "/" in program else shutil.which(program, path=path_variable or os.defpath)
    if found is None or not os.path.exists(found):
        return Check(f"{role} command", False, f"`{shown}`: {program} not found")
    if not os.path.isfile(found) or not os.access(found, os.X_OK):
        return Check(f"{role} command", False, f"`{shown}`: {found} is not an executable file")
    for name in (os.path.basename(found), os.path.basename(os.path.realpath(found))):
        if name in _NO_OPS:
            return Check(f"{role} command", False, f"`{shown}`: {found} {_NO_OPS[name]}")
    return Check(f"{role} command", True, f"`{shown}` ({found})")


def _commands(ctx: RunContext) -> list[Check]:
    deadline = getattr(ctx.playbook.runtime, "stop_timeout_s", ctx.playbook.migration.deadlines.stop_s)
    path_variable = ctx.env.environ.get("PATH")
    checks = [check_argv(role, argv, path_variable) for role, argv in ctx.runtime.commands(deadline).items()]
    if ctx.runtime.kind == "process":  # stopped by a signal to its pid
        pid = ctx.runtime.running_pid()  # type: ignore[attr-defined]
        try:
            if pid is not None:
                os.kill(pid, 0)
            checks.append(Check("stop signal", True, f"SIGTERM, then SIGKILL, may be sent to pid {pid}"))
        except PermissionError:
            checks.append(Check("stop signal", False, f"no permission to signal pid {pid}"))
    return checks


def _log_source(ctx: RunContext) -> Check:
    logs = ctx.playbook.logs
    path = logs.path if logs.kind == "file" and logs.path else getattr(ctx.runtime, "log_path", None) \
        or getattr(ctx.runtime, "stdout_log", None)
    if path is not None:
        path = Path(path)
        if path.exists() and not os.access(path, os.R_OK):
            return Check("log source", False, f"{path} cannot be read")
        if not path.exists() and not path.parent.is_dir():
            return Check("log source", False, f"{path}: its directory {path.parent} does not exist")
    if logs.kind == "command" and logs.command:
        return check_argv("logs", logs.command, ctx.env.environ.get("PATH"))
    try:
        ctx.runtime.log_mark()
    except Exception as error:  # noqa: BLE001 - any failure to read the log is the finding
        return Check("log source", False, f"{type(error).__name__}: {getattr(error, 'message', error)}")
    return Check("log source", True, str(path) if path is not None else f"the {ctx.runtime.kind} runtime's log")


def _etcd(ctx: RunContext) -> Check:
    from migrator.milvus.etcd import EtcdUnreachable, current_revision

    etcd = ctx.playbook.config.etcd
    if etcd is None:
        return Check("etcd", True, "no config.etcd.endpoint: the stopped process's sessions expire on their own")
    try:
        revision = current_revision(etcd.endpoint, timeout=5.0)
    except EtcdUnreachable as error:
        return Check("etcd", False, f"{error.url}: {error.reason}")
    return Check("etcd", True, f"{etcd.endpoint} answers (revision {revision})")


def _nats_port(ctx: RunContext) -> Check | None:
    if Mq.NATSMQ not in (ctx.plan.source_mq, ctx.plan.target_mq):
        return None
    key = "natsmq.server.port"
    port = as_int(ctx.plan.changes.get(key) or ctx.effective().get(key).value or 4222)
    try:
        with ctx.runtime.reach(port) as address:
            host, _, number = address.rpartition(":")
            with socket.create_connection((host, int(number)), timeout=2.0):
                answers = True
    except OSError:
        answers = False
    except Exception as error:  # noqa: BLE001 - a container not reachable: say so, do not guess
        return Check("NATS port", True, f"port {port} not checked ({getattr(error, 'message', error)})")
    if ctx.plan.target_mq == Mq.NATSMQ:
        return Check("NATS port", not answers,
                     f"port {port} " + ("is taken: Milvus's NATS could not bind it" if answers else "is free"))
    return Check("NATS port", answers, f"port {port} " + ("answers" if answers else "does not answer"))


def _disk(ctx: RunContext) -> list[Check]:
    from migrator.rocksmq.files import free_bytes
    from migrator.util.sizes import human_bytes

    migration = ctx.playbook.migration
    free = free_bytes(migration.state_dir)
    checks = [Check("disk room", free >= STATE_DIR_ROOM, f"{human_bytes(free)} free for {migration.state_dir}")]
    needed = (ctx.plan.facts.get("rocksmq") or {}).get("bytes")
    if migration.backup and migration.backup_dir is not None and needed:
        room = free_bytes(migration.backup_dir)
        checks.append(Check("disk room", room >= needed, f"{human_bytes(room)} free for the backup in "
                                                         f"{migration.backup_dir}, {human_bytes(needed)} needed"))
    return checks


def _writable(what: str, path: Path) -> Check:
    target = path if path.exists() else path.parent
    while not target.exists() and target != target.parent:
        target = target.parent
    if not os.access(target, os.W_OK):
        return Check(what, False, f"{path}: not writable")
    return Check(what, True, f"{path} writable")


def _config(ctx: RunContext) -> list[Check]:
    files = {path.strip() for field in (ctx.plan.config_target, ctx.plan.isolation_target)
             for path in str(field).split(",") if path.strip()}
    checks = [_writable("config write", Path(path)) for path in sorted(files)]
    checks.append(_writable("state dir", ctx.playbook.migration.state_dir))
    return checks


# Which checks a step's id calls for; every check runs at the first step with side effects too.
_BY_WORD: tuple[tuple[tuple[str, ...], Callable[[RunContext], list[Check]]], ...] = (
    (("stop", "start"), _commands),
    (("start", "confirm"), lambda ctx: [_log_source(ctx)]),
    (("expire", "verify"), lambda ctx: [_etcd(ctx)]),
    (("start", "verify"), lambda ctx: [check for check in [_nats_port(ctx)] if check is not None]),
    (("backup", "move", "clean"), _disk),
    (("config", "isolate", "hold"), _config),
    (("gate",), lambda ctx: [client_gate(ctx)]),
)


def check_step(ctx: RunContext, step: Step) -> str:
    """The dry run of one step with side effects: what it would do and its checks; Refused naming
    the first check that failed."""
    first = not any((entry.summary or "").startswith("would ") for entry in ctx.journal.steps.values())
    checks: list[Check] = []
    for words, run in _BY_WORD:
        if first or any(word in step.id for word in words):
            checks += [check for check in run(ctx) if check not in checks]
    if first:
        checks.append(client_gate(ctx))
    failed = [check for check in checks if not check.ok]
    if failed:
        raise Refused("; ".join(f"{check.name}: {check.detail}" for check in failed))
    would = step.would(ctx) if step.would else step.description
    return "would " + would + "".join(f"; {check.name}: {check.detail}" for check in checks)
