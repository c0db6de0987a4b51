"""Shared fixtures: a real Milvus 2.3.5 sandbox, brought up once per session and always brought down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sandbox import Sandbox, quiet_env, start_sandbox, stop_sandbox


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
