"""playbook check: validate a playbook and say what it describes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migrator.context import Environment
from migrator.playbook import ComposeRuntimeSpec, Playbook


def check(env: Environment, file: Path) -> dict[str, Any]:
    """Validate against the schema (errors name the field and line); what an operator checks before a plan."""
    from migrator.migration.preflight import playbook_findings
    from migrator.playbook import load_playbook
    from migrator.util.redact import redact

    loaded = load_playbook(file)
    findings = [finding.to_dict() for finding in playbook_findings(loaded.spec)]
    findings += [{"level": "error", "key": "(template)", "message": f"{field} is a template field: fill it in "
                  "(or let `milvus-migrate sandbox up` write this playbook)"} for field in template_fields(loaded.path)]
    # The uri may carry user:password@ (milvus.uri): shown redacted like every output.
    return redact({"playbook": str(loaded.path), "sha256": loaded.sha256, **summarize(loaded.spec, env.environ),
                   "findings": findings, "ready": not any(f["level"] == "error" for f in findings)})


def template_fields(path: Path) -> list[str]:
    """`${name}` fields left in a playbook made from a template (playbooks/sandbox.yaml)."""
    import re

    text = path.read_text(encoding="utf-8", errors="replace")  # already read and parsed, within bounds
    return sorted(set(re.findall(r"\$\{[A-Za-z_]+\}", text)))


def summarize(spec: Playbook, environ: Mapping[str, str]) -> dict[str, Any]:
    """Where Milvus is, how it is driven, what maps where."""
    from migrator.config.keys import format_key
    from migrator.verbs.deployment import driver_for

    runtime = spec.runtime.model_dump(mode="json", exclude={"kind"})
    # Variables Milvus reads as mq.type or natsmq.server.*: they beat the file the tool edits.
    overrides = sorted(name for name in spec.environment
                       if format_key(name) == format_key("mq.type") or format_key(name).startswith("natsmqserver"))
    summary: dict[str, Any] = {
        "name": spec.name,
        "milvus": spec.milvus.uri,
        "health": spec.milvus.health_url() + "/healthz",
        "config_dir": str(spec.config.dir),
        "runtime": {"kind": spec.runtime.kind, **runtime},
        "logs": spec.logs.kind,
        "path_map": {k: str(v) for k, v in spec.path_map.items()},
        "state_dir": str(spec.migration.state_dir),
        "backup_dir": str(spec.migration.backup_dir) if spec.migration.backup_dir else None,
        "mq_environment": overrides,
    }
    summary.update(driver_for(spec).summary(spec))
    if isinstance(spec.runtime, ComposeRuntimeSpec) and spec.runtime.file.exists():
        summary["config_mounts"] = compose_config_mounts(spec, spec.runtime, environ)
    return summary


def compose_config_mounts(spec: Playbook, compose: ComposeRuntimeSpec,
                          environ: Mapping[str, str]) -> dict[str, str | None]:
    """Each config file Milvus reads -> its host path through the service's mounts, or None."""
    from migrator.config.layers import config_files_for
    from migrator.runtime.compose import load_service

    service = load_service(compose.file, compose.service, environ)
    inside = compose.config_dir_in_container.rstrip("/")
    return {name: str(host) if (host := service.host_path(f"{inside}/{name}")) else None
            for name in config_files_for(spec.config.version)}
