"""The standalone_embed shape on a real container (podman + runc, own network namespace, embedded
etcd, config files bind-mounted, `--restart=always`), driven by the tool's docker runtime with
`engine: podman`: plan refuses mounts that do not match the playbook, and a real apply goes
RocksMQ -> NATS -> RocksMQ. Judged by the test's own pymilvus client, the config file's bytes,
the container's own log and the JetStream store on disk."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from migrator.migration.steps.verify import VerificationFailed
from migrator.milvus.nats import list_streams, read_store
from migrator.runtime.base import ReachUnavailable
from migrator.runtime.docker import DockerRuntime
from tests.containers import checks
from tests.containers.engine import inspect, podman_env, wait_healthz
from tests.containers.images import ImageTags
from tests.containers.shapes import EmbedShape
from tests.support.cli import run_cli
from tests.support.sandbox import quiet_env

pytestmark = pytest.mark.milvus


@pytest.fixture(scope="module")
def embed(tmp_path_factory: pytest.TempPathFactory, container_images: ImageTags) -> Iterator[EmbedShape]:
    shape = EmbedShape(tmp_path_factory.mktemp("embed"), container_images, restart="always").write()
    try:
        shape.start()
        wait_healthz(shape.metrics_port)
        yield shape
    finally:
        shape.remove()


class _NoReach:
    """The deployment's runtime, but its container's loopback out of reach (as for a tool that is
    not root, or an engine on another host)."""

    def __init__(self, runtime: DockerRuntime) -> None:
        self._runtime = runtime

    def __getattr__(self, name: str):
        return getattr(self._runtime, name)

    def reach(self, port: int):
        raise ReachUnavailable(f"reaching port {port} inside the container is off for this test")


def _check_nats_without_reach(playbook: Path) -> str:
    """apply's NATS check against the deployment as the last run left it, with no way into the container."""
    from migrator.migration.steps.verify import check_nats
    from migrator.verbs.deployment import open_deployment, recorded_plan, run_context

    env = quiet_env()
    deployment = open_deployment(env, playbook)
    deployment.runtime = _NoReach(deployment.runtime)
    journal = deployment.journal()
    return check_nats(run_context(env, deployment, recorded_plan(journal), journal, dry_run=True))


def _changed(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_the_docker_cli_drives_the_same_container(embed: EmbedShape, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`engine: docker`: the docker CLI against podman's API socket (no Docker daemon here) sees
    the container podman sees, and the relay reaches Milvus through the pid docker reports."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on this machine")
    socket_path = tmp_path / "podman.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
                               env=podman_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until = time.monotonic() + 30
        while not socket_path.exists():
            assert time.monotonic() < until and service.poll() is None, "podman system service did not start"
            time.sleep(0.1)
        monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
        metrics = f"http://127.0.0.1:{embed.metrics_port}"
        docker = DockerRuntime(container=embed.name, metrics_url=metrics, engine="docker")
        podman = DockerRuntime(container=embed.name, metrics_url=metrics, engine="podman")
        assert docker.running() and docker.environment()["ETCD_USE_EMBED"] == "true"
        assert docker.mounts() == podman.mounts() and docker.state().pid == podman.state().pid
        with docker.reach(19530) as address:
            from pymilvus import MilvusClient

            assert MilvusClient(f"http://{address}").get_server_version() == "v2.3.5-lite"
        follower = docker.log_follower({"since_unix": f"{time.time() - 3600:.6f}"})
        try:
            seen = [line for line in follower.lines(time.monotonic() + 5) if "try to init mq" in line]
        finally:
            follower.close()
        assert seen and all("mqType=rocksmq" in line for line in seen)
    finally:
        service.terminate()
        service.wait(timeout=30)


def test_plan_refuses_mounts_the_playbook_does_not_match(embed: EmbedShape, tmp_path: Path) -> None:
    """config.dir and path_map name host paths the container does not mount: both refused, naming
    the container's mounts; the real layout plans, flagging the single-file mount."""
    playbook = embed.playbook(tmp_path / "wrong.yaml")
    elsewhere = tmp_path / "configs"
    elsewhere.mkdir()
    (elsewhere / "milvus.yaml").write_bytes(embed.milvus_yaml.read_bytes())
    playbook.write_text(playbook.read_text().replace(f"dir: {embed.dir}\n", f"dir: {elsewhere}\n")
                        .replace(f"/var/lib/milvus: {embed.data_dir}", "/var/lib/milvus: /srv/milvus"))
    refused = run_cli(["--output", "json", "plan", "--playbook", str(playbook)])
    assert refused.exit_code == 3, refused.stdout + refused.stderr
    errors = {f["key"]: f["message"] for f in refused.json()["findings"] if f["level"] == "error"}
    assert (f"container {embed.name} mounts milvus.yaml from {embed.milvus_yaml}, but config.dir gives "
            f"{elsewhere / 'milvus.yaml'}") in errors["config.dir"]
    assert (f"rocksmq.path /var/lib/milvus/rdb_data is {embed.data_dir / 'rdb_data'} on the host (container "
            f"{embed.name}), but path_map gives /srv/milvus/rdb_data") in errors["path_map"]

    planned = run_cli(["--output", "json", "plan", "--playbook", str(embed.playbook(tmp_path / "right.yaml"))])
    assert planned.exit_code == 0, planned.stdout + planned.stderr
    [warning] = [f for f in planned.json()["findings"] if f["key"] == "runtime.container"]
    assert f"{embed.milvus_yaml}:/milvus/configs/milvus.yaml as a single file" in warning["message"]


def test_rocksmq_to_nats_and_back(embed: EmbedShape, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{embed.proxy_port}"
    rows = checks.seed(uri)
    original = embed.milvus_yaml.read_text()
    playbook = embed.playbook(tmp_path / "embed.yaml")

    started = time.time()
    plan = tmp_path / "plan.json"
    planned = run_cli(["plan", "--playbook", str(playbook), "--out", str(plan)])
    assert planned.exit_code == 0, planned.stdout + planned.stderr
    applied = run_cli(["--output", "json", "apply", str(plan), "--yes"])
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert checks.counts(uri) == rows
    log = checks.container_log(embed.name, started)
    # every start since the apply began: the source isolated, the target isolated, then for clients
    # (each start logs the line once per component)
    assert checks.mq_runs(log) == ["rocksmq", "natsmq"]
    assert "initialize nmq finished" in log
    on_nats = embed.milvus_yaml.read_text()
    assert _changed(original, on_nats) == [
        "-  type: rocksmq", "+  type: natsmq",
        "-      logFile: /tmp/milvus/logs/nats.log # /tmp/milvus/logs/nats.log by default, Log file path relative "
        "to .. of milvus binary if use relative path.",
        "+      logFile: /var/lib/milvus/logs/nats.log # /tmp/milvus/logs/nats.log by default, Log file path "
        "relative to .. of milvus binary if use relative path."]

    # JetStream, two ways: the store Milvus wrote on the mounted volume (every stream made by this
    # start), and the server itself, which listens on the container's 127.0.0.1 only.
    stored = read_store(embed.data_dir / "nats")
    assert {s.name for s in stored} >= {f"by-dev-rootcoord-dml_{n}" for n in range(16)}
    assert all(s.created >= datetime.fromtimestamp(started, timezone.utc) for s in stored)
    runtime = DockerRuntime(container=embed.name, metrics_url=f"http://127.0.0.1:{embed.metrics_port}",
                            engine="podman")
    with runtime.reach(4222) as address:
        assert sorted(s.name for s in list_streams(address)) == sorted(s.name for s in stored)
    verify = next(step for step in applied.json()["steps"] if step["id"] == "verify")
    assert "read over the network via the docker container's network namespace" in verify["summary"]
    # Where the tool cannot enter the container, the check reads the store on disk, and says so;
    # with the store out of reach too, it fails naming both reasons.
    assert f"read from the store on disk at {embed.data_dir / 'nats'}" in _check_nats_without_reach(playbook)
    blind = tmp_path / "blind.yaml"
    blind.write_text(playbook.read_text().replace(f"/var/lib/milvus: {embed.data_dir}", "/var/lib/milvus: /nowhere"))
    with pytest.raises(VerificationFailed, match="cannot check JetStream either way: reaching port 4222 inside the "
                                                 "container is off for this test; and from the store on disk: no "
                                                 "JetStream stream under /nowhere/nats/jetstream"):
        _check_nats_without_reach(blind)

    back_started = time.time()
    back = run_cli(["--output", "json", "apply", "--playbook", str(playbook), "--to", "rocksmq", "--yes"])
    assert back.exit_code == 0, back.stdout + back.stderr
    assert checks.counts(uri) == rows
    back_log = checks.container_log(embed.name, back_started)
    assert checks.mq_runs(back_log) == ["natsmq", "rocksmq"] and "init rocksmq msgstream success" in back_log
    assert _changed(original, embed.milvus_yaml.read_text()) == _changed(original, on_nats)[2:]  # mq.type back
    assert checks.insert_accepted(uri, 1_000_000)  # writes allowed again
    state = inspect(embed.name)
    assert state["State"]["Running"] and state["HostConfig"]["RestartPolicy"]["Name"] == "always"
