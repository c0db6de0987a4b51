"""Every preflight rule, in one place: what must hold before a migration may start.

`plan` runs them all against the facts it gathers; apply's `preflight` step runs `recheck`
against the deployment as it is then. Each rule returns Findings; an error refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from migrator.config import MQ_TYPE, EffectiveConfig, natsmq_findings
from migrator.config.edit import ConfigEdit
from migrator.config.layers import parse_version
from migrator.findings import Finding
from migrator.migration.journal import DeploymentLock
from migrator.playbook import LoadedPlaybook

TARGETS = ("natsmq", "rocksmq")
QUOTA_ENABLED = "quotaAndLimits.enabled"


def version_findings(version: str) -> list[Finding]:
    """natsmq exists from 2.3.0 and was removed in 2.6."""
    parsed = parse_version(version)
    if parsed is None or not ((2, 3) <= parsed < (2, 6)):
        return [Finding("error", "milvus.version",
                        f"Milvus {version}: natsmq exists from 2.3.0 and was removed in 2.6; need 2.3 <= version < 2.6")]
    return []


def source_findings(source: str, target: str) -> list[Finding]:
    if source not in TARGETS and source != target:
        return [Finding("error", MQ_TYPE, f"Milvus runs on {source}; this tool moves between rocksmq and natsmq")]
    return []


def edit_findings(*edits: ConfigEdit) -> list[Finding]:
    """An environment variable or etcd key that beats the file the edit writes."""
    return [Finding("error", refusal.key, refusal.message) for edit in edits for refusal in edit.refusals]


def quota_findings(effective: EffectiveConfig) -> list[Finding]:
    """forceDeny only stops writes when the quota center runs."""
    resolved = effective.get(QUOTA_ENABLED)
    if resolved.value is not True:
        return [Finding("error", QUOTA_ENABLED,
                        f"{QUOTA_ENABLED} is not true ({resolved.source}): forceDeny would not stop writes")]
    return []


def settings_findings(effective: EffectiveConfig, changes: Mapping[str, Any], source: str, target: str) -> list[Finding]:
    """The target MQ's settings as Milvus will start with them (natsmq.server.*, or rocksmq.path)."""
    if source == target:
        return []
    return natsmq_findings(effective, dict(changes), target)


ROCKSMQ_PATH = "rocksmq.path"
NATS_STORE_DIR = "natsmq.server.storeDir"


def container_mount_findings(loaded: LoadedPlaybook, environ: Mapping[str, str], effective: EffectiveConfig,
                             changes: Mapping[str, Any], edited: set[str]) -> list[Finding]:
    """docker and compose: the mounts of the container (as it runs) or of the service (in the
    compose file, what `up -d` creates it from), checked by `mount_findings`."""
    from migrator.runtime import runtime_for_playbook

    runtime = runtime_for_playbook(loaded.spec, environ)
    spec = loaded.spec.runtime
    where = f"container {spec.container}" if spec.kind == "docker" else f"{spec.file}: service {spec.service}"
    data = {ROCKSMQ_PATH: str(effective.get(ROCKSMQ_PATH).value or "")}
    if changes.get("mq.type") == "natsmq" or effective.mq_type() == "natsmq":
        data[NATS_STORE_DIR] = str(changes.get(NATS_STORE_DIR) or effective.get(NATS_STORE_DIR).value or "")
    return mount_findings(loaded, runtime.mounts(), where, edited, {k: v for k, v in data.items() if v})


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


def state_findings(state_dir: Path) -> list[Finding]:
    """One migration per deployment at a time."""
    holder = DeploymentLock(state_dir / "lock").held_by_other()
    if holder:
        return [Finding("error", "migration.state_dir", f"another migration is running: {holder}")]
    return []


def backup_room_findings(loaded: LoadedPlaybook, rocksmq_facts: Mapping[str, Any]) -> list[Finding]:
    backup_dir = loaded.spec.migration.backup_dir
    if backup_dir is None:
        return [Finding("error", "migration.backup_dir", "migration.backup is true but no backup_dir is set")]
    from migrator.rocksmq.files import free_bytes

    needed = int(rocksmq_facts.get("bytes_on_disk", 0))
    free = free_bytes(backup_dir)
    if needed and free < needed * 1.1:
        return [Finding("error", "migration.backup_dir", f"{backup_dir}: {free} bytes free, the backup needs about {needed}")]
    return []


def recheck(version: str, configured_mq: str, source: str, target: str) -> list[Finding]:
    """apply's preflight: the rules that can change between plan and apply, against the deployment now."""
    findings = version_findings(version)
    if configured_mq not in (source, target):
        findings.append(Finding("error", MQ_TYPE, f"Milvus is configured for {configured_mq}, the plan expects {source}"))
    return findings
