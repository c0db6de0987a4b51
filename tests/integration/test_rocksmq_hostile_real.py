"""Backup, clean-up and restore against the RocksMQ a real Milvus 2.3.5 wrote (issue 14).

The guards must accept Milvus's real layout and refuse what is unsafe on it: judged by the files
on disk and the test's own pymilvus client, not by the tool's report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.errors import Refused
from migrator.milvus.client import MilvusAdapter
from migrator.rocksmq import (
    clean,
    create_backup,
    inspect,
    restore_backup,
    verify_backup,
)
from migrator.rocksmq.inspect import newest_msg_ids
from migrator.rocksmq.layout import foreign_entries
from migrator.sandbox.seed import SEED
from tests.support.cli import run_cli
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.milvus

EXPECTED = {f"{s.database}.{s.name}": s.expected_rows for s in SEED}


def _meta(path: Path) -> Path:
    return path.with_name(path.name + "_meta_kv")


def test_a_live_backup_of_real_rocksmq_restores_and_never_authorises_cleaning_the_running_store(milvus_sandbox, tmp_path):
    path = milvus_sandbox.rocksmq_path
    # Milvus's own directories hold only RocksDB's names: the layout guard accepts them.
    assert foreign_entries(path) == [] and foreign_entries(_meta(path)) == []
    manifest = create_backup(path, tmp_path / "backup", milvus_running=True)
    dml = {name: newest for name, newest in manifest.newest_msg_ids.items() if name.startswith("by-dev-rootcoord-dml_")}
    assert dml and any(newest is not None for newest in dml.values())

    with pytest.raises(Refused):  # Milvus holds the LOCK (and keeps writing time ticks)
        clean(path, backup_dir=tmp_path / "backup")
    assert (path / "CURRENT").exists() and (_meta(path) / "CURRENT").exists()

    restored = tmp_path / "restored" / "rdb_data"
    report = restore_backup(tmp_path / "backup", restored)
    assert report.replaced_dir is None
    assert newest_msg_ids(restored, _meta(restored)) == manifest.newest_msg_ids
    assert inspect(restored, deep=True).messages > 0


def test_apply_with_backup_and_cleanup_removes_only_what_its_backup_covers(fresh_sandbox: Sandbox, tmp_path):
    from ruamel.yaml import YAML

    yaml = YAML()
    playbook = yaml.load(fresh_sandbox.playbook.read_text())
    playbook["migration"]["backup"] = True
    playbook["migration"]["cleanup"] = True
    cleaning = fresh_sandbox.playbook.with_name("cleanup-playbook.yaml")
    with cleaning.open("w") as handle:
        yaml.dump(playbook, handle)

    applied = run_cli(["--output", "json", "apply", "--playbook", str(cleaning), "--yes"])
    assert applied.exit_code == 0, applied.stderr
    steps = {step["id"]: step["state"] for step in applied.json()["steps"]}
    assert steps["backup"] == "done" and steps["clean-up"] == "done"

    path = fresh_sandbox.rocksmq_path
    assert not path.exists() and not _meta(path).exists()
    [backup] = (fresh_sandbox.dir / "backups").iterdir()
    manifest = verify_backup(backup)
    assert manifest.started_unix is not None and manifest.newest_msg_ids
    with MilvusAdapter.connect(fresh_sandbox.uri) as milvus:  # Milvus on NATS lost nothing
        assert {c.key: c.rows for c in milvus.snapshot().collections} == EXPECTED
    # The backup is the store as Milvus left it: it restores and reads.
    restored = tmp_path / "rdb_data"
    restore_backup(backup, restored)
    assert newest_msg_ids(restored, _meta(restored)) == manifest.newest_msg_ids
