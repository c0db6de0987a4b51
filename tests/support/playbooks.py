"""A playbook for a deployment that is not there: Milvus on a port nobody serves, a runtime of
`true`/`false`. For the CLI's refusals and its journal-only answers; never for a migration."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.config import fixture_dir

OFFLINE_URI = "http://127.0.0.1:1"  # nothing listens on port 1: every connection is refused at once


def offline_playbook(tmp_path: Path, *, fixture: str = "v2.3-single", force_deny: bool = False,
                     running: bool = False, etcd: bool = False) -> Path:
    """tmp_path/pb.yaml (the path tests/support/plans.make_plan records), its config dir a copy of
    a project fixture, its state dir tmp_path/state. `running`: what its runtime says of Milvus;
    `etcd`: name an etcd endpoint (nobody serves it), so `playbook check` finds nothing missing."""
    config_dir = tmp_path / "configs"
    shutil.copytree(fixture_dir(fixture), config_dir)
    if force_deny:
        milvus_yaml = config_dir / "milvus.yaml"
        text = milvus_yaml.read_text(encoding="utf-8")
        milvus_yaml.write_text(text.replace("  limitWriting:\n    # true rejects every DML request\n    forceDeny: false",
                                            "  limitWriting:\n    # true rejects every DML request\n    forceDeny: true"),
                               encoding="utf-8")
        assert "forceDeny: true" in milvus_yaml.read_text(encoding="utf-8")
    playbook = tmp_path / "pb.yaml"
    etcd_line = "  etcd: {endpoint: 'http://127.0.0.1:1'}\n" if etcd else ""
    playbook.write_text(f"""version: 1
name: offline
milvus:
  uri: {OFFLINE_URI}
  metrics_url: http://127.0.0.1:1
config:
  dir: {config_dir}
  version: "2.3.5"
{etcd_line}runtime:
  kind: command
  stop: ["true"]
  start: ["true"]
  running: ["{'true' if running else 'false'}"]
  logs: ["echo", "{{since}}"]
migration:
  state_dir: {tmp_path / "state"}
""", encoding="utf-8")
    return playbook
