"""Every preflight rule, in one place: what must hold before a migration may start.

`plan` runs them all against the facts it gathers; apply's `preflight` step runs `recheck`
against the deployment as it is then. Each rule returns Findings; an error refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from migrator.config import MQ_TYPE, EffectiveConfig, natsmq_findings
from migrator.config.edit import ConfigEdit
from migrator.config.keys import ROCKSMQ_PATH
from migrator.config.layers import parse_release
from migrator.findings import Finding
from migrator.migration import road
from migrator.migration.journal import DeploymentLock
from migrator.milvus.etcd import mq_pin_key
from migrator.milvus.nats_store import NANOS_PER_MINUTE
from migrator.mq import MIGRATABLE, Mq
from migrator.playbook import ComposeRuntimeSpec, DockerRuntimeSpec, LoadedPlaybook, Playbook
from migrator.util.sizes import human_bytes

RETENTION = "natsmq.server.retention"


def version_findings(version: str, *, pin: str | None = None, pin_key: str = mq_pin_key("<rootPath>")) -> list[Finding]:
    """natsmq exists from 2.3.0 and was removed in 2.6; 2.6 pins its MQ in etcd and switches it itself.

    `pin` is the value of the 2.6 pin key when it was read (etcd reachable), for the message.
    """
    release = parse_release(version)
    if release is None or release < road.FIRST_WITH_NATS:
        return [Finding("error", "milvus.version",
                        f"Milvus {version}: natsmq exists from 2.3.0 and was removed in 2.6; "
                        "need 2.3 <= version < 2.6")]
    if road.is_pinned(release):
        now = f" (it holds {pin!r})" if pin is not None else ""
        return [Finding("error", "milvus.version",
                        f"Milvus {version}: 2.6 removed natsmq and pins its MQ in etcd at {pin_key}{now} at its first "
                        "start, so a yaml or env edit of mq.type changes nothing: this tool does not edit it. What 2.6 "
                        f"offers instead: AlterWAL (POST {road.ALTER_WAL_PATH} {json.dumps(road.ALTER_WAL_BODY)}), "
                        "RocksMQ <-> Woodpecker, on docker compose standalone with the etcd config source "
                        "(the plan's road lists the preconditions)")]
    return []


def road_findings(version: str, source: str, target: str) -> list[Finding]:
    """Where this plan leaves the deployment on the road to 2.6 (the road itself is a plan fact)."""
    release = parse_release(version)
    if release is None or road.is_pinned(release):
        return []
    findings = []
    if target == Mq.NATSMQ and source != Mq.NATSMQ:
        findings.append(Finding("warning", "road",
                                "natsmq is deprecated since Milvus 2.5 (a CVE in its bundled nats-server) and "
                                "removed in 2.6: before any upgrade to 2.6 this deployment must come back to "
                                "RocksMQ (see the road)"))
    if source == Mq.NATSMQ:
        if release[:2] == (2, 5) and release < road.ROAD_START:
            findings.append(Finding("warning", "milvus.version",
                                    f"Milvus {version}: upgrade within 2.5 to "
                                    f"{road.fmt(road.ROAD_START)} or later first, "
                                    "keeping NATS, then switch to RocksMQ: the upgrade to 2.6 starts from "
                                    f"{road.fmt(road.ROAD_START)} and keeps the MQ it finds"))
        findings.append(Finding("info", "road", "this deployment runs natsmq, which Milvus 2.6 no longer has: "
                                "the way to 2.6 goes through RocksMQ (see the road)"))
    return findings


def target_store_findings(store: Mapping[str, Any] | None) -> list[Finding]:
    """A target store that is not empty: say what is in it and that apply moves it aside before the restart
    (a NATS or RocksMQ started on an old store replays or skips from positions that are not its own)."""
    if not store or store["empty"]:
        return []
    contents = store["contents"]
    where = ", ".join(store["paths"])
    if store["kind"] == Mq.NATSMQ:
        streams = contents.get("streams", [])
        what = (f"{len(streams)} JetStream stream(s), {human_bytes(contents.get('bytes_on_disk', 0))} on disk, "
                f"created {contents.get('oldest_stream_created') or '?'}, last written "
                f"{contents.get('newest_write') or '?'}")
        key = "natsmq.server.storeDir"
    else:
        what = (f"{contents.get('topics', '?')} topic(s), {contents.get('messages', '?')} message(s), "
                f"{human_bytes(contents.get('bytes_on_disk', 0))} on disk, newest message "
                f"{contents.get('newest_time') or '?'}"
                if "problem" not in contents else f"{human_bytes(contents.get('bytes_on_disk', 0))} on disk "
                f"({contents['problem']})")
        key = ROCKSMQ_PATH
    return [Finding("warning", key, f"the target store {where} is not empty: {what}; apply moves it aside (kept, "
                    "not deleted) before the restart, so the target MQ starts on an empty store")]


def retention_findings(store: Mapping[str, Any] | None, planned: Mapping[str, Any]) -> list[Finding]:
    """natsmq.server.retention.* against the streams NATS will find in its store at start.

    Milvus asks JetStream for each channel's stream with the retention in its config; a stream that
    exists with other limits is refused ("stream name already in use") and Milvus panics at start
    (seen on 2.3.5). A store apply moves aside is no problem: its streams are created anew.
    """
    if not store or store["kind"] != Mq.NATSMQ or store["empty"]:
        return []
    wanted = expected_stream_limits(planned)
    differing = sorted(stream["name"] for stream in store["contents"].get("streams", [])
                       if any(stream.get(limit) is not None and stream[limit] != value
                              for limit, value in wanted.items()))
    if not differing:
        return []
    shown = ", ".join(differing[:3]) + (f" and {len(differing) - 3} more" if len(differing) > 3 else "")
    if store["action"] == "move-aside":
        return [Finding("info", RETENTION, f"the retention asked differs from the streams in {store['paths'][0]} "
                        f"({shown}); that store is moved aside, so NATS creates its streams anew with it")]
    return [Finding("error", RETENTION,
                    f"the retention asked ({_limits(wanted)}) differs from the streams already in {store['paths'][0]} "
                    f"({shown}): at start Milvus asks JetStream for each stream with its configured retention, the "
                    "existing stream refuses it (stream name already in use, with another configuration) and Milvus "
                    "panics; keep the store's retention, or move the store aside first")]


def expected_stream_limits(values: Mapping[str, Any]) -> dict[str, int]:
    """The limits a Milvus with these natsmq.server.retention.* values gives its streams, as nats-server
    stores them in meta.inf: max_age in ns (0: none); an empty or 0 max_bytes/max_msgs becomes -1."""
    max_age = values.get("natsmq.server.retention.maxAge")
    return {
        "max_age_ns": int(max_age or 0) * NANOS_PER_MINUTE,
        "max_bytes": int(values.get("natsmq.server.retention.maxBytes") or 0) or -1,
        "max_msgs": int(values.get("natsmq.server.retention.maxMsgs") or 0) or -1,
    }


def store_room_findings(host_dir: Path, config_dir: str, max_file_store: object, rocksmq_bytes: int) -> list[Finding]:
    """Room on the disk of natsmq's storeDir (its host side) for what the RocksMQ holds now, and for
    maxFileStore when the host side is another path (natsmq_rules checked the path as spelled)."""
    from migrator.rocksmq.files import existing_ancestor, free_bytes

    key = "natsmq.server.storeDir"
    existing = existing_ancestor(host_dir)
    free = free_bytes(existing)
    findings = []
    if rocksmq_bytes and free < rocksmq_bytes:
        findings.append(Finding("error", key,
                                f"{existing}: {human_bytes(free)} free, less than the {human_bytes(rocksmq_bytes)} the "
                                "RocksMQ holds now: with the same retention JetStream would fill the disk and Milvus's "
                                "writes would fail"))
    if str(host_dir) != config_dir and isinstance(max_file_store, int) and free < max_file_store:
        findings.append(Finding("warning", key,
                                f"{existing} (host side of {config_dir}): {human_bytes(free)} free, less than "
                                f"maxFileStore {human_bytes(max_file_store)}: JetStream writes fail once the disk is "
                                "full"))
    return findings


def _limits(limits: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {value}" for name, value in limits.items())


def source_findings(source: str, target: str) -> list[Finding]:
    if source not in MIGRATABLE and source != target:
        return [Finding("error", MQ_TYPE, f"Milvus runs on {source}; this tool moves between rocksmq and natsmq")]
    return []


def edit_findings(*edits: ConfigEdit) -> list[Finding]:
    """An environment variable or etcd key that beats the file the edit writes."""
    return [Finding("error", refusal.key, refusal.message) for edit in edits for refusal in edit.refusals]


def gate_findings(setting: str, gate: Any) -> list[Finding]:
    """Which gate keeps clients away (migration/gate.py GateChoice): an error when the playbook asks
    for the firewall and this machine cannot set one; otherwise said, as information."""
    if setting == "firewall" and gate.kind != "firewall":
        return [Finding("error", "migration.gate", f"the playbook asks for the firewall gate, but: {gate.why}")]
    return [Finding("info", "migration.gate", f"clients are kept away by {gate.kind}: {gate.why}")]


def playbook_findings(spec: Playbook) -> list[Finding]:
    """What the playbook alone must say before a plan can pass: `playbook check` runs these too, so
    a playbook it calls ready is one `plan` does not refuse for what is missing in it."""
    return etcd_findings(spec) + cleanup_findings(spec.migration) + backup_dir_findings(spec.migration)


def etcd_findings(spec: Playbook) -> list[Finding]:
    """The proof that every channel moved to the new MQ is read from etcd's channel checkpoints."""
    if spec.config.etcd is None and spec.runtime.kind != "kubernetes":
        return [Finding("error", "config.etcd.endpoint",
                        "config.etcd.endpoint is not set: apply proves from etcd's channel checkpoints that every "
                        "channel reads the new MQ before clients may write again, and cannot without it; an "
                        "embedded etcd (etcd.use.embed: true, deb/rpm, standalone_embed.sh) listens on "
                        "http://127.0.0.1:2379 unless etcd.config.path names an embed config with other "
                        "listen-client-urls; docker compose: the etcd service's published 2379")]
    return []


def settings_findings(effective: EffectiveConfig, changes: Mapping[str, Any], source: str, target: str,
                      *, port_is_free: Callable[[int], bool] | None = None) -> list[Finding]:
    """The target MQ's settings as Milvus will start with them (natsmq.server.*, or rocksmq.path).
    `port_is_free`: where NATS will bind (default: this host's 127.0.0.1; `container_port_check`)."""
    if source == target:
        return []
    return natsmq_findings(effective, dict(changes), target, port_is_free=port_is_free)


NATS_STORE_DIR = "natsmq.server.storeDir"


def container_mount_findings(loaded: LoadedPlaybook, environ: Mapping[str, str], effective: EffectiveConfig,
                             changes: Mapping[str, Any], edited: set[str]) -> list[Finding]:
    """docker and compose: the mounts of the container (as it runs) or of the service (in the
    compose file, what `up -d` creates it from), checked by `mount_findings`."""
    from migrator.runtime import runtime_for_playbook
    from migrator.runtime.compose import ComposeRuntime
    from migrator.runtime.docker import DockerRuntime

    runtime = runtime_for_playbook(loaded.spec, environ)
    if not isinstance(runtime, (ComposeRuntime, DockerRuntime)):  # pragma: no cover - called for those two only
        raise TypeError(f"runtime kind {loaded.spec.runtime.kind} has no container mounts")
    where = (f"container {runtime.container}" if isinstance(runtime, DockerRuntime)
             else f"{runtime.file}: service {runtime.service}")
    data = {ROCKSMQ_PATH: str(effective.get(ROCKSMQ_PATH).value or "")}
    if changes.get(MQ_TYPE) == Mq.NATSMQ or effective.mq_type() == Mq.NATSMQ:
        data[NATS_STORE_DIR] = str(changes.get(NATS_STORE_DIR) or effective.get(NATS_STORE_DIR).value or "")
    return mount_findings(loaded, runtime.mounts(), where, edited, {k: v for k, v in data.items() if v})


def container_port_check(loaded: LoadedPlaybook, environ: Mapping[str, str]) -> Callable[[int], bool]:
    """A container's NATS binds the container's own 127.0.0.1: whether its port is free is asked
    there (through its network namespace), not on this host's loopback."""
    from migrator.runtime import runtime_for_playbook
    from migrator.runtime.netns import port_is_free

    runtime = runtime_for_playbook(loaded.spec, environ)
    return lambda port: port_is_free(runtime.reach, port)


def mount_findings(loaded: LoadedPlaybook, mounts: Mapping[str, Path], where: str, edited: set[str],
                   data_paths: Mapping[str, str]) -> list[Finding]:
    """Each config file the migration edits must be the host side of the container's mount of it,
    and each data path it reads or moves (rocksmq.path, natsmq.server.storeDir) must be on a mount
    whose host side the playbook's path_map names: an edit of a file the container does not see,
    or of one inside it, is lost; data inside the container is out of the tool's reach (backups,
    the store moved aside) and goes with it when it is recreated. A config file mounted on its own
    (a single-file bind mount) is held by its inode: its edits are written in place."""
    from migrator.runtime.containers import host_path_in

    spec = loaded.spec
    runtime = spec.runtime
    if not isinstance(runtime, (ComposeRuntimeSpec, DockerRuntimeSpec)):  # pragma: no cover - containers only
        raise TypeError(f"runtime kind {runtime.kind} has no container mounts")
    key = "runtime.container" if runtime.kind == "docker" else "runtime.file"
    inside_dir = runtime.config_dir_in_container.rstrip("/")
    shown = ", ".join(f"{host}:{inside}" for inside, host in sorted(mounts.items())) or "none"
    findings = []
    for name in sorted(edited):
        inside = f"{inside_dir}/{name}"
        expected = spec.config.dir / name
        host = host_path_in(mounts, inside)
        if host is None:
            findings.append(Finding(
                "error", key,
                f"{where} does not mount {inside} from the host (its mounts: {shown}); an edit inside the "
                f"container is lost when it is recreated; mount it (`- ./{name}:{inside}`), recreate the "
                "container, then plan again"))
        elif host.resolve() != expected.resolve():
            findings.append(Finding(
                "error", "config.dir",
                f"{where} mounts {name} from {host}, but config.dir gives {expected}: the edit would go to a "
                "file Milvus does not read"))
        elif inside in mounts and host.is_file():
            findings.append(Finding(
                "warning", key,
                f"{where} mounts {host}:{inside} as a single file: the running container holds its inode, "
                "so the tool writes it in place (a rename would not reach the container)"))
    for setting, inside in sorted(data_paths.items()):
        host = host_path_in(mounts, inside)
        mapped = spec.host_path(inside)
        if host is None:
            findings.append(Finding(
                "error", setting,
                f"{setting} {inside} is on no mount of {where} (its mounts: {shown}): the data lives inside the "
                "container, out of this tool's reach, and goes with it when it is recreated"))
        elif host.resolve() != mapped.resolve():
            findings.append(Finding(
                "error", "path_map",
                f"{setting} {inside} is {host} on the host ({where}), but path_map gives {mapped}"))
    return findings


def playbook_dirs_findings(spec: Any, changes: Mapping[str, Any]) -> list[Finding]:
    """natsmq.server.storeDir never over the playbook's own directories: apply moves a store that is
    not empty aside, and would take the state dir, a backup or the config with it."""
    from migrator.util.paths import overlap

    store = changes.get(NATS_STORE_DIR)
    if not isinstance(store, str) or not store.startswith("/"):
        return []
    own = [("migration.state_dir", spec.migration.state_dir), ("migration.backup_dir", spec.migration.backup_dir),
           ("config.dir", spec.config.dir)]
    return [Finding("error", NATS_STORE_DIR, f"{store} overlaps the playbook's {role} {path}: apply moves a store "
                    "that is not empty aside; give NATS a directory of its own")
            for role, path in own if path is not None and overlap(store, path)]


def state_findings(state_dir: Path) -> list[Finding]:
    """One migration per deployment at a time."""
    holder = DeploymentLock(state_dir / "lock").held_by_other()
    if holder:
        return [Finding("error", "migration.state_dir", f"another migration is running: {holder}")]
    return []


def cleanup_findings(migration: Any) -> list[Finding]:
    """The clean-up deletes rocksmq.path: only what this run's verified backup covers."""
    if migration.cleanup and not migration.backup:
        return [Finding("error", "migration.cleanup",
                        "cleanup: true deletes rocksmq.path, and backup is false: set backup: true (and a backup_dir)")]
    return []


def backup_dir_findings(migration: Any) -> list[Finding]:
    if migration.backup and migration.backup_dir is None:
        return [Finding("error", "migration.backup_dir", "migration.backup is true but no backup_dir is set")]
    return []


def backup_room_findings(loaded: LoadedPlaybook, rocksmq_facts: Mapping[str, Any]) -> list[Finding]:
    backup_dir = loaded.spec.migration.backup_dir
    if backup_dir is None:
        return []  # playbook_findings says it is missing
    from migrator.rocksmq.files import free_bytes

    needed = int(rocksmq_facts.get("bytes_on_disk", 0))
    free = free_bytes(backup_dir)
    if needed and free < needed * 1.1:
        return [Finding("error", "migration.backup_dir", f"{backup_dir}: {free} bytes free, the backup "
                                                         f"needs about {needed}")]
    return []


def budget_findings(estimate: Mapping[str, Any], verify_s: float) -> list[Finding]:
    """A budget below the estimate: apply refuses before the first stop (steps/preflight.py). A reload
    of the loaded collections estimated past the snapshot's and verify's deadline: they would fail."""
    findings = []
    seconds, budget = estimate.get("write_downtime_s"), estimate.get("write_downtime_budget_s")
    if seconds is not None and budget is not None and seconds > budget:
        findings.append(Finding("warning", "migration.write_downtime_budget_s",
                                f"the estimated write-downtime, {seconds:.0f} s, exceeds the budget of {budget:.0f} s: "
                                "apply stops before the first stop, with nothing changed; raise the budget, or leave "
                                "it out for one from the estimate"))
    reload_s = estimate.get("reload_s")
    if reload_s is not None and reload_s > verify_s / 2:
        findings.append(Finding("warning", "migration.deadlines.verify_s",
                                f"reloading the loaded collections after a restart is estimated at {reload_s:.0f} s, "
                                f"more than half of the {verify_s:.0f} s the snapshot and verify may wait for it: "
                                "raise migration.deadlines.verify_s"))
    return findings


def recheck(version: str, configured_mq: str, source: str, target: str) -> list[Finding]:
    """apply's preflight: the rules that can change between plan and apply, against the deployment now."""
    findings = version_findings(version)
    if configured_mq not in (source, target):
        findings.append(Finding("error", MQ_TYPE,
                                f"Milvus is configured for {configured_mq}, the plan expects {source}"))
    return findings
