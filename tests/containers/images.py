"""Build the container images the tests run, here, without any registry.

No registry is reachable from these machines, so both images are built `FROM scratch` with a
root file system assembled on this machine:

- Milvus: the 2.3.5 server that the `milvus` wheel ships (lzma files in `milvus/data/bin/`),
  laid out like the official milvusdb/milvus image: `/milvus/bin/milvus`, its libraries in
  `/milvus/lib` (LD_LIBRARY_PATH), `/milvus/configs/milvus.yaml` rendered from the wheel's
  template with the official image's defaults, `glog.conf` beside it, WORKDIR `/milvus`,
  command `milvus run standalone`, ENTRYPOINT `/tini --` (Debian's tini-static) like the
  official image, so Milvus is not PID 1. Plus the host's glibc and a static busybox (`sh`,
  `cat`, `wget`, `pidof`...) for `podman exec`.
- etcd: Debian's `etcd-server`/`etcd-client` binaries (3.4.23, etcd v3 API), for the compose shape.

Tags are content-addressed (wheel checksum / etcd binary checksum + this recipe's checksum):
a tag that exists is never built again, so `ensure_images()` costs one `podman image exists`
per image after the first build on a machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from migrator.errors import Refused
from migrator.sandbox import binaries
from migrator.sandbox.binaries import MilvusWheel
from migrator.sandbox.configure import render_template
from tests.containers import engine
from tests.containers.engine import ContainersUnavailable

MILVUS_VERSION = "2.3.5"
MILVUS_REPO = "localhost/milvus-migrate/milvus"
ETCD_REPO = "localhost/milvus-migrate/etcd"

# Libraries of the host's glibc that the Milvus binary, its bundled libraries and etcd need
# (ldd: everything else ships inside the wheel). glibc >= 2.34 has nss files/dns inside libc.
GLIBC_LIBS = ("libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1")
LOADER = "/lib64/ld-linux-x86-64.so.2"
BUSYBOX = "/bin/busybox"  # Debian's busybox-static
TINI = "/usr/bin/tini-static"  # Debian's tini; the official image's ENTRYPOINT is ["/tini", "--"]
BUSYBOX_APPLETS = (
    "sh",
    "cat",
    "ls",
    "ps",
    "kill",
    "killall",
    "pidof",
    "nc",
    "sleep",
    "wget",
    "mkdir",
    "rm",
    "mv",
    "cp",
    "stat",
    "env",
    "grep",
    "head",
    "tail",
    "echo",
    "touch",
)
ETCD_BINARIES = ("/usr/bin/etcd", "/usr/bin/etcdctl")


@dataclass(frozen=True)
class ImageTags:
    milvus: str
    etcd: str


class ImageBuildFailed(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# The Milvus wheel and its unpacked binaries: the sandbox's (migrator/sandbox/binaries.py), so the
# sandboxes and the images share one unpacked copy in the same cache.


def find_wheel() -> MilvusWheel:
    try:
        return binaries.find_wheel()
    except Refused as error:
        raise ContainersUnavailable(error.message) from None


def unpacked_bin_dir(wheel: MilvusWheel) -> Path:
    return binaries.unpack(wheel, os.environ)[0]


def wheel_checksum(wheel: MilvusWheel) -> str:
    # The unpacked tree is named milvus-2.3.5-<checksum of the wheel's compressed binaries>.
    return unpacked_bin_dir(wheel).parent.name.rsplit("-", 1)[1]


def cache_root() -> Path:
    return binaries.cache_root(os.environ)


# ---------------------------------------------------------------------------------------------
# Configuration baked into the image


# The official image's configs/milvus.yaml: external etcd at localhost:2379, data under
# /var/lib/milvus, logs to stdout (log.file.rootPath empty), default ports.
IMAGE_TEMPLATE_VALUES = {
    "etcd_port": "2379",
    "etcd_log_path": "stdout",
    "etcd_data_dir": "default.etcd",
    "local_storage_dir": "/var/lib/milvus/data/",
    "rocksmq_data_dir": "/var/lib/milvus/rdb_data",
    "system_log_path": "",
}


def _set_scalar(text: str, dotted: str, value: str) -> str:
    """Replace the value of one nested key in YAML text, keeping comments and layout."""
    lines = text.splitlines(keepends=True)
    parts = dotted.split(".")
    depth, indent_stack = 0, [-1]
    for index, line in enumerate(lines):
        stripped = line.lstrip(" ")
        if not stripped.strip() or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        while depth and indent <= indent_stack[-1]:
            depth -= 1
            indent_stack.pop()
        key = parts[depth]
        if re.match(rf"{re.escape(key)}\s*:", stripped):
            if depth == len(parts) - 1:
                match = re.match(
                    rf"(\s*{re.escape(key)}\s*:)[^#\n]*?(\s*#.*)?(\n?)$", line
                )
                assert match is not None
                lines[index] = (
                    f"{match.group(1)} {value}{match.group(2) or ''}{match.group(3)}"
                )
                return "".join(lines)
            depth += 1
            indent_stack.append(indent)
    raise KeyError(f"{dotted} not found in the template")


def image_milvus_yaml(wheel: MilvusWheel) -> str:
    text = render_template(
        wheel.template.read_text(encoding="utf-8"), IMAGE_TEMPLATE_VALUES
    )
    # The wheel's template is tuned for the embedded "lite" server; the official image ships
    # external etcd and MinIO storage (standalone_embed.sh turns both back with
    # ETCD_USE_EMBED=true / COMMON_STORAGETYPE=local).
    text = _set_scalar(text, "etcd.use.embed", "false")
    text = _set_scalar(text, "common.storageType", "remote")
    return text


def image_glog_conf(wheel: MilvusWheel) -> str:
    # The official image logs the C++ side to stdout too; the wheel's file sends it to logs/.
    return wheel.glog_conf.read_text(encoding="utf-8").replace(
        "--logtostdout=false", "--logtostdout=true"
    )


# ---------------------------------------------------------------------------------------------
# Root file systems


def _recipe_checksum() -> str:
    here = Path(__file__)
    return hashlib.sha256(here.read_bytes()).hexdigest()[:8]


def _add_base(rootfs: Path) -> None:
    """glibc, the loader, /etc basics, /tmp, and a static busybox."""
    libdir = rootfs / "lib/x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    for name in GLIBC_LIBS:
        shutil.copy2(os.path.realpath(f"/lib/x86_64-linux-gnu/{name}"), libdir / name)
    (rootfs / "lib64").mkdir()
    shutil.copy2(os.path.realpath(LOADER), rootfs / "lib64" / Path(LOADER).name)
    etc = rootfs / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
    )
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (etc / "nsswitch.conf").write_text("hosts: files dns\n")
    for name in ("tmp", "var/tmp"):
        (rootfs / name).mkdir(parents=True)
        os.chmod(rootfs / name, 0o1777)
    (rootfs / "root").mkdir(mode=0o700)
    bindir = rootfs / "bin"
    bindir.mkdir()
    if os.path.isfile(BUSYBOX):
        shutil.copy2(BUSYBOX, bindir / "busybox")
        for applet in BUSYBOX_APPLETS:
            (bindir / applet).symlink_to("busybox")


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _milvus_rootfs(rootfs: Path, wheel: MilvusWheel, bin_dir: Path) -> None:
    _add_base(rootfs)
    shutil.copy2(TINI, rootfs / "tini")
    for name in (
        "milvus/bin",
        "milvus/lib",
        "milvus/configs",
        "var/lib/milvus",
        "run/milvus",
        "tmp/milvus/logs",
    ):
        (rootfs / name).mkdir(parents=True, exist_ok=True)
    _link_or_copy(bin_dir / "milvus", rootfs / "milvus/bin/milvus")
    for library in sorted(bin_dir.iterdir()):
        if ".so" in library.name:
            _link_or_copy(library, rootfs / "milvus/lib" / library.name)
    (rootfs / "milvus/configs/milvus.yaml").write_text(
        image_milvus_yaml(wheel), encoding="utf-8"
    )
    (rootfs / "milvus/configs/glog.conf").write_text(
        image_glog_conf(wheel), encoding="utf-8"
    )


def _etcd_rootfs(rootfs: Path) -> None:
    _add_base(rootfs)
    (rootfs / "usr/local/bin").mkdir(parents=True)
    for binary in ETCD_BINARIES:
        shutil.copy2(binary, rootfs / "usr/local/bin" / Path(binary).name)
    (rootfs / "etcd").mkdir()


MILVUS_CONTAINERFILE = """\
FROM scratch
COPY rootfs/ /
ENV PATH=/milvus/bin:/usr/local/bin:/usr/bin:/bin \\
    LD_LIBRARY_PATH=/milvus/lib
WORKDIR /milvus
LABEL org.milvus-migrate.milvus-version={version} org.milvus-migrate.wheel-checksum={checksum}
ENTRYPOINT ["/tini", "--"]
CMD ["milvus", "run", "standalone"]
"""

ETCD_CONTAINERFILE = """\
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin ETCDCTL_API=3
WORKDIR /
LABEL org.milvus-migrate.etcd-version={version}
CMD ["etcd"]
"""


# ---------------------------------------------------------------------------------------------
# Building


# The image steps fail as ImageBuildFailed (the fixtures skip or fail on it) and may take longer.
podman = functools.partial(engine.podman, timeout=300, error=ImageBuildFailed)


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".image-build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(tag: str, containerfile: str, fill_rootfs) -> None:
    # The context lives in the cache (same file system as the unpacked binaries), so the
    # 250 MB of Milvus is hard-linked, not copied, into it.
    root = cache_root()
    context = Path(tempfile.mkdtemp(prefix=".image-context-", dir=root))
    try:
        rootfs = context / "rootfs"
        rootfs.mkdir()
        fill_rootfs(rootfs)
        (context / "Containerfile").write_text(containerfile)
        podman(
            "build",
            "--quiet",
            "--layers=false",
            "-f",
            str(context / "Containerfile"),
            "-t",
            tag,
            str(context),
            timeout=600,
        )
    finally:
        shutil.rmtree(context, ignore_errors=True)


def milvus_image_tag(wheel: MilvusWheel) -> str:
    return (
        f"{MILVUS_REPO}:{MILVUS_VERSION}-{wheel_checksum(wheel)}-{_recipe_checksum()}"
    )


def etcd_version() -> str:
    out = subprocess.run(
        [ETCD_BINARIES[0], "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"etcd Version:\s*(\S+)", out)
    return match.group(1) if match else "unknown"


def etcd_image_tag() -> str:
    digest = hashlib.sha256()
    for binary in ETCD_BINARIES:
        digest.update(Path(binary).read_bytes())
    checksum = digest.hexdigest()[:16]
    return f"{ETCD_REPO}:{etcd_version()}-{checksum}-{_recipe_checksum()}"


def ensure_milvus_image() -> str:
    if not os.access(TINI, os.X_OK):
        raise ContainersUnavailable(
            f"{TINI} missing: run scripts/install-container-engine.sh"
        )
    wheel = find_wheel()
    tag = milvus_image_tag(wheel)
    if image_exists(tag):
        return tag
    with _build_lock():
        if not image_exists(tag):
            bin_dir = unpacked_bin_dir(wheel)
            containerfile = MILVUS_CONTAINERFILE.format(
                version=MILVUS_VERSION, checksum=wheel_checksum(wheel)
            )
            _build(
                tag,
                containerfile,
                lambda rootfs: _milvus_rootfs(rootfs, wheel, bin_dir),
            )
    return tag


def ensure_etcd_image() -> str:
    missing = [p for p in ETCD_BINARIES if not os.access(p, os.X_OK)]
    if missing:
        raise ContainersUnavailable(
            f"{', '.join(missing)} missing: run scripts/install-container-engine.sh"
        )
    tag = etcd_image_tag()
    if image_exists(tag):
        return tag
    with _build_lock():
        if not image_exists(tag):
            _build(tag, ETCD_CONTAINERFILE.format(version=etcd_version()), _etcd_rootfs)
    return tag


def ensure_images() -> ImageTags:
    """Build (once per content) and return the Milvus and etcd image tags.

    Raises ContainersUnavailable (with the reason) when podman is not usable here; a
    conftest turns that into a skip.
    """
    from tests.containers.engine import require_engine

    require_engine()
    return ImageTags(milvus=ensure_milvus_image(), etcd=ensure_etcd_image())


def remove_old_images(current_tags: ImageTags) -> list[str]:
    """Remove this recipe's images whose tags are not the current ones (disk hygiene)."""
    current = set(vars(current_tags).values())
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    stale = [
        tag
        for tag in out
        if tag.startswith((MILVUS_REPO, ETCD_REPO)) and tag not in current
    ]
    for tag in stale:
        podman("rmi", tag, check=False)
    return stale


if __name__ == "__main__":  # python -m tests.containers.images
    import sys
    import time

    started = time.monotonic()
    try:
        tags = ensure_images()
    except ContainersUnavailable as exc:
        print(f"SKIP: {exc}")
        sys.exit(0)
    print(
        f"milvus {tags.milvus}\netcd {tags.etcd}\n({time.monotonic() - started:.1f} s)"
    )
