"""playbook check: validate a playbook and say what it describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from migrator.context import Environment
from migrator.mq import Mq


def check(env: Environment, file: Path) -> dict[str, Any]:
    """Validate against the schema (errors name the field and line); what an operator checks before a plan."""
    from migrator.playbook import load_playbook
    from migrator.util.redact import redact

    loaded = load_playbook(file)
    # The uri may carry user:password@ (milvus.uri): shown redacted like every output.
    return redact({"playbook": str(loaded.path), "sha256": loaded.sha256, **summarize(loaded.spec, env.environ)})


def summarize(spec: Any, environ: Mapping[str, str]) -> dict[str, Any]:  # noqa: ANN401 - a Playbook, imported lazily
    """Where Milvus is, how it is driven, what maps where."""
    from migrator.config.keys import format_key

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
    if spec.runtime.kind == "kubernetes":
        from migrator.migration.kubernetes import change_for

        out_dir = spec.migration.state_dir / "kubernetes"
        summary["kubernetes_change"] = change_for(spec.runtime, Mq.NATSMQ.value, spec.migration.natsmq, out_dir).to_dict()
    if spec.runtime.kind == "compose" and spec.runtime.file.exists():
        summary["config_mounts"] = compose_config_mounts(spec, environ)
    return summary


def compose_config_mounts(spec: Any, environ: Mapping[str, str]) -> dict[str, str | None]:  # noqa: ANN401
    """Each config file Milvus reads -> its host path through the service's mounts, or None."""
    from migrator.config.layers import config_files_for
    from migrator.runtime.compose import load_service

    service = load_service(spec.runtime.file, spec.runtime.service, environ)
    inside = spec.runtime.config_dir_in_container.rstrip("/")
    return {name: str(host) if (host := service.host_path(f"{inside}/{name}")) else None
            for name in config_files_for(spec.config.version)}
