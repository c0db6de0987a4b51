"""A plan for tests that need one without a Milvus to plan against."""

from __future__ import annotations

from pathlib import Path

from migrator.findings import Finding
from migrator.migration.plan import Plan, PlannedStep, sha256_of
from migrator.playbook import LoadedPlaybook, load_playbook

PLAYBOOK = """\
version: 1
name: test
config: {dir: .}
runtime: {kind: systemd}
migration: {state_dir: state}
"""


def write_playbook(tmp_path: Path) -> LoadedPlaybook:
    """`tmp_path/pb.yaml`, the playbook `make_plan`'s plans name: config.dir is `tmp_path`."""
    (tmp_path / "pb.yaml").write_text(PLAYBOOK)
    return load_playbook(tmp_path / "pb.yaml")


def make_plan(tmp_path: Path, layer: Path) -> Plan:
    return Plan(
        created_at="2026-11-28T00:00:00+00:00", tool_version="0", playbook_path=str(tmp_path / "pb.yaml"),
        playbook_sha256="abc", source_mq="rocksmq", target_mq="natsmq", milvus_version="v2.3.5-lite",
        changes={"mq.type": "natsmq"}, config_target=str(layer), config_diff="-a\n+b\n",
        isolation_target=str(layer), isolation_diff="", layers={str(layer): sha256_of(layer)},
        snapshot={"version": "v2.3.5", "collections": [
            {"database": "default", "name": "a", "loaded": True, "rows": 10, "key": "default.a"}]},
        findings=[Finding("warning", "natsmq.server.storeDir", "rotational disk")],
        steps=[PlannedStep("preflight", "checks")],
    )


def fitting_plan(loaded: LoadedPlaybook, **fields) -> Plan:
    """A plan of `loaded` as `plan` would make it for Milvus 2.3.5 (milvus.yaml its one layer, the
    playbook's sha256, a digest), with `fields` over it."""
    layer = loaded.spec.config.dir / "milvus.yaml"
    values = {
        "created_at": "2026-11-28T00:00:00+00:00", "tool_version": "0", "playbook_path": str(loaded.path),
        "playbook_sha256": loaded.sha256, "source_mq": "rocksmq", "target_mq": "natsmq", "milvus_version": "v2.3.5",
        "changes": {"mq.type": "natsmq"}, "config_target": str(layer), "config_diff": "", "isolation_target": str(layer),
        "isolation_diff": "", "layers": {str(layer): sha256_of(layer)}, "snapshot": {"version": "v2.3.5", "collections": []},
        "steps": [PlannedStep("preflight", "checks")]}
    values.update(fields)
    return Plan(**values)
