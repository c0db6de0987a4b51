"""Shared fixtures: a real Milvus 2.3.5 sandbox, brought up once per session and always brought down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from migrator.context import Environment

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


@dataclass
class Sandbox:
    dir: Path
    uri: str
    playbook: Path
    config_dir: Path
    rocksmq_path: Path
    ports: dict[str, int]


def quiet_env() -> Environment:
    import io

    return Environment(stdout=io.StringIO(), stderr=io.StringIO(), stdin=None)


def start_sandbox(root: Path, mq: str = "rocksmq") -> Sandbox:
    from migrator.sandbox import lifecycle

    lifecycle.up(quiet_env(), root, mq=mq)
    layout, state = lifecycle.load(root)
    return Sandbox(
        dir=layout.root,
        uri=f"http://127.0.0.1:{state.ports['proxy']}",
        playbook=layout.playbook,
        config_dir=layout.config_dir,
        rocksmq_path=layout.rocksmq_path,
        ports=state.ports,
    )


def stop_sandbox(root: Path) -> None:
    from migrator.sandbox import lifecycle

    try:
        lifecycle.down(quiet_env(), root, timeout_s=3.0)  # test data is disposable: no graceful wait
    except Exception:  # noqa: BLE001 - teardown must never mask the test's own result
        pass


@pytest.fixture(scope="session")
def milvus_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A seeded RocksMQ sandbox shared by read-only integration tests. Tests must not migrate it."""
    from migrator.sandbox import seed

    root = tmp_path_factory.mktemp("sandbox-shared")
    try:
        sandbox = start_sandbox(root)
        seed.seed(quiet_env(), sandbox.uri)
        yield sandbox
    finally:
        # Runs on failure and on Ctrl-C too: no Milvus outlives the test session.
        stop_sandbox(root)


@pytest.fixture
def fresh_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox of a test's own, seeded, for tests that change it (migrations)."""
    from migrator.sandbox import seed

    try:
        sandbox = start_sandbox(tmp_path / "sandbox")
        seed.seed(quiet_env(), sandbox.uri)
        yield sandbox
    finally:
        stop_sandbox(tmp_path / "sandbox")
