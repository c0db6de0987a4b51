"""Preflight for containers (docker and compose): every config file the migration edits must be
the host side of the container's mount of it, and every data path it reads or moves must be on a
mount that path_map names. The mounts come from a compose file or a `docker inspect` record here;
no engine needed (tests/integration/containers run the same rules against real containers)."""

from __future__ import annotations

import json
from pathlib import Path

from migrator.migration.preflight import mount_findings
from migrator.playbook import LoadedPlaybook, load_playbook
from migrator.runtime.compose import load_service
from migrator.runtime.containers import parse_inspect

DATA = {"rocksmq.path": "/var/lib/milvus/rdb_data", "natsmq.server.storeDir": "/var/lib/milvus/nats"}


def _compose(tmp_path: Path, volumes: str, path_map: str = "  /var/lib/milvus: {dir}/volumes/milvus\n"
             ) -> tuple[LoadedPlaybook, dict[str, Path]]:
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
path_map:
{path_map.format(dir=tmp_path)}
migration:
  state_dir: {tmp_path / "state"}
""")
    return load_playbook(playbook), load_service(compose, "standalone", {}).bind_mounts()


def _findings(loaded: LoadedPlaybook, mounts: dict[str, Path], edited: set[str], data=DATA):
    return mount_findings(loaded, mounts, "the service", edited, data)


def test_mounted_config_file_and_data_dir_pass(tmp_path: Path) -> None:
    loaded, mounts = _compose(tmp_path, "      - ${DOCKER_VOLUME_DIRECTORY:-.}/user.yaml:/milvus/configs/user.yaml\n"
                                        "      - ./volumes/milvus:/var/lib/milvus\n")
    assert _findings(loaded, mounts, {"user.yaml"}) == []  # user.yaml does not exist: no single-file warning


def test_the_stock_compose_file_mounts_no_config_and_is_refused_naming_the_mounts(tmp_path: Path) -> None:
    loaded, mounts = _compose(tmp_path, "      - ./volumes/milvus:/var/lib/milvus\n")
    [finding] = _findings(loaded, mounts, {"user.yaml"})
    assert finding.level == "error" and finding.key == "runtime.file"
    assert "does not mount /milvus/configs/user.yaml from the host" in finding.message
    assert f"its mounts: {tmp_path}/volumes/milvus:/var/lib/milvus" in finding.message
    assert "`- ./user.yaml:/milvus/configs/user.yaml`" in finding.message


def test_each_edited_file_is_checked(tmp_path: Path) -> None:
    # The isolation edit may land in milvus.yaml while mq.type goes to user.yaml: both must be mounted.
    loaded, mounts = _compose(tmp_path, "      - ./user.yaml:/milvus/configs/user.yaml\n"
                                        "      - ./volumes/milvus:/var/lib/milvus\n")
    [finding] = _findings(loaded, mounts, {"user.yaml", "milvus.yaml"})
    assert "does not mount /milvus/configs/milvus.yaml" in finding.message


def test_a_mount_from_another_host_dir_than_config_dir_is_refused(tmp_path: Path) -> None:
    loaded, mounts = _compose(tmp_path, "      - type: bind\n        source: /etc/milvus/configs\n"
                                        "        target: /milvus/configs\n"
                                        "      - ./volumes/milvus:/var/lib/milvus\n")
    [finding] = _findings(loaded, mounts, {"user.yaml"})
    assert finding.key == "config.dir"
    assert f"mounts user.yaml from /etc/milvus/configs/user.yaml, but config.dir gives {tmp_path / 'user.yaml'}" \
        in finding.message


def test_a_named_volume_is_not_a_host_mount(tmp_path: Path) -> None:
    loaded, mounts = _compose(tmp_path, "      - milvus-configs:/milvus/configs\n"
                                        "      - ./volumes/milvus:/var/lib/milvus\n")
    [finding] = _findings(loaded, mounts, {"user.yaml"})
    assert finding.key == "runtime.file"


def test_a_single_file_mount_is_flagged_for_the_in_place_write(tmp_path: Path) -> None:
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: rocksmq\n")
    loaded, mounts = _compose(tmp_path, "      - ./milvus.yaml:/milvus/configs/milvus.yaml\n"
                                        "      - ./volumes/milvus:/var/lib/milvus\n")
    [finding] = _findings(loaded, mounts, {"milvus.yaml"})
    assert finding.level == "warning"
    assert f"mounts {tmp_path}/milvus.yaml:/milvus/configs/milvus.yaml as a single file" in finding.message
    assert "writes it in place" in finding.message


def test_data_inside_the_container_is_refused(tmp_path: Path) -> None:
    # Only the configs are mounted: RocksMQ and the NATS store would live in the container's layer.
    loaded, mounts = _compose(tmp_path, "      - ./user.yaml:/milvus/configs/user.yaml\n")
    findings = _findings(loaded, mounts, {"user.yaml"})
    assert [(f.level, f.key) for f in findings] == [("error", "natsmq.server.storeDir"), ("error", "rocksmq.path")]
    assert "rocksmq.path /var/lib/milvus/rdb_data is on no mount of the service" in findings[1].message
    assert f"its mounts: {tmp_path}/user.yaml:/milvus/configs/user.yaml" in findings[1].message


def test_a_path_map_that_disagrees_with_the_mount_is_refused(tmp_path: Path) -> None:
    loaded, mounts = _compose(tmp_path, "      - ./user.yaml:/milvus/configs/user.yaml\n"
                                        "      - /srv/milvus:/var/lib/milvus\n")
    findings = _findings(loaded, mounts, {"user.yaml"}, {"rocksmq.path": "/var/lib/milvus/rdb_data"})
    [finding] = findings
    assert finding.key == "path_map"
    assert (f"rocksmq.path /var/lib/milvus/rdb_data is /srv/milvus/rdb_data on the host (the service), "
            f"but path_map gives {tmp_path}/volumes/milvus/rdb_data") in finding.message


def _inspected(mounts: list[dict]) -> dict[str, Path]:
    return parse_inspect(json.dumps([{"State": {"Running": True, "Pid": 7}, "Config": {"Env": []},
                                      "Mounts": mounts}]), "milvus-standalone").mounts


def test_docker_mounts_from_inspect(tmp_path: Path) -> None:
    (tmp_path / "user.yaml").write_text("")
    mounts = _inspected([
        {"Type": "bind", "Source": str(tmp_path / "user.yaml"), "Destination": "/milvus/configs/user.yaml"},
        {"Type": "volume", "Name": "milvus", "Source": "/var/lib/docker/volumes/milvus/_data",
         "Destination": "/var/lib/milvus"},
        {"Type": "tmpfs", "Destination": "/tmp"},
    ])
    assert mounts == {"/milvus/configs/user.yaml": tmp_path / "user.yaml",
                      "/var/lib/milvus": Path("/var/lib/docker/volumes/milvus/_data")}
    loaded, _ = _compose(tmp_path, "      - ./volumes/milvus:/var/lib/milvus\n",
                         path_map="  /var/lib/milvus: /var/lib/docker/volumes/milvus/_data\n")
    [finding] = _findings(loaded, mounts, {"user.yaml"})
    assert finding.level == "warning" and "single file" in finding.message
    [refused] = _findings(loaded, mounts, {"milvus.yaml"})[:1]
    assert "does not mount /milvus/configs/milvus.yaml" in refused.message
