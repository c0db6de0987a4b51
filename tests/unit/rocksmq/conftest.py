"""The RocksMQ the backup, clean-up and hostile-input tests work on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.rocksmq import milvus_topics, write_rocksmq


@pytest.fixture
def rocksmq(tmp_path: Path) -> Path:
    """rocksmq.path (tmp_path/volumes/rdb_data) and its _meta_kv sibling: two channels, small and large messages."""
    path = tmp_path / "volumes" / "rdb_data"
    path.parent.mkdir()
    write_rocksmq(path, milvus_topics(2, [100] * 20 + [70_000] * 5))
    return path
