"""rehearse: migrate a throwaway copy of the deployment on this host with the real `apply`, measure it
with a client of the tool's own, report, and delete the copy. Production is only read.

The copy (migrator/rehearsal/, decision 0021): production's etcd keys read at one revision, then a
checkpoint of RocksMQ (so the MQ is never behind etcd's channel checkpoints), then the segment files
written before the etcd read; the same Milvus binary on private ports and in the copy's own
directories. Whatever steps `apply` runs, the rehearsal runs them: it calls verbs/apply.py on a
playbook it writes for the copy.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migrator.context import Environment
from migrator.errors import BadInput, Interrupted, MigrateError, Refused, RehearsalFailed
from migrator.migration.journal import DeploymentLock
from migrator.playbook import LoadedPlaybook, ProcessRuntimeSpec, SystemdRuntimeSpec, load_playbook
from migrator.rehearsal.layout import CopyLayout, create_copy_dir, rehearsal_lock, remove_copy
from migrator.rocksmq.files import free_bytes
from migrator.rocksmq.layout import directory_size, meta_kv_path
from migrator.runtime.base import StartFailed
from migrator.verbs.deployment import driver_for

SEGMENT_ATTEMPTS = 3
ROOM_MARGIN = 512 * 1024 * 1024  # etcd's preallocated WAL (64 MiB a file), logs, the NATS store's start
ETCD_ROOM_FACTOR = 4  # etcd's store holds a key's revisions and a WAL beside it
READY_S = 240.0


def rehearse(env: Environment, playbook_path: Path, *, target: str | None = None,
             sets: Mapping[str, Any] | None = None, copy_dir: Path | None = None,
             binary: Path | None = None) -> dict[str, Any]:
    from migrator.migration.engine import sigterm_as_interrupt

    started = time.monotonic()
    loaded = load_playbook(playbook_path)
    spec = loaded.spec
    argv = _copy_argv(env, loaded, binary)
    if spec.config.etcd is None:
        raise BadInput(f"{loaded.path}: config.etcd.endpoint is not set: "
                       "a rehearsal reads production's etcd to copy it")
    etcd_endpoint = spec.config.etcd.endpoint
    holder = DeploymentLock(spec.migration.state_dir / "lock").held_by_other()
    if holder:  # production is being migrated: stopped or isolated, not a deployment to copy now
        raise Refused(f"a migration of this deployment holds {spec.migration.state_dir / 'lock'}: {holder}")
    layout = CopyLayout((copy_dir or spec.migration.state_dir / "rehearsal").absolute())
    report: dict[str, Any] = {"kind": "rehearsal", "status": "failed", "production": str(loaded.path),
                              "copy_dir": str(layout.root)}
    with rehearsal_lock(layout):
        leftover = _remove_copy_and_its_gate(env, layout)
        if leftover or layout.root.exists():
            report["removed_leftover_copy"] = leftover
        if leftover:
            env.log.warning("rehearse.leftover_removed", dir=str(layout.root), stopped_pids=leftover)
        try:
            with sigterm_as_interrupt():
                _rehearse(env, loaded, etcd_endpoint, layout, argv, target, sets or {}, report)
        finally:
            removed_at = time.monotonic()
            _remove_copy_and_its_gate(env, layout)
            report["copy_removed"] = not layout.root.exists()
            report["cleanup_s"] = round(time.monotonic() - removed_at, 1)
            report["seconds"] = round(time.monotonic() - started, 1)
            env.log.info("rehearse.end", status=report["status"], seconds=report["seconds"])
    if report["status"] != "rehearsed":
        error = RehearsalFailed(f"the migration of the copy failed: {report.get('error')}; production was only read",
                                hint="the report says which step failed; fix it before migrating production")
        error.report = report
        raise error
    return report


def _remove_copy_and_its_gate(env: Environment, layout: CopyLayout) -> list[int]:
    """remove_copy, and first the firewall rule the copy's migration journaled, when a rehearsal
    killed with its gate closed left it on this host (it rejects the copy's private ports, which
    another program may take later). The journal is data: the rule is checked before it is used.
    The pids stopped."""
    from migrator.migration.journal import Journal
    from migrator.runtime import firewall

    journal_path = layout.state_dir / "journal.json"
    if layout.marker.is_file() and not layout.root.is_symlink():
        try:
            journal = Journal.load(journal_path)
            recorded = journal.marks.gate if journal is not None else None
            if recorded is not None:
                rule = firewall.GateRule.checked(recorded, where=str(journal_path))
                if firewall.remove(rule):
                    env.log.warning("rehearse.leftover_gate_removed", rule=rule.name)
        except MigrateError as unusable:  # an unreadable journal, a forged rule, nft refusing
            env.log.warning("rehearse.leftover_journal_unreadable", journal=str(journal_path), error=unusable.message)
    return remove_copy(layout)


def _copy_argv(env: Environment, loaded: LoadedPlaybook, binary: Path | None) -> list[str]:
    """The command the copy's Milvus runs: the binary production runs, or the one given."""
    spec = loaded.spec
    if binary is not None:
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            raise BadInput(f"--binary {binary}: not an executable file")
        return [str(binary.absolute()), "run", "standalone"]
    if isinstance(spec.runtime, ProcessRuntimeSpec):
        return list(spec.runtime.argv)
    if isinstance(spec.runtime, SystemdRuntimeSpec):
        from migrator.runtime import runtime_for_playbook
        from migrator.runtime.systemd import SystemdRuntime

        runtime = runtime_for_playbook(spec, env.environ)
        argv = runtime.exec_start() if isinstance(runtime, SystemdRuntime) else []
        if not argv:
            raise Refused(f"unit {spec.runtime.unit} has no ExecStart= the rehearsal could run")
        return argv
    refusal = driver_for(spec).rehearsal_refusal()
    if refusal is not None:
        raise refusal
    raise Refused(f"runtime kind {spec.runtime.kind}: the rehearsal runs its copy as a process on this host; "
                  "give --binary PATH (the Milvus binary of the same version, e.g. copied out of the image)",
                  hint="a copy run in a container of the same image is not built yet")


def _production_environ(loaded: LoadedPlaybook, runtime: Any) -> dict[str, str]:
    """What production's Milvus is given (not the tool's own environment: it may hold secrets)."""
    spec = loaded.spec
    if spec.runtime.kind == "process":
        return {**spec.declared_environment(), **spec.runtime.env}
    if spec.runtime.kind == "systemd":
        return {**runtime.environment(), **spec.declared_environment()}
    return spec.declared_environment()


def _rehearse(env: Environment, loaded: LoadedPlaybook, etcd_endpoint: str, layout: CopyLayout, argv: list[str],
              target: str | None,
              sets: Mapping[str, Any], report: dict[str, Any]) -> None:
    from migrator.config import EtcdSource, load_layers
    from migrator.milvus.client import MilvusAdapter
    from migrator.rehearsal import copyconfig
    from migrator.verbs.deployment import nothing_changed_yet

    spec = loaded.spec
    with nothing_changed_yet():
        runtime = driver_for(spec).production_runtime(env, loaded)
        token = spec.milvus.token(env.environ)
        version = spec.config.version
        if version is None:
            with MilvusAdapter.connect(spec.milvus.uri, token=token, timeout=30.0) as milvus:
                version = milvus.version()
        effective = load_layers(spec.config.dir, version,
                                spec.milvus_environment(runtime.environment() if runtime else {}),
                                EtcdSource(etcd_endpoint), env_origin=f"environment of {spec.runtime.kind}")
        copyconfig.refuse_what_a_copy_cannot_hold(effective)
    cwd = spec.runtime.cwd if isinstance(spec.runtime, ProcessRuntimeSpec) else Path("/")
    sources = {key: copyconfig.source_path(effective, key, cwd) for key in ("rocksmq.path", "localStorage.path")}
    if sources["rocksmq.path"] is None or sources["localStorage.path"] is None:
        raise Refused("rocksmq.path or localStorage.path is empty in production's config")
    rocksmq = spec.host_path(sources["rocksmq.path"])
    storage = spec.host_path(sources["localStorage.path"])
    root_path = (effective.get("etcd.rootPath").raw or "by-dev").strip()
    embedded = effective.get("etcd.use.embed").value is True
    report.update(milvus_version=version, rocksmq_path=str(rocksmq), storage_path=str(storage), etcd_embedded=embedded)

    copy_started = time.monotonic()
    needed = _check_room(layout, rocksmq, storage)
    report["disk"] = needed
    create_copy_dir(layout, str(loaded.path))
    linked: list[Any] = []
    try:
        config = copyconfig.plan_copy_config(effective, layout, _production_environ(loaded, runtime))
        copyconfig.write_copy_config(effective, layout, config)
        copied = _copy_data(env, etcd_endpoint, root_path, rocksmq, storage, layout, config, embedded)
        linked = copied.pop("linked")
        report["copy"] = {**copied, "seconds": round(time.monotonic() - copy_started, 1),
                          "bytes_on_disk": directory_size(layout.root)}
        playbook = copyconfig.copy_playbook(spec, layout, config, argv=argv, version=version, root_path=root_path)
        copy_playbook = copyconfig.write_playbook(layout, playbook)
        env.log.info("rehearse.copied", dir=str(layout.root), seconds=report["copy"]["seconds"],
                     etcd_keys=copied["etcd"]["keys"], bytes_on_disk=report["copy"]["bytes_on_disk"])
        _migrate_copy(env, copy_playbook, target, sets, report)
    except Interrupted:
        raise
    except MigrateError as error:  # the copy failed, not production: reported like a failed migration
        report["status"] = "failed"
        report["error"] = error.message
    finally:
        _check_links(linked, report)


def _check_links(linked: list[Any], report: dict[str, Any]) -> None:
    """Production's files the copy shared by a hard link must be as they were: a write through a
    link would have reached production, the loudest failure a rehearsal can have."""
    from migrator.rehearsal.storage import changed_links

    changed = changed_links(linked)
    report["production_links"] = {"checked": len(linked), "changed": changed[:20]}
    if changed:
        report["status"] = "failed"
        report["error"] = f"{len(changed)} production file(s) the copy shared by a hard link changed: {changed[:3]}"


def _check_room(layout: CopyLayout, rocksmq: Path, storage: Path) -> dict[str, int]:
    """Refused before anything is copied when the copy's file system lacks the room it needs: what
    cannot be linked (the same file system) is copied, and the copy's Milvus writes more as it runs
    (RocksMQ compactions, the NATS store, a backup when the playbook asks for one)."""
    from migrator.rehearsal.storage import bytes_to_copy

    parent = layout.root.parent
    parent.mkdir(parents=True, exist_ok=True)
    device = os.stat(parent).st_dev
    rocksmq_bytes = directory_size(rocksmq) + directory_size(meta_kv_path(rocksmq))
    if os.stat(rocksmq).st_dev == device:
        copied = sum(_sizes_not_sst(path) for path in (rocksmq, meta_kv_path(rocksmq)))
    else:
        copied = rocksmq_bytes
    if storage.is_dir():
        copied += bytes_to_copy(storage, time.time()) if os.stat(storage).st_dev == device else directory_size(storage)
    needed = copied + 2 * rocksmq_bytes + ROOM_MARGIN
    free = free_bytes(parent)
    if needed > free:
        from migrator.util.sizes import human_bytes

        raise Refused(f"{parent}: {human_bytes(free)} free, the rehearsal's copy needs {human_bytes(needed)} "
                      f"({human_bytes(copied)} copied, room for RocksMQ ({human_bytes(rocksmq_bytes)}) to grow)",
                      hint="give --dir on a file system with more room (the same one as the data "
                           "links instead of copying)")
    return {"free_bytes": free, "needed_bytes": needed, "copied_bytes_estimate": copied}


def _sizes_not_sst(directory: Path) -> int:
    total = 0
    for name in os.listdir(directory):
        if not name.endswith(".sst"):
            try:
                total += os.lstat(directory / name).st_size
            except FileNotFoundError:
                continue
    return total


def _copy_data(env: Environment, endpoint: str, root_path: str, rocksmq: Path, storage: Path, layout: CopyLayout,
               config: Any, embedded: bool) -> dict[str, Any]:
    """etcd at one revision, then RocksMQ (never behind etcd's checkpoints), then the segment files
    written before the etcd read; the copy's etcd loaded (and stopped again when Milvus embeds it)."""
    from migrator.rehearsal.etcd import CopyEtcd, new_segments_since, read_production
    from migrator.rehearsal.storage import copy_storage
    from migrator.rocksmq.checkpoint import checkpoint_live

    for attempt in range(1, SEGMENT_ATTEMPTS + 1):
        read = read_production(endpoint, root_path)
        data = checkpoint_live(rocksmq, layout.rocksmq_path)
        meta = checkpoint_live(meta_kv_path(rocksmq), layout.meta_kv_path)
        opened = new_segments_since(endpoint, read, root_path)
        if not opened:
            break
        # RocksMQ holds inserts into a segment the copy's etcd would not know: copy both again.
        env.log.warning("rehearse.segment_opened_meanwhile", attempt=attempt, segments=len(opened))
        shutil.rmtree(layout.rocksmq_path)
        shutil.rmtree(layout.meta_kv_path)
    else:
        raise Refused(f"production opened new segments during each of {SEGMENT_ATTEMPTS} copies of etcd and RocksMQ",
                      hint="rehearse at a quieter time")
    files = copy_storage(storage, layout.storage, written_before=read.read_at)
    server = CopyEtcd(layout.etcd_data, config.etcd_client_port, config.etcd_peer_port, layout.etcd_pid,
                      layout.log_dir / "etcd.log")
    server.start()
    try:
        items = [item if item.key.decode("utf-8", "replace") not in config.etcd_overrides
                 else type(item)(item.key, config.etcd_overrides[item.key.decode()].encode(), 0)
                 for item in read.unleased]
        keys = server.load(items)
    finally:
        if embedded:
            server.stop()  # the copy's Milvus opens this data dir itself
    return {
        "etcd": {"revision": read.revision, "keys": keys, "leased_left_out": len(read.items) - len(read.unleased),
                 "bytes": read.bytes},
        "rocksmq": {"linked_bytes": data.linked_bytes + meta.linked_bytes,
                    "copied_bytes": data.copied_bytes + meta.copied_bytes, "attempts": data.attempts + meta.attempts},
        "storage": {"linked_files": len(files.linked), "linked_bytes": files.linked_bytes,
                    "copied_files": files.copied_files, "copied_bytes": files.copied_bytes,
                    "written_after_the_etcd_read": files.newer_skipped},
        "linked": data.linked + meta.linked + files.linked,
    }


def _migrate_copy(env: Environment, copy_playbook: Path, target: str | None, sets: Mapping[str, Any],
                  report: dict[str, Any]) -> None:
    """Start the copy, a writer on it, the real apply; what the writer saw."""
    from migrator.migration.journal import Journal
    from migrator.rehearsal import writer as rehearsal_writer
    from migrator.runtime import runtime_for_playbook
    from migrator.runtime.process import ProcessRuntime
    from migrator.verbs.apply import apply

    spec = load_playbook(copy_playbook).spec
    token = spec.milvus.token(env.environ)
    runtime = runtime_for_playbook(spec, env.environ)
    # The copy's playbook (copyconfig.copy_playbook) runs Milvus as a process on this host.
    if not (isinstance(runtime, ProcessRuntime) and isinstance(spec.runtime, ProcessRuntimeSpec)):
        raise TypeError(f"the copy's playbook {copy_playbook} does not run a process")  # pragma: no cover
    started = time.monotonic()
    runtime.start()
    try:
        runtime.wait_healthy(spec.runtime.start_timeout_s, ready=lambda: _answers(spec.milvus.uri, token))
    except StartFailed as error:  # the copy's log is deleted with it: its last words go into the report
        raise StartFailed(f"the copy's Milvus did not start: {error.message}; its log ended: "
                          + " | ".join(_last_lines(spec.runtime.stdout_log, 3))) from None
    rehearsal_writer.create_collection(spec.milvus.uri, token)
    report["copy_start_s"] = round(time.monotonic() - started, 1)
    writer = rehearsal_writer.Writer(spec.milvus.uri, token)
    writer.start()
    try:
        if not writer.wait_for("w", 0.0, 60.0):
            raise Refused("the rehearsal's writer could not write to the copy within 60 s")
        applied_at = time.time()
        try:
            result = apply(env, playbook_path=copy_playbook, target=target, sets=sets, yes=True)
        except Interrupted:
            raise
        except MigrateError as error:
            result = error.report or {}
            report["error"] = error.message
        ended = time.time()
        writer.wait_for("w", ended, 60.0)  # clients reconnect on their own time
        writer.wait_for("r", ended, 60.0)
    finally:
        writer.stop()
    seen = writer.ledger.summary()
    missing = rehearsal_writer.missing_rows(spec.milvus.uri, token, writer.ledger.acknowledged) \
        if runtime.running() else None
    journal = Journal.load(spec.migration.state_dir / "journal.json")
    estimate = (journal.plan.get("estimate") if journal is not None else None) or {}
    report.update({
        "status": "rehearsed" if result.get("status") == "done" and missing == [] else "failed",
        "apply": {"status": result.get("status"), "error": result.get("error"),
                  "seconds": round(ended - applied_at, 1)},
        "measured": {"write_downtime_s": seen["longest_write_gap"]["seconds"],
                     "read_downtime_s": seen["longest_read_gap"]["seconds"],
                     "writer": seen, "acknowledged_missing": None if missing is None else missing[:20],
                     "acknowledged_missing_count": None if missing is None else len(missing),
                     "tool_write_downtime_s": result.get("write_downtime_s")},
        "estimate": {"write_downtime_s": estimate.get("write_downtime_s"), "parts": estimate.get("parts"),
                     "read_downtime_s": estimate.get("read_downtime_s"),
                     "write_downtime_budget_s": estimate.get("write_downtime_budget_s")},
        "steps": result.get("steps", []),
        "source_mq": result.get("source_mq"), "target_mq": result.get("target_mq"),
        "gate": result.get("gate"),
    })
    if missing:
        report["error"] = f"{len(missing)} write(s) the copy acknowledged are gone after the migration"
    elif report["status"] != "rehearsed" and "error" not in report:
        report["error"] = result.get("error") or f"apply ended {result.get('status')}"


def _last_lines(path: Path, count: int) -> list[str]:
    try:
        with open(path, "rb") as log:
            log.seek(max(0, os.fstat(log.fileno()).st_size - 64 * 1024))
            return [line.decode("utf-8", "replace")[:300] for line in log.read().splitlines()[-count:]]
    except OSError:
        return []


def _answers(uri: str, token: str | None) -> bool:
    from migrator.milvus.client import MilvusAdapter, MilvusUnavailable

    try:
        with MilvusAdapter.connect(uri, token=token, timeout=5.0) as milvus:
            milvus.databases()
        return True
    except MilvusUnavailable:
        return False
