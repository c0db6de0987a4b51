"""RocksMQ on disk: inspect it, judge whether NATS suits its traffic, back it up, restore it, remove it.

Public API (the apply engine's backup and clean-up steps, `inspect rocksmq`, `backup ...`, `plan`):

    inspect(path, deep=False, *, etcd_url=None, etcd_root_path="by-dev") -> RocksmqStats
    advice(stats) -> Advice
    create_backup(path, dest, *, milvus_running: bool) -> Manifest
    verify_backup(dest) -> Manifest
    restore_backup(dest, path, force=False) -> RestoreReport
    clean(path, *, backup_dir=None, force_without_backup=False, config_dir=None, not_before=None) -> CleanReport

`path` is always rocksmq.path; its `_meta_kv` sibling is always included. Errors are
migrator.errors.BadInput (bad paths, not RocksDB, damaged backup) and Refused (Milvus holds the
database, no room, unsafe target, non-empty restore target without force).
"""

from migrator.rocksmq.advice import Advice, advice
from migrator.rocksmq.backup import (
    Manifest,
    ManifestEntry,
    RestoreReport,
    create_backup,
    restore_backup,
    verify_backup,
)
from migrator.rocksmq.cleanup import CleanReport, clean
from migrator.rocksmq.inspect import RocksmqStats, SizeHistogram, TopicStats, inspect

__all__ = [
    "Advice",
    "CleanReport",
    "Manifest",
    "ManifestEntry",
    "RestoreReport",
    "RocksmqStats",
    "SizeHistogram",
    "TopicStats",
    "advice",
    "clean",
    "create_backup",
    "inspect",
    "restore_backup",
    "verify_backup",
]
