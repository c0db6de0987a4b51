"""The Milvus 2.3.5 server shipped (lzma-compressed) inside the `milvus` wheel, unpacked once.

The unpacked tree is keyed by a checksum of the wheel's compressed files, so a new wheel
gets a new tree and several sandboxes (and test runs) share one copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import lzma
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from migrator.errors import Refused


@dataclass(frozen=True)
class MilvusWheel:
    data_dir: Path  # <site-packages>/milvus/data

    @property
    def template(self) -> Path:
        return self.data_dir / "config.yaml.template"

    @property
    def glog_conf(self) -> Path:
        return self.data_dir / "glog.conf"

    @property
    def compressed(self) -> list[Path]:
        return sorted((self.data_dir / "bin").glob("*.lzma"))


def find_wheel() -> MilvusWheel:
    """Locate the installed `milvus` wheel without importing it."""
    spec = importlib.util.find_spec("milvus")
    if spec is None or spec.origin is None:
        raise Refused(
            "the `milvus` package (Milvus 2.3.5 server binary) is not installed",
            hint="pip install 'milvus-migrate[sandbox]'",
        )
    data_dir = Path(spec.origin).parent / "data"
    wheel = MilvusWheel(data_dir)
    if not wheel.template.is_file() or not any(wheel.compressed):
        raise Refused(f"the `milvus` package at {data_dir.parent} does not ship the server binary")
    return wheel


def cache_root(environ: Mapping[str, str]) -> Path:
    if "MILVUS_MIGRATE_CACHE" in environ:
        return Path(environ["MILVUS_MIGRATE_CACHE"])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "milvus-migrate"


def _checksum(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def unpack(wheel: MilvusWheel, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """Return (bin dir holding `milvus` and its libraries, whether it was unpacked just now)."""
    files = wheel.compressed
    target = cache_root(environ) / f"milvus-2.3.5-{_checksum(files)}" / "bin"
    if (target / "milvus").is_file():
        return target, False
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    # Unpack beside the target and rename: a concurrent or interrupted unpack never leaves
    # a half-written binary where the next run would take it for complete.
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent.parent))
    os.chmod(staging, 0o755)
    try:
        for compressed in files:
            out = staging / compressed.name[: -len(".lzma")]
            with lzma.open(compressed, "rb") as source, open(out, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
            os.chmod(out, 0o755)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "milvus").is_file():
                raise
            return target, False  # another process won the race
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, True
