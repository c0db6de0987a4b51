"""`milvus-migrate backup create|verify|restore|clean`: both RocksMQ databases, with a manifest."""

from __future__ import annotations

from pathlib import Path

import typer

from migrator.context import Environment


def register(app: typer.Typer) -> None:
    backup_app = typer.Typer(help="Back up, verify, restore and remove RocksMQ (rocksmq.path + _meta_kv).",
                             no_args_is_help=True)
    app.add_typer(backup_app, name="backup")

    @backup_app.command("create")
    def create(
        ctx: typer.Context,
        path: Path = typer.Argument(..., help="rocksmq.path; its _meta_kv sibling comes along."),
        to: Path = typer.Option(..., "--to", help="A new or empty backup directory."),
        live: bool = typer.Option(False, "--live", help="Milvus is running: copy, retry while files change."),
        hard_links: bool = typer.Option(False, "--hard-links",
                                        help="Milvus stopped, same file system: hard-link the SST files instead of "
                                             "copying them (the backup then shares them with the live store)."),
    ) -> None:
        """Back up both RocksMQ databases (copied, reflinked where the file system can); the manifest is written
        last."""
        from migrator.cli.render import render_manifest
        from migrator.verbs import rocksmq as verbs

        env: Environment = ctx.obj
        manifest = verbs.backup_create(env, path, to, live=live, hard_links=hard_links)
        env.emit({"backup_dir": str(to), **manifest.summary()}, render_manifest("backed up into", manifest, to))

    @backup_app.command("verify")
    def verify(ctx: typer.Context, backup_dir: Path = typer.Argument(..., help="A backup directory.")) -> None:
        """Re-hash every file against the manifest."""
        from migrator.cli.render import render_manifest
        from migrator.errors import Damaged, NotRolledBack
        from migrator.verbs import rocksmq as verbs

        env: Environment = ctx.obj
        try:
            manifest = verbs.backup_verify(env, backup_dir)
        except Damaged as damaged:  # the check this command is asked for failed: 4, like `verify`
            raise NotRolledBack(damaged.message, hint=damaged.hint) from None
        env.emit({"backup_dir": str(backup_dir), "ok": True, **manifest.summary()},
                 render_manifest("verified", manifest, backup_dir))

    @backup_app.command("restore")
    def restore(
        ctx: typer.Context,
        backup_dir: Path = typer.Argument(..., help="A backup directory."),
        to: Path = typer.Option(..., "--to", help="rocksmq.path to restore; its _meta_kv sibling is restored too."),
        force: bool = typer.Option(False, "--force", help="Replace non-empty RocksDB directories (moved aside into "
                                                          "<PATH>.replaced-<id>, not deleted)."),
    ) -> None:
        """Put both databases back (stop Milvus first)."""
        from migrator.cli.render import render_manifest
        from migrator.verbs import rocksmq as verbs

        env: Environment = ctx.obj
        restored = verbs.backup_restore(env, backup_dir, to, force=force)
        kept = f"\nthe replaced databases are kept in {restored.replaced_dir}" if restored.replaced_dir else ""
        env.emit({"restored_to": str(to), **restored.to_dict()},
                 render_manifest(f"restored to {to} from", restored.manifest, backup_dir) + kept)

    @backup_app.command("clean")
    def clean_command(
        ctx: typer.Context,
        path: Path = typer.Argument(..., help="rocksmq.path to remove, with its _meta_kv sibling."),
        backup: Path | None = typer.Option(None, "--backup", help="A backup of PATH; verified before "
                                                                  "anything is removed."),
        no_backup: bool = typer.Option(False, "--i-have-no-backup", help="Remove without a backup."),
        config_dir: Path | None = typer.Option(None, "--config-dir", help="Milvus config dir, never removed."),
    ) -> None:
        """Remove rocksmq.path and its _meta_kv after a verified backup (or --i-have-no-backup)."""
        from migrator.verbs import rocksmq as verbs

        env: Environment = ctx.obj
        report = verbs.backup_clean(env, path, backup=backup, no_backup=no_backup, config_dir=config_dir)
        held = (f"; {report.bytes_still_held} bytes stay on disk, held by a hard-linked backup"
                if report.bytes_still_held else "")
        env.emit(report.to_dict(), f"removed {', '.join(report.removed)} ({report.bytes_freed} bytes freed{held})")
