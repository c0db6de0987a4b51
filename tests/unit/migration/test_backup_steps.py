"""The backup and clean-up steps on a real RocksDB (no Milvus): clean-up removes rocksmq.path only
after a backup this run started once clients were cut off."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from migrator.errors import Refused
from migrator.migration.journal import Journal
from migrator.migration.steps.backup import backup
from migrator.migration.steps.base import RunContext
from migrator.migration.steps.clean_up import cleanup
from migrator.playbook import load_playbook
from tests.support.rocksmq import milvus_topics, write_rocksmq
from tests.support.sandbox import quiet_env


def context(tmp_path: Path) -> RunContext:
    """A run whose Milvus reads rocksmq.path from tmp_path/configs and is stopped."""
    rocksmq = tmp_path / "volumes" / "rdb_data"
    rocksmq.parent.mkdir()
    write_rocksmq(rocksmq, milvus_topics(2, [100] * 5))
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "milvus.yaml").write_text(f"mq:\n  type: natsmq\nrocksmq:\n  path: {rocksmq}\n")
    (tmp_path / "pb.yaml").write_text(f"""version: 1
name: clean-up
config: {{dir: {tmp_path / 'configs'}, version: "2.3.5"}}
runtime: {{kind: command, stop: ["true"], start: ["true"], running: ["false"], logs: ["echo", "{{since}}"]}}
migration: {{state_dir: {tmp_path / 'state'}, backup_dir: {tmp_path / 'backups'}, backup: true, cleanup: true}}
""")
    playbook = load_playbook(tmp_path / "pb.yaml").spec
    journal = Journal.create(tmp_path / "journal.json", run_id="20260101T000000Z", plan={})
    return RunContext(env=quiet_env(), playbook=playbook, plan=SimpleNamespace(milvus_version="2.3.5"),
                      journal=journal, runtime=SimpleNamespace(running=lambda: False), milvus_environ={})


def test_clean_up_refuses_a_backup_started_before_clients_were_cut_off(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    rocksmq = tmp_path / "volumes" / "rdb_data"
    backup(ctx)
    with pytest.raises(Refused, match="does not say when clients were cut off"):
        cleanup(ctx)
    ctx.journal.mark("clients_off_at", time.time() + 60)  # clients were cut off after the backup started
    with pytest.raises(Refused, match="started before writes were denied"):
        cleanup(ctx)
    assert rocksmq.is_dir() and rocksmq.with_name("rdb_data_meta_kv").is_dir()

    ctx.journal.mark("clients_off_at", time.time() - 60)
    assert cleanup(ctx).startswith(f"removed {rocksmq}, ")
    assert not rocksmq.exists() and not rocksmq.with_name("rdb_data_meta_kv").exists()
