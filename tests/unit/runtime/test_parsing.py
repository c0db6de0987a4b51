"""What the deployment runtimes read without running anything: systemctl show, docker inspect,
compose files (environment, env_file, bind mounts, the config mount refusal), path maps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrator.errors import BadInput, Refused
from migrator.playbook import Playbook
from migrator.runtime.compose import load_service
from migrator.runtime.containers import parse_inspect
from migrator.runtime.systemd import parse_show_environment


def test_systemctl_show_environment_quoted_values_and_files() -> None:
    shown = ('Environment=MILVUSCONF=/etc/milvus/configs/ "GREETING=hello world" MQ_TYPE=natsmq\n'
             "EnvironmentFiles=/etc/milvus/milvus.env (ignore_errors=no)\n"
             "EnvironmentFiles=/etc/default/milvus (ignore_errors=yes)\n")
    variables, files = parse_show_environment(shown)
    assert variables == {"MILVUSCONF": "/etc/milvus/configs/", "GREETING": "hello world", "MQ_TYPE": "natsmq"}
    assert files == [(Path("/etc/milvus/milvus.env"), False), (Path("/etc/default/milvus"), True)]


def test_systemctl_show_without_environment() -> None:
    assert parse_show_environment("Environment=\nEnvironmentFiles=\n") == ({}, [])


def test_docker_inspect_state_env_and_restart_policy() -> None:
    text = json.dumps([{"Id": "f00", "State": {"Status": "exited", "Running": False, "Pid": 0, "ExitCode": 1},
                        "Config": {"Env": ["MQ_TYPE=natsmq", "EMPTY=", "PATH=/usr/bin:/bin"]},
                        "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}}}])
    state = parse_inspect(text, "milvus-standalone")
    assert (state.running, state.pid, state.exit_code, state.status) == (False, None, 1, "exited")
    assert state.env == {"MQ_TYPE": "natsmq", "EMPTY": "", "PATH": "/usr/bin:/bin"}
    assert (state.restart_policy, state.id, state.mounts) == ("always", "f00", {})


def test_docker_inspect_garbage_is_refused() -> None:
    with pytest.raises(Refused, match="`inspect c`: unexpected output"):
        parse_inspect("[]", "c")


# The official compose file, shortened: ${DOCKER_VOLUME_DIRECTORY:-.} and a list environment.
OFFICIAL = """\
services:
  standalone:
    container_name: milvus-standalone
    image: milvusdb/milvus:v2.4.13
    environment:
      ETCD_ENDPOINTS: etcd:2379
      MINIO_ADDRESS: minio:9000
      MQ_TYPE: ${MILVUS_MQ:-rocksmq}
    volumes:
      - ${DOCKER_VOLUME_DIRECTORY:-.}/volumes/milvus:/var/lib/milvus
      - milvus-named:/tmp/named
      - type: bind
        source: ./user.yaml
        target: /milvus/configs/user.yaml
        read_only: false
"""


def test_compose_map_environment_interpolated_from_dotenv_and_shell(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(OFFICIAL)
    (tmp_path / ".env").write_text("MILVUS_MQ=natsmq\nDOCKER_VOLUME_DIRECTORY=/srv/milvus\n")
    service = load_service(compose, "standalone", {"DOCKER_VOLUME_DIRECTORY": "/data"})
    assert service.environment()["MQ_TYPE"] == "natsmq"
    assert service.host_path("/var/lib/milvus/rdb_data") == Path("/data/volumes/milvus/rdb_data")
    assert service.host_path("/tmp/named/x") is None  # a named volume: no host path we may use
    assert service.host_path("/milvus/configs/user.yaml") == tmp_path / "user.yaml"


def test_compose_default_interpolation_and_list_environment_with_env_files(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  standalone:\n"
                       "    env_file: [a.env, {path: missing.env, required: false}]\n"
                       "    environment:\n      - MQ_TYPE=natsmq\n      - FROM_SHELL\n      - UNSET_IN_SHELL\n"
                       "    volumes: ['./volumes/milvus:/var/lib/milvus:rw', './milvus.yaml:/milvus/configs/milvus.yaml']\n")
    (tmp_path / "a.env").write_text("MQ_TYPE=rocksmq\nNATSMQ_SERVER_PORT=4223\n")
    service = load_service(compose, "standalone", {"FROM_SHELL": "yes"})
    # environment: beats env_file:, as in compose; a bare name is passed through from the shell.
    assert service.environment() == {"MQ_TYPE": "natsmq", "NATSMQ_SERVER_PORT": "4223", "FROM_SHELL": "yes"}
    assert service.host_path("/var/lib/milvus") == tmp_path / "volumes" / "milvus"
    assert service.host_path("/milvus/configs/milvus.yaml") == tmp_path / "milvus.yaml"
    assert service.host_path("/milvus/configs/user.yaml") is None


def test_compose_config_dir_mounted_whole(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  standalone:\n    volumes: ['/etc/milvus/configs:/milvus/configs']\n")
    service = load_service(compose, "standalone", {})
    assert service.host_path("/milvus/configs/user.yaml") == Path("/etc/milvus/configs/user.yaml")


def test_compose_required_variable_and_unknown_service(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  standalone:\n    environment: {MQ_TYPE: '${MQ:?set MQ}', COST: '$$5'}\n")
    service = load_service(compose, "standalone", {})
    with pytest.raises(BadInput, match="compose variable MQ is required: set MQ"):
        service.environment()
    assert load_service(compose, "standalone", {"MQ": "natsmq"}).environment() == {"MQ_TYPE": "natsmq", "COST": "$5"}
    with pytest.raises(BadInput, match="runtime.service milvus: not a service of .* \\(it has: standalone\\)"):
        load_service(compose, "milvus", {})


def _playbook(path_map: dict[str, str]) -> Playbook:
    return Playbook.model_validate({
        "version": 1, "name": "t", "config": {"dir": "/etc/milvus/configs"},
        "runtime": {"kind": "docker"}, "path_map": path_map, "migration": {"state_dir": "/var/tmp/m"},
    })


def test_host_path_longest_prefix_wins_and_unmapped_paths_pass_through() -> None:
    playbook = _playbook({"/var/lib/milvus": "/srv/volumes/milvus", "/var/lib/milvus/nats": "/fast/nats"})
    assert playbook.host_path("/var/lib/milvus/rdb_data") == Path("/srv/volumes/milvus/rdb_data")
    assert playbook.host_path("/var/lib/milvus/rdb_data_meta_kv") == Path("/srv/volumes/milvus/rdb_data_meta_kv")
    assert playbook.host_path("/var/lib/milvus/nats/jetstream") == Path("/fast/nats/jetstream")
    assert playbook.host_path("/var/lib/milvus") == Path("/srv/volumes/milvus")
    assert playbook.host_path("/var/lib/milvusX/data") == Path("/var/lib/milvusX/data")  # a prefix of the name only
    assert playbook.host_path("/tmp/milvus") == Path("/tmp/milvus")


def test_host_path_with_trailing_slash_prefix() -> None:
    playbook = _playbook({"/var/lib/milvus/": "/srv/milvus"})
    assert playbook.host_path("/var/lib/milvus/rdb_data") == Path("/srv/milvus/rdb_data")


def _exited(seconds_ago: float, policy: str = "always", exit_code: int = 1, running: bool = False):
    from datetime import datetime, timedelta, timezone

    finished = (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%f123Z")
    return parse_inspect(json.dumps([{"Id": "c1", "State": {"Running": running, "Pid": 9 if running else 0,
                                                            "ExitCode": exit_code, "FinishedAt": finished},
                                      "Config": {"Env": []}, "HostConfig": {"RestartPolicy": {"Name": policy}}}]), "c")


def test_a_container_its_engine_is_restarting_counts_as_running_until_it_settles() -> None:
    from migrator.runtime.containers import running_settled

    states = iter([_exited(0.2), _exited(0.3), _exited(0.0, running=True)])
    assert running_settled(lambda: next(states), set(), 2.0, lambda s: None) is True
    # Stopped by this tool: final, no waiting.
    assert running_settled(lambda: _exited(0.2), {"c1"}, 2.0, lambda s: pytest.fail("waited")) is False
    # Exited long ago, no policy, or on-failure after a clean exit: the engine will not start it.
    for state in (_exited(30.0), _exited(0.2, policy=""), _exited(0.2, policy="on-failure", exit_code=0)):
        assert running_settled(lambda state=state: state, set(), 2.0, lambda s: pytest.fail("waited")) is False
    assert _exited(0.2, policy="on-failure").engine_may_restart(2.0)
    never = parse_inspect(json.dumps([{"State": {"FinishedAt": "0001-01-01T00:00:00Z"}, "Config": {}}]), "c")
    assert never.finished_at is None


def test_systemctl_show_exec_start_gives_the_argv() -> None:
    from migrator.runtime.systemd import parse_exec_start

    shown = ("{ path=/usr/bin/milvus ; argv[]=/usr/bin/milvus run standalone ; ignore_errors=no ; "
             "start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n")
    assert parse_exec_start(shown) == ["/usr/bin/milvus", "run", "standalone"]
    assert parse_exec_start("") == []
