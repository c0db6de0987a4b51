"""`milvus-migrate playbook check FILE`: validate a playbook and say what it describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import typer


def register(app: typer.Typer) -> None:
    playbook_app = typer.Typer(help="Work with playbooks (one YAML file per deployment).", no_args_is_help=True)
    app.add_typer(playbook_app, name="playbook")

    @playbook_app.command("check")
    def check_command(
        ctx: typer.Context,
        file: Path = typer.Argument(..., help="The playbook to validate."),
    ) -> None:
        """Validate a playbook against the schema (errors name the field and line) and summarize it."""
        from migrator.playbook import load_playbook

        env = ctx.obj
        loaded = load_playbook(file)
        summary = summarize(loaded.spec, env.environ)
        env.emit({"playbook": str(loaded.path), "sha256": loaded.sha256, **summary}, render(loaded.path, summary))


def summarize(spec: Any, environ: Mapping[str, str]) -> dict[str, Any]:  # noqa: ANN401 - a Playbook, imported lazily
    """What an operator checks before a plan: where Milvus is, how it is driven, what maps where."""
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
        from migrator.runtime.kubernetes import change_for

        out_dir = spec.migration.state_dir / "kubernetes"
        summary["kubernetes_change"] = change_for(spec.runtime, "natsmq", spec.migration.natsmq, out_dir).as_dict()
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


def render(path: Path, summary: dict[str, Any]) -> str:
    runtime = summary["runtime"]
    details = ", ".join(f"{k}={v}" for k, v in runtime.items() if k != "kind" and v not in (None, [], {}))
    rows = [
        ("playbook", f"{path} (valid)"),
        ("name", summary["name"]),
        ("milvus", summary["milvus"]),
        ("health", summary["health"]),
        ("config dir", summary["config_dir"]),
        ("runtime", f"{runtime['kind']}: {details}"),
        ("logs", summary["logs"]),
        ("state dir", summary["state_dir"]),
    ]
    rows += [("path map", f"{inside} -> {host}") for inside, host in summary["path_map"].items()]
    if summary["backup_dir"]:
        rows.append(("backup dir", summary["backup_dir"]))
    if summary["mq_environment"]:
        rows.append(("warning", "environment sets " + ", ".join(summary["mq_environment"]) +
                     ": it beats any config file edit (plan refuses unless it matches the target)"))
    for name, host in summary.get("config_mounts", {}).items():
        rows.append(("config mount", f"{name} -> {host}" if host else
                     f"{name} not mounted from the host: an edit inside the container would be lost"))
    lines = [f"{name:12} {value}" for name, value in rows]
    if change := summary.get("kubernetes_change"):
        lines.append("kubernetes   the change to natsmq; files:")
        for name, text in change["files"].items():
            lines.append(f"  {name}:")
            lines += ["    " + line for line in text.splitlines()]
        lines.append("  then run:")
        lines += ["    " + " ".join(argv) for argv in change["commands"]]
    return "\n".join(lines)
