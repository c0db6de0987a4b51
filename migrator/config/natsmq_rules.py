"""Checks of the natsmq (or, for the way back, rocksmq) settings Milvus will start with.

Milvus validates none of the natsmq settings: a bad one shows up as a Milvus that exits at start
(a taken port), a JetStream that refuses inserts (maxPayload > maxPending), or writes that fail
later (a full storeDir). Each rule yields a Finding; an error refuses the migration, a warning is shown.
"""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from migrator.config.keys import (
    NATSMQ_DEFAULTS,
    ROCKSMQ_PATH,
    canonical_key,
    format_key,
)
from migrator.config.layers import EffectiveConfig
from migrator.findings import Finding
from migrator.mq import Mq
from migrator.util.paths import system_file_problem, system_path_problem

MIN_PAYLOAD = 5 * 1024 * 1024  # Milvus splits inserts at pulsar.maxMessageSize, 5 MiB by default



def natsmq_findings(
    effective: EffectiveConfig,
    changes: dict[str, object],
    target: str,
    *,
    port_is_free: Callable[[int], bool] | None = None,
) -> list[Finding]:
    """Findings for the settings Milvus will have once `changes` are applied.

    `target` is the MQ migrated to: "natsmq" checks the natsmq.server settings (port, storeDir,
    sizes, timeouts, log file, unknown keys); "rocksmq" checks rocksmq.path (set, writable, not
    inside natsmq's storeDir). `port_is_free` defaults to binding 127.0.0.1:port, as nats-server
    will. Paths are checked on this machine: for a container, pass the host view of the config.
    """
    values = _Values(effective, {(canonical_key(key) or key): value for key, value in changes.items()})
    if target == Mq.NATSMQ:
        return _natsmq(values, port_is_free or _nats_can_bind) + _unknown_keys(effective, "error")
    if target == Mq.ROCKSMQ:
        return _rocksmq(values) + _unknown_keys(effective, "warning")
    raise ValueError(f"unknown target MQ {target!r}")


class _Values:
    """Effective values with the planned changes on top."""

    def __init__(self, effective: EffectiveConfig, changes: dict[str, object]) -> None:
        self.effective, self.changes = effective, changes

    def __getitem__(self, key: str) -> object:
        return self.changes[key] if key in self.changes else self.effective.get(key).value


def _natsmq(values: _Values, port_is_free: Callable[[int], bool]) -> list[Finding]:
    findings: list[Finding] = []
    key = "natsmq.server.port"
    port = values[key]
    if not isinstance(port, int) or not (port == -1 or 1 <= port <= 65535):
        findings.append(Finding("error", key, f"{port!r} is not a port: use 1..65535, or -1 for a random one"))
    elif port != -1 and not port_is_free(port):
        findings.append(Finding("error", key, f"127.0.0.1:{port} is taken: Milvus would exit at start; "
                                              "pick a free port or -1"))

    findings += _store_dir(values)
    findings += _sizes(values)
    for key, what in (("natsmq.server.initializeTimeout", "ms to wait for NATS"),
                      ("natsmq.server.retention.maxAge", "minutes a message is kept")):
        value = values[key]
        if not (isinstance(value, int) and value > 0):
            findings.append(Finding("error", key, f"{value!r}: must be > 0 ({what})"))
    for key in ("natsmq.server.retention.maxBytes", "natsmq.server.retention.maxMsgs"):
        value = values[key]
        if value is not None and not (isinstance(value, int) and value > 0):
            findings.append(Finding("error", key, f"{value!r}: leave it empty (unlimited) or "
                                                  "give a positive number"))

    key = "natsmq.server.monitor.logFile"
    log_file = str(values[key] or "")
    if log_file and os.path.isabs(log_file):
        problem = system_file_problem(log_file)
        if problem:
            findings.append(Finding("error", key, f"{problem}: NATS (as Milvus's user) would append its log there"))
            return findings
        problem = _not_writable(Path(log_file).parent)
        if problem:
            findings.append(Finding("error", key,
                                    f"NATS cannot write its log under {Path(log_file).parent}: {problem}"))
    return findings


def _store_dir(values: _Values) -> list[Finding]:
    key = "natsmq.server.storeDir"
    store_dir = str(values[key] or "")
    if not os.path.isabs(store_dir):
        return [Finding("error", key, f"{store_dir!r} must be an absolute path")]
    problem = system_path_problem(store_dir)
    if problem:
        return [Finding("error", key, f"{problem}: NATS keeps its store there, and apply moves a store that is not "
                        "empty aside; give NATS a directory of its own, e.g. /var/lib/milvus/nats")]
    problem = _not_writable(Path(store_dir))
    if problem:
        return [Finding("error", key, f"{store_dir}: {problem}")]
    findings = []
    existing = _existing_ancestor(Path(store_dir))
    max_file_store = values["natsmq.server.maxFileStore"]
    free = shutil.disk_usage(existing).free
    if isinstance(max_file_store, int) and free < max_file_store:
        findings.append(
            Finding("warning", key, f"{_gib(free)} free under {existing}, less than maxFileStore "
                                    f"{_gib(max_file_store)}: "
                    "JetStream writes fail once the disk is full")
        )
    if _is_rotational(existing):
        findings.append(Finding("warning", key, f"{existing} is on a rotational disk; NATS JetStream wants an SSD"))
    return findings


def _sizes(values: _Values) -> list[Finding]:
    findings = []
    payload, pending = values["natsmq.server.maxPayload"], values["natsmq.server.maxPending"]
    message_size = values["pulsar.maxMessageSize"]
    floor = max(MIN_PAYLOAD, message_size if isinstance(message_size, int) else 0)
    key = "natsmq.server.maxPayload"
    if not isinstance(payload, int) or payload < floor:
        findings.append(
            Finding("error", key, f"{payload!r} is below {floor} (5 MiB and pulsar.maxMessageSize, where "
                                  "Milvus splits inserts)")
        )
    elif isinstance(pending, int) and payload > pending:
        findings.append(Finding("error", key, f"{payload} is above maxPending {pending}: nats-server refuses to start"))
    max_file_store = values["natsmq.server.maxFileStore"]
    if not (isinstance(max_file_store, int) and max_file_store > 0):
        findings.append(Finding("error", "natsmq.server.maxFileStore", f"{max_file_store!r}: must be a "
                                                                       "positive number of bytes"))
    return findings


def _rocksmq(values: _Values) -> list[Finding]:
    key = ROCKSMQ_PATH
    path = str(values[key] or "").strip()
    if not path:
        return [Finding("error", key, "is empty: Milvus would not use RocksMQ (mq.type default falls back to pulsar)")]
    if not os.path.isabs(path):
        return [Finding("error", key, f"{path!r} must be an absolute path")]
    findings = []
    problem = _not_writable(Path(path))
    if problem:
        findings.append(Finding("error", key, f"{path}: {problem}"))
    store_dir = str(values["natsmq.server.storeDir"] or "")
    if store_dir and os.path.isabs(store_dir):
        rocks, nats = Path(os.path.realpath(path)), Path(os.path.realpath(store_dir))
        if rocks == nats or nats in rocks.parents:
            findings.append(Finding("error", key, f"{path} is inside natsmq.server.storeDir {store_dir}: clean-up of "
                                                  "one would remove the other"))
    return findings


def _unknown_keys(effective: EffectiveConfig, level: str) -> list[Finding]:
    """natsmq keys in the files that Milvus does not know, with the nearest real key."""
    known = {format_key(key): key for key in NATSMQ_DEFAULTS}
    sections = {format_key(key.rsplit(".", 1)[0]) for key in NATSMQ_DEFAULTS} | {"natsmq"}
    findings = []
    for layer in effective.layers:
        for leaf in layer.document.leaves():
            if not format_key(leaf.key).startswith("natsmq"):
                continue
            where = f"{layer.path}:{leaf.line}:{leaf.column}"
            real = known.get(format_key(leaf.key))
            if real is not None and real != leaf.key:
                findings.append(Finding("warning", leaf.key, f"{where}: Milvus reads it as {real} (keys match "
                                                             f"case-insensitively); spell it {real}"))
            elif real is None and format_key(leaf.key) not in sections:
                nearest = difflib.get_close_matches(leaf.key, list(known.values()), n=1, cutoff=0.6)
                guess = f"; did you mean {nearest[0]}?" if nearest else ""
                findings.append(Finding(level, leaf.key, f"{where}: not a natsmq setting, Milvus ignores it{guess}"))
    return findings


def _nats_can_bind(port: int) -> bool:
    # nats-server listens with SO_REUSEADDR (Go's default), so a port left in TIME_WAIT is free to it.
    from migrator.util.ports import port_is_free

    return port_is_free(port)


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _not_writable(directory: Path) -> str | None:
    """Why `directory` cannot be written or created by this user, or None."""
    existing = _existing_ancestor(directory)
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "not writable" if existing == directory else f"cannot be created: {existing} is not writable"
    return None


def _is_rotational(path: Path) -> bool:
    """True when `path` lives on a spinning disk (Linux sysfs); False when not or unknown."""
    device = os.stat(path).st_dev
    block = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}")
    # A partition has no queue/ of its own: its disk's is one level up.
    for candidate in (block / "queue" / "rotational", block.resolve().parent / "queue" / "rotational"):
        try:
            return candidate.read_text().strip() == "1"
        except OSError:
            continue
    return False


def _gib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB"
