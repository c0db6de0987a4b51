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


def compose_mount_findings(loaded: LoadedPlaybook, environ: Mapping[str, str], edited: set[str]) -> list[Finding]:
    """Each config file the migration edits must be the host side of the service's mount of it:
    an edit of a file the container does not see, or of one inside it, is lost."""
    from migrator.errors import Refused
    from migrator.runtime.compose import load_service

    runtime = loaded.spec.runtime
    service = load_service(runtime.file, runtime.service, environ)
    findings = []
    for name in sorted(edited):
        expected = loaded.spec.config.dir / name
        try:
            host = service.host_config_file(runtime.config_dir_in_container, name)
        except Refused as error:
            findings.append(Finding("error", "runtime.file", f"{error.message}; {error.hint}"))
            continue
        if host.resolve() != expected.resolve():
            findings.append(Finding(
                "error", "config.dir",
                f"{runtime.file}: service {runtime.service} mounts {name} from {host}, but config.dir gives "
                f"{expected}: the edit would go to a file Milvus does not read"))
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
