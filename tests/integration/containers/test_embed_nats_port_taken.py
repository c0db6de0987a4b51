"""The NATS port taken inside the container's network namespace, with `--restart=always`.

Milvus runs in the network namespace of a holder container (`--network container:<holder>`), as a
pod's containers share one; a process in the holder keeps 4222 taken across Milvus's restarts.
Plan sees the port taken inside the container (not on the host's loopback); a plan made before
it was taken is applied anyway: the switch to NATS makes Milvus exit at once, and the engine
restarts it, again and again: the tool must not take any of those starts for the proof, must
stop the restarting container, and roll back to RocksMQ with writes allowed. Judged by the test's own client, the config file's
bytes and the container's own log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containers import checks
from tests.containers.engine import inspect, wait_healthz
from tests.containers.images import ImageTags
from tests.containers.shapes import EmbedShape, NetnsHolder
from tests.support.cli import run_cli

pytestmark = pytest.mark.milvus


@pytest.fixture
def held_embed(tmp_path: Path, container_images: ImageTags) -> Iterator[tuple[EmbedShape, NetnsHolder]]:
    holder = NetnsHolder(container_images)
    shape = EmbedShape(tmp_path / "embed", container_images, restart="always", netns_of=holder.name).write()
    try:
        holder.start(shape.publish())
        shape.start()
        wait_healthz(shape.metrics_port)
        yield shape, holder
    finally:
        shape.remove()
        holder.remove()


def test_nats_port_taken_inside_rolls_back_through_engine_restarts(held_embed, tmp_path: Path) -> None:
    shape, holder = held_embed
    uri = f"http://127.0.0.1:{shape.proxy_port}"
    rows = checks.seed(uri)
    original = shape.milvus_yaml.read_bytes()
    playbook = shape.playbook(tmp_path / "embed.yaml")
    plan = tmp_path / "plan.json"
    planned = run_cli(["plan", "--playbook", str(playbook), "--out", str(plan)])
    assert planned.exit_code == 0, planned.stdout + planned.stderr

    # 0.0.0.0:4222 in the shared namespace, listening again after each connection: NATS cannot
    # bind 127.0.0.1:4222 there. The host's own 127.0.0.1:4222 has nothing to do with it.
    holder.exec("sh", "-c", "while :; do nc -l -p 4222 </dev/null; done")
    refused = run_cli(["--output", "json", "plan", "--playbook", str(playbook), "--out", str(tmp_path / "again.json")])
    assert refused.exit_code == 3, refused.stdout + refused.stderr
    [taken] = [f for f in refused.json()["findings"] if f["key"] == "natsmq.server.port"]
    assert taken["level"] == "error" and "127.0.0.1:4222 is taken" in taken["message"]

    # Applied anyway (the plan made before the port was taken): the start fails for real.
    started = time.time()
    applied = run_cli(["--output", "json", "apply", str(plan), "--yes"])
    assert applied.exit_code == 1, applied.stdout + applied.stderr  # failed and rolled back
    assert "rolled back to rocksmq, clients back" in applied.stderr
    assert "address already in use" in applied.stderr  # NATS's own reason, from its log on the volume

    log = checks.container_log(shape.name, started)
    starts = checks.mq_types(log)
    # RocksMQ isolated (the source's FlushAll), the tool's start on NATS, at least one more by the
    # engine (restart policy) before the rollback stopped it for good; then RocksMQ again (isolated,
    # then for clients), and nothing after that.
    assert starts[0] == "rocksmq" and starts.count("natsmq") >= 2 and starts[-2:] == ["rocksmq", "rocksmq"], starts
    assert "initialize nmq finished" not in log
    assert log.rindex("init rocksmq msgstream success") > log.rindex("mqType=natsmq")
    assert shape.milvus_yaml.read_bytes() == original
    assert checks.counts(uri) == rows
    assert checks.insert_accepted(uri, 1_000_000)
    state = inspect(shape.name)
    assert state["State"]["Running"] and state["HostConfig"]["RestartPolicy"]["Name"] == "always"
