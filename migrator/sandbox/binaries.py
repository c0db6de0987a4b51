"""The Milvus server shipped (lzma-compressed) inside the `milvus` wheel, unpacked once.

The installed wheel (2.3.5) by default; `sandbox up --version V` takes the wheel of another
release from PyPI (`pip download milvus==V`, the ordinary client), kept under the cache with its
`milvus/data/` unpacked beside it. The unpacked binaries are keyed by the version and a checksum
of the wheel's compressed files, so several sandboxes (and test runs) share one copy.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from migrator.errors import BadInput, Refused

_VERSION = re.compile(r"^\d+\.\d+\.\d+(\.post\d+)?$")
DOWNLOAD_TIMEOUT_S = 600


@dataclass(frozen=True)
class MilvusWheel:
    data_dir: Path  # <site-packages>/milvus/data, or its copy unpacked from a downloaded wheel
    version: str = "2.3.5"

    @property
    def template(self) -> Path:
        return self.data_dir / "config.yaml.template"

    @property
    def glog_conf(self) -> Path:
        return self.data_dir / "glog.conf"

    @property
    def compressed(self) -> list[Path]:
        return sorted((self.data_dir / "bin").glob("*.lzma"))


def find_wheel(version: str | None = None, environ: Mapping[str, str] | None = None) -> MilvusWheel:
    """The installed `milvus` wheel (found without importing it), or the wheel of `version`."""
    if version is not None and version != installed_version():
        return _downloaded_wheel(version, os.environ if environ is None else environ)
    spec = importlib.util.find_spec("milvus")
    if spec is None or spec.origin is None:
        raise Refused(
            "the `milvus` package (Milvus 2.3.5 server binary) is not installed",
            hint="pip install 'milvus-migrate[sandbox]'",
        )
    data_dir = Path(spec.origin).parent / "data"
    wheel = MilvusWheel(data_dir, installed_version() or "2.3.5")
    if not wheel.template.is_file() or not any(wheel.compressed):
        raise Refused(f"the `milvus` package at {data_dir.parent} does not ship the server binary")
    return wheel


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("milvus")
    except importlib.metadata.PackageNotFoundError:
        return None


def _downloaded_wheel(version: str, environ: Mapping[str, str]) -> MilvusWheel:
    """The wheel of `version` from PyPI, its milvus/data/ unpacked once under the cache."""
    if not _VERSION.match(version):
        raise BadInput(f"--version {version}: not a Milvus release number (e.g. 2.3.0)")
    data_dir = cache_root(environ) / f"milvus-{version}-wheel" / "data"
    if not (data_dir / "config.yaml.template").is_file():
        wheels = cache_root(environ) / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        found = sorted(wheels.glob(f"milvus-{version}-*.whl"))
        if not found:
            _download(version, wheels)
            found = sorted(wheels.glob(f"milvus-{version}-*.whl"))
        _unpack_data(found[0], data_dir)
    wheel = MilvusWheel(data_dir, version)
    if not any(wheel.compressed):
        raise Refused(f"the milvus {version} wheel does not ship the server binary")
    return wheel


def _download(version: str, wheels: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=wheels))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", f"milvus=={version}", "--no-deps", "--only-binary", ":all:",
             "--quiet", "-d", str(staging)], capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S)
        downloaded = sorted(staging.glob(f"milvus-{version}-*.whl"))
        if done.returncode != 0 or not downloaded:
            reason = [line for line in done.stderr.splitlines() if "ignored" not in line][-1:] or ["no wheel"]
            raise Refused(f"--version {version}: no milvus {version} wheel could be downloaded ({reason[0][:200]})",
                          hint="`pip index versions milvus` lists the releases on PyPI")
        os.rename(downloaded[0], wheels / downloaded[0].name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unpack_data(wheel_file: Path, data_dir: Path) -> None:
    """milvus/data/ of the wheel into `data_dir`, made beside it and renamed in (atomic)."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".data-", dir=data_dir.parent))
    try:
        with zipfile.ZipFile(wheel_file) as archive:
            for member in archive.infolist():
                name = member.filename
                if not name.startswith("milvus/data/") or name.endswith("/") or ".." in Path(name).parts:
                    continue
                target = staging / Path(name).relative_to("milvus/data")
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
        try:
            os.rename(staging, data_dir)
        except OSError:
            if not (data_dir / "config.yaml.template").is_file():
                raise  # not a concurrent unpack that won the race
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    target = cache_root(environ) / f"milvus-{wheel.version}-{_checksum(files)}" / "bin"
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
