"""Preflight for docker compose: every config file the migration edits must be the host side of
the service's mount of it (the check reads the compose file; no Docker needed)."""

from __future__ import annotations

from pathlib import Path

from migrator.migration.preflight import compose_mount_findings
from migrator.playbook import LoadedPlaybook, load_playbook


def _deployment(tmp_path: Path, volumes: str) -> LoadedPlaybook:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(f"services:\n  standalone:\n    image: milvusdb/milvus:v2.4.13\n    volumes:\n{volumes}")
    playbook = tmp_path / "compose.yaml"
    playbook.write_text(f"""\
version: 1
name: compose
config:
  dir: {tmp_path}
runtime:
  kind: compose
  file: {compose}
migration:
  state_dir: {tmp_path / "state"}
""")
    return load_playbook(playbook)


def test_a_mounted_config_file_passes(tmp_path: Path) -> None:
    loaded = _deployment(tmp_path, "      - ${DOCKER_VOLUME_DIRECTORY:-.}/user.yaml:/milvus/configs/user.yaml\n"
                                   "      - ./volumes/milvus:/var/lib/milvus\n")
    assert compose_mount_findings(loaded, {}, {"user.yaml"}) == []


def test_the_stock_compose_file_mounts_no_config_and_is_refused(tmp_path: Path) -> None:
    loaded = _deployment(tmp_path, "      - ./volumes/milvus:/var/lib/milvus\n")
    [finding] = compose_mount_findings(loaded, {}, {"user.yaml"})
    assert finding.level == "error" and finding.key == "runtime.file"
    assert "does not mount /milvus/configs/user.yaml from the host" in finding.message
    assert "add `- ./user.yaml:/milvus/configs/user.yaml`" in finding.message


def test_each_edited_file_is_checked(tmp_path: Path) -> None:
    # forceDeny may land in milvus.yaml while mq.type goes to user.yaml: both must be mounted.
    loaded = _deployment(tmp_path, "      - ./user.yaml:/milvus/configs/user.yaml\n")
    [finding] = compose_mount_findings(loaded, {}, {"user.yaml", "milvus.yaml"})
    assert "does not mount /milvus/configs/milvus.yaml" in finding.message


def test_a_mount_from_another_host_dir_than_config_dir_is_refused(tmp_path: Path) -> None:
    # The whole config dir is mounted, but from /etc/milvus/configs: editing config.dir would change
    # a file Milvus never reads.
    loaded = _deployment(tmp_path, "      - type: bind\n        source: /etc/milvus/configs\n"
                                   "        target: /milvus/configs\n")
    [finding] = compose_mount_findings(loaded, {}, {"user.yaml"})
    assert finding.key == "config.dir"
    assert f"mounts user.yaml from /etc/milvus/configs/user.yaml, but config.dir gives {tmp_path / 'user.yaml'}" \
        in finding.message


def test_a_named_volume_is_not_a_host_mount(tmp_path: Path) -> None:
    loaded = _deployment(tmp_path, "      - milvus-configs:/milvus/configs\n")
    [finding] = compose_mount_findings(loaded, {}, {"user.yaml"})
    assert finding.key == "runtime.file"
