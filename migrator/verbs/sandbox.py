"""sandbox up / seed / status / down: a real Milvus (2.3.5, or the release `--version` names) on this
machine (migrator/sandbox/ builds it)."""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from migrator.context import Environment
from migrator.errors import BadInput, Refused
from migrator.mq import Mq
from migrator.runtime.base import StartFailed, StopResult
from migrator.runtime.process import ProcessRuntime
from migrator.sandbox import binaries, configure
from migrator.sandbox.layout import (
    PORT_NAMES,
    SandboxLayout,
    SandboxState,
    check_sandbox_dir,
)
from migrator.util.ports import free_ports, port_is_free


@dataclass
class SandboxInfo:
    dir: Path
    running: bool
    pid: int | None
    uri: str
    metrics_url: str
    config: Path
    log_dir: Path
    playbook: Path
    mq_config: str | None = None
    mq_log: str | None = None

    def to_dict(self) -> dict:
        return {key: str(value) if isinstance(value, Path) else value for key, value in self.__dict__.items()}


def runtime_for(layout: SandboxLayout, state: SandboxState) -> ProcessRuntime:
    bin_dir = Path(state.bin_dir)
    return ProcessRuntime(
        argv=[str(bin_dir / "milvus"), "run", "standalone"],
        cwd=layout.root,
        pid_file=layout.pid_file,
        stdout_log=layout.stdout_log,
        metrics_url=f"http://127.0.0.1:{state.ports['metrics']}",
        variables={
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(state.ports["metrics"]),
            "MILVUS_RUN_DIR": str(layout.run_dir),
            "LD_LIBRARY_PATH": str(bin_dir),
        },
    )


def _info(layout: SandboxLayout, state: SandboxState) -> SandboxInfo:
    runtime = runtime_for(layout, state)
    pid = runtime.running_pid()
    return SandboxInfo(
        dir=layout.root,
        running=pid is not None,
        pid=pid,
        uri=f"http://127.0.0.1:{state.ports['proxy']}",
        metrics_url=runtime.metrics_url,
        config=layout.milvus_yaml,
        log_dir=layout.log_dir,
        playbook=layout.playbook,
    )


@contextmanager
def _exclusive(layout: SandboxLayout) -> Iterator[None]:
    """One `up`/`down` at a time per sandbox dir, so two never start two processes."""
    with open(layout.lock_file, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise Refused(f"another sandbox command holds {layout.lock_file}") from error
        yield


def _choose_ports(requested: dict[str, int | None]) -> dict[str, int]:
    for name, port in requested.items():
        if port is not None and not port_is_free(port):
            raise Refused(f"--{name.replace('_', '-')}-port {port}: already in use on 127.0.0.1")
    fixed = {name: port for name, port in requested.items() if port is not None}
    missing = [name for name in PORT_NAMES if name not in fixed]
    chosen = free_ports(len(missing), avoid=set(fixed.values()))
    return {**fixed, **dict(zip(missing, chosen, strict=True))}


def _milvus_ready(uri: str) -> bool:
    """healthz=OK is not ready: a FlushAll must go through (docs/milvus.md, "FlushAll")."""
    from migrator.milvus.client import MilvusAdapter, MilvusUnavailable

    try:
        with MilvusAdapter.connect(uri, timeout=5.0) as milvus:
            milvus.flush_all(deadline_s=20.0)
        return True
    except MilvusUnavailable:
        return False


def up(
    env: Environment,
    root: Path,
    *,
    mq: str | None = None,
    version: str | None = None,
    proxy_port: int | None = None,
    metrics_port: int | None = None,
    nats_port: int | None = None,
    start_timeout_s: float = 240.0,
) -> SandboxInfo:
    if root.exists() and not root.is_dir():
        raise BadInput(f"--dir {root}: exists and is not a directory")
    if not (root / "sandbox.json").exists():
        # Check what the operator gave before creating anything: bad input changes nothing on disk.
        binaries.find_wheel(version, env.environ)
        for name, port in (("proxy", proxy_port), ("metrics", metrics_port), ("nats", nats_port)):
            if port is not None and not port_is_free(port):
                raise Refused(f"--{name}-port {port}: already in use on 127.0.0.1")
    layout = check_sandbox_dir(root, create=True)
    with _exclusive(layout):
        state = SandboxState.load(layout)
        if state is not None:
            if version is not None and version != state.version:
                raise Refused(f"--version {version}: the sandbox in {layout.root} runs Milvus {state.version}; "
                              "use a new --dir for another release")
            info = _info(layout, state)
            if info.running:
                env.log.info("sandbox.already_running", dir=str(layout.root), pid=info.pid)
                return info
            for name, port in (("proxy", proxy_port), ("metrics", metrics_port), ("nats", nats_port)):
                if port is not None and port != state.ports[name]:
                    raise Refused(
                        f"--{name}-port {port}: the sandbox in {layout.root} was created with port "
                        f"{state.ports[name]}; use a new --dir for other ports"
                    )
            taken = [f"{n}={p}" for n, p in state.ports.items() if not port_is_free(p)]
            if taken:
                raise Refused(f"ports of the sandbox in {layout.root} are in use: {', '.join(taken)}")
        else:
            wheel = binaries.find_wheel(version, env.environ)
            started = time.monotonic()
            bin_dir, unpacked = binaries.unpack(wheel, env.environ)
            env.log.info("sandbox.binaries", bin_dir=str(bin_dir), unpacked=unpacked,
                         seconds=round(time.monotonic() - started, 2))
            ports = _choose_ports({"proxy": proxy_port, "metrics": metrics_port, "nats": nats_port})
            state = SandboxState(bin_dir=str(bin_dir), ports=ports, mq=mq or Mq.ROCKSMQ.value, version=wheel.version)
            for path in (layout.config_dir, layout.log_dir, layout.data_dir, layout.run_dir):
                path.mkdir(parents=True, exist_ok=True)
            layout.etcd_yaml.write_text(configure.etcd_yaml_text(layout, ports))
            layout.milvus_yaml.write_text(configure.milvus_yaml_text(wheel, layout, state))
            # Without glog.conf beside milvus.yaml the binary exits 1 silently (2.2 ships none).
            if wheel.glog_conf.is_file():
                shutil.copyfile(wheel.glog_conf, layout.config_dir / "glog.conf")
            layout.playbook.write_text(configure.playbook_text(layout, state))
            state.save(layout)
        return _start(env, layout, state, start_timeout_s)


def _start(env: Environment, layout: SandboxLayout, state: SandboxState, deadline_s: float) -> SandboxInfo:
    runtime = runtime_for(layout, state)
    uri = f"http://127.0.0.1:{state.ports['proxy']}"
    started = time.monotonic()
    pid = runtime.start()
    env.log.info("sandbox.starting", dir=str(layout.root), pid=pid)
    try:
        runtime.wait_healthy(deadline_s, ready=lambda: _milvus_ready(uri))
    except StartFailed as error:
        # Never leave a half-started process behind.
        runtime.stop(10.0)
        raise StartFailed(f"{error.message}{_failure_reason(layout)}") from error
    env.log.info("sandbox.up", dir=str(layout.root), pid=pid, seconds=round(time.monotonic() - started, 1))
    return _info(layout, state)


def _failure_reason(layout: SandboxLayout) -> str:
    """Milvus often exits with nothing on stdout; the reason may be in the NATS log."""
    try:
        lines = layout.nats_log.read_text(errors="replace").splitlines()[-50:]
    except OSError:
        return ""
    fatal = [line for line in lines if "[FTL]" in line]
    return f" (NATS log: {fatal[-1].strip()})" if fatal else ""


def seed(env: Environment, root: Path) -> dict[str, tuple[int, bool]]:
    """The deterministic seed data (sandbox/seed.py): collection key -> (rows, loaded)."""
    from migrator.sandbox import seed as seed_data

    _, state = load(root)
    return seed_data.seed(env, f"http://127.0.0.1:{state.ports['proxy']}")


def load(root: Path) -> tuple[SandboxLayout, SandboxState]:
    layout = check_sandbox_dir(root, create=False)
    state = SandboxState.load(layout)
    if state is None:
        raise Refused(f"--dir {root}: no sandbox there (run `milvus-migrate sandbox up --dir {root}`)")
    return layout, state


def status(env: Environment, root: Path) -> SandboxInfo:
    layout, state = load(root)
    info = _info(layout, state)
    info.mq_config = config_mq_type(layout.milvus_yaml)
    info.mq_log = last_logged_mq_type(layout)
    return info


def down(env: Environment, root: Path, *, timeout_s: float = 30.0) -> StopResult:
    layout, state = load(root)
    with _exclusive(layout):
        result = runtime_for(layout, state).stop(timeout_s)
    env.log.info("sandbox.down", dir=str(layout.root), pid=result.pid, graceful=result.graceful,
                 seconds=round(result.seconds, 1))
    return result


def config_mq_type(milvus_yaml: Path) -> str | None:
    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load(milvus_yaml.read_text())
    return str((doc.get("mq") or {}).get("type"))


def last_logged_mq_type(layout: SandboxLayout) -> str | None:
    """The mqType of the last `try to init mq` line: on 2.3.5 those lines reach stdout only."""
    from migrator.milvus.logs import MSG_INIT_MQ, FileFollower, parse_line

    found = None
    with FileFollower(layout.stdout_log) as follower:
        for line in follower.lines(deadline=0.0):
            parsed = parse_line(line)
            if parsed is not None and parsed.message == MSG_INIT_MQ:
                found = str(parsed.fields.get("mqType"))
    return found
