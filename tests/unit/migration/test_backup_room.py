"""The plan refuses a backup that would not fit where the playbook puts it (migration/preflight.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from migrator.migration.preflight import backup_room_findings
from migrator.playbook import load_playbook


def test_a_backup_bigger_than_the_free_room_is_an_error_and_one_that_fits_is_not(tmp_path: Path) -> None:
    (tmp_path / "backups").mkdir()
    (tmp_path / "pb.yaml").write_text(f"""version: 1
name: room
config: {{dir: {tmp_path}}}
runtime: {{kind: systemd}}
migration: {{state_dir: {tmp_path / 'state'}, backup_dir: {tmp_path / 'backups'}, backup: true}}
""")
    loaded = load_playbook(tmp_path / "pb.yaml")
    free = shutil.disk_usage(tmp_path / "backups").free
    too_big = backup_room_findings(loaded, {"bytes_on_disk": 2 * free})
    assert [(f.level, f.key) for f in too_big] == [("error", "migration.backup_dir")]
    assert f"the backup needs about {2 * free}" in too_big[0].message
    assert backup_room_findings(loaded, {"bytes_on_disk": 1024}) == []
