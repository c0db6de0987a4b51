"""How Milvus is stopped, started and checked, per deployment shape."""

from __future__ import annotations

from typing import Mapping

from migrator.playbook import Playbook
from migrator.runtime.base import Runtime


def runtime_for_playbook(playbook: Playbook, environ: Mapping[str, str]) -> Runtime:
    """Build the runtime a playbook's `runtime.kind` names."""
    from migrator.runtime.process import ProcessRuntime

    spec = playbook.runtime
    if spec.kind == "process":
        log_path = playbook.logs.path if playbook.logs.kind == "file" and playbook.logs.path else spec.stdout_log
        return ProcessRuntime(
            argv=spec.argv,
            cwd=spec.cwd,
            pid_file=spec.pid_file,
            stdout_log=spec.stdout_log,
            metrics_url=playbook.milvus.health_url(),
            env=spec.env,
            log_path=log_path,
            inherited_env=dict(environ),
        )
    raise NotImplementedError(f"runtime kind {spec.kind}")  # pragma: no cover - the schema admits only known kinds
