"""`milvus-migrate config show|diff|set`: the effective MQ settings and a safe edit of the winning file."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from migrator.context import Environment
from migrator.errors import Refused

if TYPE_CHECKING:
    from migrator.config import ConfigEdit, EffectiveConfig, Finding

# What `config show` lists: the keys the migration reads or writes.
SHOWN_KEYS = (
    "mq.type",
    "rocksmq.path",
    "quotaAndLimits.enabled",
    "quotaAndLimits.limitWriting.forceDeny",
    "pulsar.maxMessageSize",
    "etcd.use.embed",
    "etcd.rootPath",
)


class Target(str, Enum):
    natsmq = "natsmq"
    rocksmq = "rocksmq"


def load(env: Environment, config_dir: Path, env_file: Optional[Path], version: Optional[str], etcd: Optional[str]) -> "EffectiveConfig":
    """The effective config; the env file, when given, is the environment Milvus sees."""
    from migrator.config import EtcdSource, load_layers, read_env_file

    if env_file is not None:
        environ, origin = read_env_file(env_file), str(env_file)
    else:
        environ, origin = dict(env.environ), "environment of this shell"
    return load_layers(config_dir, version, environ, EtcdSource(etcd) if etcd else None, env_origin=origin)


def show_config(env: Environment, effective: "EffectiveConfig") -> None:
    from migrator.config.keys import NATSMQ_DEFAULTS

    resolved = [effective.get(key) for key in (*SHOWN_KEYS, *NATSMQ_DEFAULTS)]
    mq_type = effective.mq_type()
    data = {
        "config_dir": str(effective.config_dir),
        "files": [str(layer.path) for layer in effective.layers],
        "mq_type": mq_type,
        "etcd": effective.etcd_state,
        "settings": [item.to_dict() for item in resolved],
    }
    width = max(len(item.key) for item in resolved)
    text = [f"files (lowest precedence first): {', '.join(data['files'])}", f"etcd: {effective.etcd_state}",
            f"mq in use: {mq_type}", ""]
    text += [f"{item.key.ljust(width)} = {_shown(item.raw)}  ({item.source})" for item in resolved]
    env.emit(data, "\n".join(text))


def plan_changes(
    effective: "EffectiveConfig", target: Optional[Target], assignments: List[str]
) -> tuple["ConfigEdit", list["Finding"]]:
    """The edit for `--to` and every `--set KEY=VALUE`, and the findings for the target MQ."""
    from migrator.config import MQ_TYPE, natsmq_findings, parse_assignment, plan_edit
    from migrator.errors import BadInput

    changes: dict[str, object] = {MQ_TYPE: target.value} if target else {}
    changes.update(parse_assignment(assignment) for assignment in assignments)
    if not changes:
        raise BadInput("nothing to change: give --to natsmq|rocksmq and/or --set KEY=VALUE")
    edit = plan_edit(effective, changes)
    mq_after = str(edit.changes.get(MQ_TYPE, effective.mq_type()))
    findings = natsmq_findings(effective, edit.changes, mq_after) if mq_after in ("natsmq", "rocksmq") else []
    return edit, findings


def report_edit(env: Environment, edit: "ConfigEdit", findings: list["Finding"], written: dict[str, str] | None) -> None:
    data = {**edit.to_dict(), "findings": [finding.to_dict() for finding in findings], "written": written}
    text = [edit.diff.rstrip("\n") if edit.changed else f"{edit.target}: already as asked, nothing to change"]
    text += [f"refused: {refusal.message}" for refusal in edit.refusals]
    text += [str(finding) for finding in findings]
    if written:
        text.append(f"written: {written['file']} (original kept: {written['original']}, sha256 {written['sha256']})")
    env.emit(data, "\n".join(text))


def check_allowed(edit: "ConfigEdit", findings: list["Finding"]) -> None:
    """Refused when the edit cannot win or a finding is an error."""
    edit.raise_if_refused()
    errors = [finding for finding in findings if finding.level == "error"]
    if errors:
        raise Refused("; ".join(f"{finding.key}: {finding.message}" for finding in errors))


def write_edit(edit: "ConfigEdit", backup_dir: Optional[Path]) -> dict[str, str]:
    from migrator.config import keep_original, write_atomic

    original, digest = keep_original(edit.target, backup_dir or edit.target.resolve().parent / ".milvus-migrate")
    written = write_atomic(edit.target, edit.text)
    return {"file": str(written), "original": str(original), "sha256": digest}


def _shown(raw: Optional[str]) -> str:
    if raw is None:
        return "(not set)"
    return raw if raw != "" else "(empty)"


_CONFIG_DIR = typer.Option(..., "--config-dir", help="Milvus's config dir (MILVUSCONF): milvus.yaml, user.yaml, ...")
_ENV_FILE = typer.Option(None, "--env-file", help="KEY=VALUE file: the environment Milvus runs with (default: this shell's).")
_VERSION = typer.Option(None, "--version", help="Milvus version (e.g. 2.4.13): decides which files Milvus reads.")
_ETCD = typer.Option(None, "--etcd", help="etcd endpoint (host:port) to read config overrides from, when Milvus uses an external etcd.")
_SET = typer.Option([], "--set", help="KEY=VALUE to change too (natsmq.server.*, quotaAndLimits.limitWriting.forceDeny); repeatable.")


def register(app: typer.Typer) -> None:
    config = typer.Typer(help="Milvus config: effective MQ settings, and a safe edit of the file that wins.", no_args_is_help=True)
    app.add_typer(config, name="config")

    @config.command("show")
    def show(
        ctx: typer.Context,
        config_dir: Path = _CONFIG_DIR,
        env_file: Optional[Path] = _ENV_FILE,
        version: Optional[str] = _VERSION,
        etcd: Optional[str] = _ETCD,
    ) -> None:
        """Effective mq, natsmq and forceDeny settings, each with where it comes from."""
        env: Environment = ctx.obj
        show_config(env, load(env, config_dir, env_file, version, etcd))

    @config.command("diff")
    def diff(
        ctx: typer.Context,
        config_dir: Path = _CONFIG_DIR,
        to: Target = typer.Option(..., "--to", help="The MQ to migrate to."),
        assignments: List[str] = _SET,
        env_file: Optional[Path] = _ENV_FILE,
        version: Optional[str] = _VERSION,
        etcd: Optional[str] = _ETCD,
    ) -> None:
        """The unified diff and the findings of a migration's config change; writes nothing."""
        env: Environment = ctx.obj
        edit, findings = plan_changes(load(env, config_dir, env_file, version, etcd), to, assignments)
        report_edit(env, edit, findings, None)
        check_allowed(edit, findings)

    @config.command("set")
    def set_(
        ctx: typer.Context,
        config_dir: Path = _CONFIG_DIR,
        to: Optional[Target] = typer.Option(None, "--to", help="The MQ to switch mq.type to."),
        assignments: List[str] = _SET,
        write: bool = typer.Option(False, "--write", help="Write the file (without it: show what would change)."),
        backup_dir: Optional[Path] = typer.Option(None, "--backup-dir", help="Where the original is kept (default: .milvus-migrate/ beside the file)."),
        env_file: Optional[Path] = _ENV_FILE,
        version: Optional[str] = _VERSION,
        etcd: Optional[str] = _ETCD,
    ) -> None:
        """Change mq.type and/or settings in the file that wins, comments and layout kept."""
        env: Environment = ctx.obj
        edit, findings = plan_changes(load(env, config_dir, env_file, version, etcd), to, assignments)
        check_allowed(edit, findings)
        written = write_edit(edit, backup_dir) if write and edit.changed else None
        report_edit(env, edit, findings, written)
        if not write and edit.changed:
            env.say("not written: add --write to write it")
