"""How Milvus is stopped, started and checked, per deployment shape."""

from __future__ import annotations

from collections.abc import Mapping

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
            variables=spec.env,
            log_path=log_path,
            inherited_environ=dict(environ),
        )
    metrics_url = playbook.milvus.health_url()
    if spec.kind == "systemd":
        from migrator.runtime.systemd import SystemdRuntime

        return SystemdRuntime(unit=spec.unit, metrics_url=metrics_url, timeout_s=spec.command_timeout_s)
    if spec.kind == "compose":
        from migrator.runtime.compose import ComposeRuntime, compose_on_path

        return ComposeRuntime(file=spec.file, service=spec.service, metrics_url=metrics_url,
                              environ=dict(environ), engine=compose_on_path(spec.engine),
                              timeout_s=spec.command_timeout_s)
    if spec.kind == "docker":
        from migrator.runtime.containers import engine_on_path
        from migrator.runtime.docker import DockerRuntime

        return DockerRuntime(container=spec.container, metrics_url=metrics_url, engine=engine_on_path(spec.engine),
                             timeout_s=spec.command_timeout_s)
    if spec.kind == "command":
        from migrator.runtime.command import CommandRuntime

        return CommandRuntime(stop_argv=spec.stop, start_argv=spec.start, logs_argv=spec.logs,
                              running_argv=spec.running, metrics_url=metrics_url,
                              declared_env=playbook.declared_environment(),
                              timeout_s=spec.command_timeout_s)
    if spec.kind == "kubernetes":
        from migrator.errors import Refused

        # Helm/the operator restart the pod: plan and apply take their own path (the change and
        # its commands, migration/kubernetes.py); nothing else can drive the pod.
        raise Refused("runtime kind kubernetes: Milvus is stopped and started by Helm or the operator, "
                      "not by this tool",
                      hint="`milvus-migrate plan`/`apply` emit (or run) the values/CR change and its commands; "
                           "`plan --to rocksmq` gives the way back (docs/deployments/kubernetes.md)")
    raise NotImplementedError(f"runtime kind {spec.kind}")  # pragma: no cover - the schema admits only known kinds
