"""The docker compose shape on real containers (podman-compose, services `etcd` and `standalone`,
milvus.yaml bind-mounted as a single file as docs/deployments/docker-compose.md recommends),
driven by the tool's compose runtime: an edit of the live file reaches the running Milvus (it
holds the file's inode), an MQ_TYPE in the service's environment is refused at plan, and a real
apply goes RocksMQ -> NATS -> RocksMQ. Judged by the test's own pymilvus client, the config
file's bytes and the container's own log."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.config import write_atomic
from tests.containers import checks
from tests.containers.engine import wait_healthz
from tests.containers.images import ImageTags
from tests.containers.shapes import ComposeShape
from tests.support.cli import run_cli

pytestmark = pytest.mark.milvus


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory, container_images: ImageTags) -> Iterator[ComposeShape]:
    shape = ComposeShape(tmp_path_factory.mktemp("compose"), container_images).write()
    try:
        shape.compose("up", "-d")
        wait_healthz(shape.metrics_port)
        yield shape
    finally:
        shape.down()


@pytest.fixture(scope="module")
def seeded(compose: ComposeShape) -> dict[str, int]:
    return checks.seed(f"http://127.0.0.1:{compose.proxy_port}")


def test_an_edit_of_the_mounted_file_reaches_the_running_milvus(compose: ComposeShape, seeded) -> None:
    """The container holds milvus.yaml by its inode: the tool's write goes in place, and Milvus
    (re-reading its file every 5 s) refuses writes once forceDeny is true, takes them once false."""
    uri = f"http://127.0.0.1:{compose.proxy_port}"
    original = compose.milvus_yaml.read_text()
    inode = compose.milvus_yaml.stat().st_ino
    denied = original.replace("    forceDeny: false", "    forceDeny: true", 1)
    assert denied != original
    try:
        write_atomic(compose.milvus_yaml, denied)
        refusal, accepted = checks.insert_refused(uri, 900_000)
        assert refusal is not None and "deactivated by the administrator" in refusal
        assert compose.milvus_yaml.stat().st_ino == inode
    finally:
        write_atomic(compose.milvus_yaml, original)
    assert checks.insert_accepted(uri, 800_000)
    assert compose.milvus_yaml.read_text() == original and compose.milvus_yaml.stat().st_ino == inode
    seeded["default.loaded_docs"] += accepted + 1  # before the deny took effect, and after it was lifted


def test_mq_type_in_the_service_environment_is_refused_at_plan(compose: ComposeShape, tmp_path: Path) -> None:
    compose_file = compose.compose_file.read_bytes()
    config = compose.milvus_yaml.read_bytes()
    try:
        compose.compose_file.write_text(compose.compose_text({"MQ_TYPE": "rocksmq"}))
        plan = tmp_path / "plan.json"
        refused = run_cli(["--output", "json", "plan", "--playbook", str(compose.playbook(tmp_path / "compose.yaml")),
                           "--out", str(plan)])
    finally:
        compose.compose_file.write_bytes(compose_file)  # as it was: `up -d` must not see a changed service
    assert refused.exit_code == 3, refused.stdout + refused.stderr
    [error] = [f for f in refused.json()["findings"] if f["level"] == "error"]
    assert error["key"] == "mq.type" and "MQ_TYPE" in error["message"]
    assert compose.milvus_yaml.read_bytes() == config


def test_rocksmq_to_nats_and_back(compose: ComposeShape, seeded, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{compose.proxy_port}"
    assert checks.counts(uri) == seeded
    original = compose.milvus_yaml.read_text()
    playbook = compose.playbook(tmp_path / "compose.yaml")

    started = time.time()
    applied = run_cli(["--output", "json", "apply", "--playbook", str(playbook), "--yes"])
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert checks.counts(uri) == seeded
    log = checks.container_log(compose.milvus_container, started)
    # The source restarted isolated, then the target twice (isolated, then for clients); each start
    # logs the line once per component.
    assert checks.mq_runs(log) == ["rocksmq", "natsmq"] and "initialize nmq finished" in log
    on_nats = compose.milvus_yaml.read_text()
    assert "  type: natsmq\n" in on_nats and "  type: rocksmq\n" not in on_nats
    assert os.path.isdir(compose.data_dir / "nats" / "jetstream")
    verify = next(step for step in applied.json()["steps"] if step["id"] == "verify")
    assert "read over the network via the compose container's network namespace" in verify["summary"]

    back_started = time.time()
    back = run_cli(["--output", "json", "apply", "--playbook", str(playbook), "--to", "rocksmq", "--yes"])
    assert back.exit_code == 0, back.stdout + back.stderr
    assert checks.counts(uri) == seeded
    back_log = checks.container_log(compose.milvus_container, back_started)
    assert checks.mq_runs(back_log) == ["natsmq", "rocksmq"] and "init rocksmq msgstream success" in back_log
    assert compose.milvus_yaml.read_text() == original.replace(
        "logFile: /tmp/milvus/logs/nats.log #", "logFile: /var/lib/milvus/logs/nats.log #")
    assert checks.insert_accepted(uri, 1_000_000)
