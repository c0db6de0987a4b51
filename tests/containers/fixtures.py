"""pytest fixtures for container tests. Import them into a conftest.py to use them:

    from tests.containers.fixtures import container_images, podman_environ  # noqa: F401

`container_images` installs the engine (scripts/install-container-engine.sh) and builds the
images once per session, or skips every test that uses it, with the reason.
"""

from __future__ import annotations

import pytest

from tests.containers.engine import ContainersUnavailable, podman_env
from tests.containers.images import ImageTags, ensure_images


@pytest.fixture(scope="session")
def container_images() -> ImageTags:
    try:
        return ensure_images()
    except ContainersUnavailable as exc:
        pytest.skip(f"containers unavailable: {exc}")


@pytest.fixture(scope="session")
def podman_environ(container_images: ImageTags) -> dict[str, str]:
    """Environment in which plain `podman`/`podman-compose` work (pass it to the tool under test)."""
    return podman_env()
