"""A config file held by its inode is written in place; extended attributes and ACLs survive a write.

Real mount namespaces (`unshare --mount`), no container engine: a process that bind-mounts the
file on its own, as a container's single-file mount does, must see the edit. Root only (mounts,
setns), as the tool runs.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.config import write as config_write
from migrator.config import write_atomic
from migrator.errors import Refused

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces and bind mounts need root")


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """milvus.yaml, and the path under which another mount namespace sees it bind-mounted on its own
    (/proc/<pid>/root/<mount point>), like a container's `./milvus.yaml:/milvus/configs/milvus.yaml`."""
    config = tmp_path / "milvus.yaml"
    config.write_text("quotaAndLimits:\n  limitWriting:\n    forceDeny: false\n")
    mount_point = tmp_path / "inside" / "milvus.yaml"
    mount_point.parent.mkdir()
    mount_point.write_text("")
    process = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"mount --bind '{config}' '{mount_point}' && echo ready && exec sleep 300"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield config, Path(f"/proc/{process.pid}/root{mount_point}")
    finally:
        process.kill()
        process.wait()


def test_a_file_another_namespace_mounts_on_its_own_is_written_in_place(holder: tuple[Path, Path]) -> None:
    config, view = holder
    inode = config.stat().st_ino
    assert config_write.mount_views(config) == [view]
    write_atomic(config, "quotaAndLimits:\n  limitWriting:\n    forceDeny: true\n")
    assert config.stat().st_ino == inode
    assert view.read_text() == "quotaAndLimits:\n  limitWriting:\n    forceDeny: true\n"  # what the "container" reads
    assert sorted(p.name for p in config.parent.iterdir()) == ["inside", "milvus.yaml"]  # no write-ahead copy left


def test_a_rename_would_not_reach_the_mount(holder: tuple[Path, Path]) -> None:
    """Why the in-place write exists: the atomic replace leaves the other namespace on the old inode."""
    config, view = holder
    from migrator.util.files import write_bytes_atomic

    write_bytes_atomic(config, b"renamed: true\n")
    assert config.read_text() == "renamed: true\n"
    assert view.read_text().endswith("forceDeny: false\n")
    assert config_write.mount_views(config) == []  # the mount now holds an inode the path no longer names


def test_other_hard_links_keep_seeing_the_file(tmp_path: Path) -> None:
    config = tmp_path / "milvus.yaml"
    config.write_text("a: 1\n")
    other = tmp_path / "link.yaml"
    os.link(config, other)
    write_atomic(config, "a: 2\n")
    assert other.read_text() == "a: 2\n" and os.stat(other).st_ino == config.stat().st_ino


def test_a_file_that_is_a_mount_point_here_is_written_in_place(tmp_path: Path) -> None:
    """The tool itself in a container whose config is a single-file mount: a rename onto it fails
    (EBUSY), the in-place write does not."""
    source = tmp_path / "host.yaml"
    source.write_text("a: 1\n")
    mounted = tmp_path / "milvus.yaml"
    mounted.write_text("")
    script = ("import sys; from pathlib import Path; from migrator.config import write_atomic; "
              f"write_atomic(Path('{mounted}'), 'a: 2\\n')")
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           f"mount --bind '{source}' '{mounted}' && exec '{sys.executable}' -c \"{script}\""],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert source.read_text() == "a: 2\n"


def _acl(*entries: tuple[int, int, int]) -> bytes:
    """A system.posix_acl_access value: version 2, then (tag, permissions, id) per entry."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, ident) for tag, perm, ident in entries)


ACL = _acl((0x01, 6, 0xFFFFFFFF), (0x02, 4, 4242), (0x04, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF),
           (0x20, 0, 0xFFFFFFFF))  # user::rw- user:4242:r-- group::r-- mask::r-- other::---


@pytest.mark.parametrize("linked", [False, True], ids=["renamed", "in-place"])
def test_extended_attributes_and_acl_survive(tmp_path: Path, linked: bool) -> None:
    config = tmp_path / "milvus.yaml"
    config.write_text("a: 1\n")
    if linked:
        os.link(config, tmp_path / "other.yaml")
    try:
        os.setxattr(config, "user.milvus-migrate.test", b"kept")
        os.setxattr(config, "system.posix_acl_access", ACL)
    except OSError as error:
        pytest.skip(f"this file system takes no user xattr or POSIX ACL: {error.strerror}")
    write_atomic(config, "a: 2\n")
    assert config.read_text() == "a: 2\n"
    assert os.getxattr(config, "user.milvus-migrate.test") == b"kept"
    assert os.getxattr(config, "system.posix_acl_access") == ACL
    assert config.stat().st_mode & 0o777 == 0o640  # the mode the ACL implies (mask r--)


def test_a_failed_in_place_write_puts_the_original_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write error after the truncate (EIO, quota): the original bytes go back; Refused says so."""
    config = tmp_path / "milvus.yaml"
    config.write_text("a: 1\n")
    os.link(config, tmp_path / "other.yaml")
    real_pwrite, calls = os.pwrite, []

    def failing_once(descriptor: int, data: bytes, offset: int) -> int:
        calls.append(data)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        return real_pwrite(descriptor, data, offset)

    monkeypatch.setattr(config_write.os, "pwrite", failing_once)
    with pytest.raises(Refused, match="Input/output error; the original content was put back"):
        write_atomic(config, "a: 2\n")
    assert config.read_text() == "a: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["milvus.yaml", "other.yaml"]
