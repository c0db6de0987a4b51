"""inspect rocksmq and backup create|verify|restore|clean: RocksMQ on disk, as data for the CLI to render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.context import Environment
from migrator.errors import BadInput


def inspect(env: Environment, path: Path, *, deep: bool = False, etcd: str | None = None,
            etcd_root: str = "by-dev") -> tuple[Any, Any]:
    """(RocksmqStats, Advice): topics, messages, bytes, age, sizes, and whether NATS suits that traffic."""
    from migrator import rocksmq

    stats = rocksmq.inspect(path, deep=deep, etcd_url=etcd, etcd_root_path=etcd_root)
    return stats, rocksmq.advice(stats)


def backup_create(env: Environment, path: Path, to: Path, *, live: bool, hard_links: bool = False) -> Any:
    from migrator.rocksmq import create_backup

    if hard_links and live:
        raise BadInput("--hard-links needs Milvus stopped: a live backup is a copy")
    if hard_links:
        env.log.warning("backup.hard_links", message=HARD_LINKS_WARNING)
    return create_backup(path, to, milvus_running=live, hard_links=hard_links)


HARD_LINKS_WARNING = ("hard links: the backup's SST files ARE the live store's files; never modify, append to "
                      "or repair a file in this backup, or the live RocksMQ is corrupted with it")


def backup_verify(env: Environment, backup_dir: Path) -> Any:
    from migrator.rocksmq import verify_backup

    return verify_backup(backup_dir)


def backup_restore(env: Environment, backup_dir: Path, to: Path, *, force: bool) -> Any:
    from migrator.rocksmq import restore_backup

    return restore_backup(backup_dir, to, force=force)


def backup_clean(env: Environment, path: Path, *, backup: Path | None, no_backup: bool,
                 config_dir: Path | None) -> Any:
    from migrator.rocksmq import clean

    if backup is not None and no_backup:
        raise BadInput("--backup and --i-have-no-backup contradict each other")
    return clean(path, backup_dir=backup, force_without_backup=no_backup, config_dir=config_dir)
