"""pytest fixtures for container tests. Import them into a conftest.py to use them:

    from tests.containers.fixtures import container_images  # noqa: F401

`container_images` installs the engine (scripts/install-container-engine.sh) and builds the
images once per session (a tag that exists is not built again), or skips every test that uses
it, with the reason.
"""

from __future__ import annotations

import pytest

from tests.containers.engine import ContainersUnavailable
from tests.containers.images import ImageTags, ensure_images, remove_old_images


@pytest.fixture(scope="session")
def container_images() -> ImageTags:
    try:
        tags = ensure_images()
    except ContainersUnavailable as exc:
        pytest.skip(f"containers unavailable: {exc}")
    remove_old_images(tags)  # an earlier recipe's images: 300 MB each
    return tags
