"""The shipped playbooks (one per deployment shape) and `milvus-migrate playbook check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.errors import BadInput, ExitCode
from migrator.playbook import load_playbook
from tests.support import REPO
from tests.support.cli import run_cli

SHIPPED = sorted(p for p in (REPO / "playbooks").glob("*.yaml") if p.name != "sandbox.yaml")  # sandbox: a template


def test_one_shipped_playbook_per_shape() -> None:
    kinds = {load_playbook(path).spec.runtime.kind: path.name for path in SHIPPED}
    assert kinds == {"systemd": "systemd.yaml", "compose": "docker-compose.yaml", "docker": "standalone-embed.yaml",
                     "command": "command.yaml", "kubernetes": "kubernetes.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_playbook_checks(path: Path) -> None:
    result = run_cli(["playbook", "check", str(path)])
    assert result.exit_code == 0, result.stderr
    assert f"{path} (valid)" in result.stdout


def test_container_shapes_map_the_data_volume() -> None:
    for name in ("docker-compose.yaml", "standalone-embed.yaml", "command.yaml"):
        spec = load_playbook(REPO / "playbooks" / name).spec
        assert spec.host_path("/var/lib/milvus/rdb_data") != Path("/var/lib/milvus/rdb_data"), name


def _write(tmp_path: Path, runtime: str, extra: str = "", *, etcd: bool = True) -> Path:
    path = tmp_path / "pb.yaml"
    endpoint = "  etcd: {endpoint: 'http://127.0.0.1:2379'}\n" if etcd else ""
    path.write_text(f"version: 1\nname: t\nconfig:\n  dir: {tmp_path}\n  version: '2.4.13'\n{endpoint}{extra}"
                    f"runtime:\n{runtime}migration:\n  state_dir: {tmp_path}/state\n")
    return path


def test_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "  kind: command\n  stop: [a]\n  start: [b]\n  logs: [journalctl, -f]\n", etcd=False)
    result = run_cli(["playbook", "check", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    # The line of `logs:` itself: the union's tag (`command`) is skipped, in the line and the name.
    assert f"error: {path}:10: runtime.logs: Value error, must contain {{since}}" in result.stderr


def test_unknown_kind_and_relative_compose_file(tmp_path: Path) -> None:
    result = run_cli(["playbook", "check", str(_write(tmp_path, "  kind: nomad\n"))])
    assert result.exit_code == ExitCode.BAD_INPUT and "does not match any of the expected tags" in result.stderr
    result = run_cli(["playbook", "check", str(_write(tmp_path, "  kind: compose\n  file: docker-compose.yml\n"))])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "runtime.file: Value error, must be an absolute path" in result.stderr


def test_compose_check_reports_config_mounts(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  standalone:\n    volumes: ['./user.yaml:/milvus/configs/user.yaml']\n")
    path = _write(tmp_path, f"  kind: compose\n  file: {compose}\n")
    result = run_cli(["--output", "json", "playbook", "check", str(path)])
    assert result.exit_code == 0, result.stderr
    assert result.json()["config_mounts"] == {"milvus.yaml": None, "default.yaml": None,
                                              "user.yaml": str(tmp_path / "user.yaml")}
    text = run_cli(["playbook", "check", str(path)]).stdout
    assert "milvus.yaml not mounted from the host: an edit inside the container would be lost" in text


def test_environment_that_beats_the_edit_is_flagged(tmp_path: Path) -> None:
    path = _write(tmp_path, "  kind: docker\n", extra="environment:\n  MQ_TYPE: rocksmq\n  NATSMQ_SERVER_PORT: 4222\n  OTHER: x\n")
    result = run_cli(["--output", "json", "playbook", "check", str(path)])
    assert result.json()["mq_environment"] == ["MQ_TYPE", "NATSMQ_SERVER_PORT"]
def test_playbook_error_names_field_and_line(tmp_path: Path) -> None:
    import string

    source = (REPO / "playbooks" / "sandbox.yaml").read_text()
    names = {"dir", "name", "proxy_port", "metrics_port", "etcd_port", "config_dir", "binary", "bin_dir", "run_dir", "pid_file",
             "stdout_log", "log_dir", "version"}
    good = string.Template(source).substitute({n: "1234" if n.endswith("port") else f"/x/{n}" for n in names})
    bad = good.replace("stop_timeout_s: 2", "stop_timeout_s: -1")
    path = tmp_path / "pb.yaml"
    path.write_text(bad)
    with pytest.raises(BadInput) as error:
        load_playbook(path)
    line = next(n for n, text in enumerate(bad.splitlines(), 1) if "stop_timeout_s: -1" in text)
    assert f"{path}:{line}: runtime.stop_timeout_s" in error.value.message


def test_playbook_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pb.yaml"
    path.write_text("version: 1\nname: x\nconfig: {dir: /c}\nruntime: {kind: process, argv: [m], cwd: /, "
                    "pid_file: /p, stdout_log: /l}\nmigration: {state_dir: s, backupdir: /b}\n")
    with pytest.raises(BadInput, match="backupdir"):
        load_playbook(path)


def test_a_container_path_is_seen_on_the_host_only_through_the_path_map(tmp_path: Path) -> None:
    path = tmp_path / "pb.yaml"
    path.write_text("version: 1\nname: x\nconfig: {dir: /c}\nruntime: {kind: docker}\n"
                    "path_map: {/var/lib/milvus: /srv/milvus}\nmigration: {state_dir: s}\n")
    spec = load_playbook(path).spec
    assert spec.sees("/var/lib/milvus/logs/nats.log")
    assert spec.host_path("/var/lib/milvus/logs/nats.log") == Path("/srv/milvus/logs/nats.log")
    assert not spec.sees("/tmp/milvus/logs/nats.log")  # the container's /tmp, not this host's


# --- issue 20, finding 13: a playbook `playbook check` calls ready is one `plan` does not refuse


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_playbooks_hold_everything_plan_needs(path: Path) -> None:
    from migrator.migration.preflight import playbook_findings

    assert [f for f in playbook_findings(load_playbook(path).spec) if f.level == "error"] == []


def test_check_says_what_must_be_filled_in_before_plan(tmp_path: Path) -> None:
    path = _write(tmp_path, "  kind: systemd\n", etcd=False)
    result = run_cli(["playbook", "check", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.stdout + result.stderr
    assert "config.etcd.endpoint" in result.stderr and "2379" in result.stdout, result.stdout + result.stderr


def test_the_sandbox_template_says_its_fields_must_be_filled_in() -> None:
    result = run_cli(["playbook", "check", str(REPO / "playbooks" / "sandbox.yaml")])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "${dir}" in result.stdout and "template" in result.stdout
