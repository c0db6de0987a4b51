"""Real containers (podman + runc, images built here): the engine is installed and the images built
once per test run, or every test here skips with the reason (tests/containers/README.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.containers.engine import CONTAINERS_CONF
from tests.containers.fixtures import container_images  # noqa: F401 - a session fixture for this package
from tests.containers.images import ImageTags


@pytest.fixture(scope="session", autouse=True)
def podman_for_the_tool(container_images: ImageTags) -> Iterator[ImageTags]:  # noqa: F811
    """The tool under test runs plain `podman ...` in this process: it must use the tests' containers.conf."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_CONF", str(CONTAINERS_CONF))
        yield container_images
