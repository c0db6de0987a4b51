"""Podman on these machines: install check, environment, and small helpers for tests.

Every podman/podman-compose command must run with CONTAINERS_CONF pointing at this
directory's containers.conf (runc, cgroupfs, ulimits that runc can set here): use
`podman_env()` for the environment of any subprocess (tests/integration/containers/conftest.py
sets it for the tool under test, which runs in the test process).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CONTAINERS_CONF = HERE / "containers.conf"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-container-engine.sh"


class ContainersUnavailable(RuntimeError):
    """Podman (or what the images need) cannot be had here; the message says why."""


def podman_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


def install_engine() -> None:
    """Run scripts/install-container-engine.sh; raise ContainersUnavailable on its SKIP line."""
    if not INSTALL_SCRIPT.is_file():
        raise ContainersUnavailable(f"{INSTALL_SCRIPT} is missing")
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("SKIP: "):
            raise ContainersUnavailable(line[len("SKIP: ") :])
    if result.returncode != 0:
        raise ContainersUnavailable(
            f"{INSTALL_SCRIPT.name} failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-1000:]}"
        )


@functools.lru_cache(maxsize=1)
def _engine_state() -> str | None:
    try:
        install_engine()
    except ContainersUnavailable as exc:
        return str(exc)
    probe = subprocess.run(
        [
            "podman",
            "info",
            "--format",
            "{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}",
        ],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        return f"podman info failed: {probe.stderr.strip()[-500:]}"
    return None


def require_engine() -> None:
    """Make sure podman, runc, podman-compose and etcd are installed (once per process)."""
    reason = _engine_state()
    if reason is not None:
        raise ContainersUnavailable(reason)


def compose_argv() -> list[str]:
    path = shutil.which("podman-compose")
    if path is None:
        raise ContainersUnavailable("podman-compose is not installed")
    return [path]


def podman(
    *args: str, check: bool = True, capture: bool = True, timeout: float = 120,
    error: type[Exception] = RuntimeError,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=capture,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise error(
            f"podman {' '.join(args)} failed ({result.returncode}): {(result.stderr or '').strip()[-2000:]}"
        )
    return result


def inspect(name: str) -> dict:
    return json.loads(podman("inspect", "--type", "container", name).stdout)[0]


def wait_healthz(port: int, deadline_s: float = 180, host: str = "127.0.0.1") -> float:
    """Poll http://host:port/healthz until it answers OK; return the seconds it took."""
    started = time.monotonic()
    url = f"http://{host}:{port}/healthz"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"OK":
                    return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"{url} not OK within {deadline_s} s")
        time.sleep(0.5)
