"""`milvus-migrate config show|diff|set`: the effective MQ settings and a safe edit of the winning file."""

from __future__ import annotations

from pathlib import Path

import typer

from migrator.context import Environment
from migrator.mq import Mq

_CONFIG_DIR = typer.Option(..., "--config-dir", help="Milvus's config dir (MILVUSCONF): milvus.yaml, user.yaml, ...")
_ENV_FILE = typer.Option(None, "--env-file", help="KEY=VALUE file: the environment Milvus runs with "
                                                  "(default: this shell's).")
_VERSION = typer.Option(None, "--version", help="Milvus version (e.g. 2.4.13): decides which files Milvus reads.")
_ETCD = typer.Option(None, "--etcd", help="etcd endpoint (host:port) to read config overrides from, when Milvus "
                                          "uses an external etcd.")
_SET = typer.Option([], "--set", help="KEY=VALUE to change too (natsmq.server.*, "
                                      "quotaAndLimits.limitWriting.forceDeny); repeatable.")


def register(app: typer.Typer) -> None:
    config = typer.Typer(help="Milvus config: effective MQ settings, and a safe edit of the file that wins.",
                         no_args_is_help=True)
    app.add_typer(config, name="config")

    @config.command("show")
    def show(
        ctx: typer.Context,
        config_dir: Path = _CONFIG_DIR,
        env_file: Path | None = _ENV_FILE,
        version: str | None = _VERSION,
        etcd: str | None = _ETCD,
    ) -> None:
        """Effective mq, natsmq and forceDeny settings, each with where it comes from."""
        from migrator.cli.render import render_config
        from migrator.verbs import config as verbs

        env: Environment = ctx.obj
        data = verbs.show(env, config_dir, env_file=env_file, version=version, etcd=etcd)
        env.emit(data, render_config(data))

    @config.command("diff")
    def diff(
        ctx: typer.Context,
        config_dir: Path = _CONFIG_DIR,
        to: Mq = typer.Option(..., "--to", help="The MQ to migrate to."),
        assignments: list[str] = _SET,
        env_file: Path | None = _ENV_FILE,
        version: str | None = _VERSION,
        etcd: str | None = _ETCD,
    ) -> None:
        """The unified diff and the findings of a migration's config change; writes nothing."""
        from migrator.cli.render import render_edit
        from migrator.verbs import config as verbs

        env: Environment = ctx.obj
        data, refusal = verbs.diff(env, config_dir, target=to.value, assignments=assignments, env_file=env_file,
                                   version=version, etcd=etcd)
        env.emit(data, render_edit(data))
        if refusal is not None:
            raise refusal

    @config.command("set")
    def set_(
        ctx: typer.Context,
        config_dir: Path = _CONFIG_DIR,
        to: Mq | None = typer.Option(None, "--to", help="The MQ to switch mq.type to."),
        assignments: list[str] = _SET,
        write: bool = typer.Option(False, "--write", help="Write the file (without it: show what would change)."),
        backup_dir: Path | None = typer.Option(None, "--backup-dir", help="Where the original is kept (default: "
                                                                          ".milvus-migrate/ beside the file)."),
        env_file: Path | None = _ENV_FILE,
        version: str | None = _VERSION,
        etcd: str | None = _ETCD,
    ) -> None:
        """Change mq.type and/or settings in the file that wins, comments and layout kept."""
        from migrator.cli.render import render_edit
        from migrator.verbs import config as verbs

        env: Environment = ctx.obj
        data = verbs.set_(env, config_dir, target=to.value if to else None, assignments=assignments, write=write,
                          backup_dir=backup_dir, env_file=env_file, version=version, etcd=etcd)
        env.emit(data, render_edit(data))
        if data.get("warning"):
            env.say(f"WARNING: {data['warning']}")
        if not write and data["changed"]:
            env.say("not written: add --write to write it")
