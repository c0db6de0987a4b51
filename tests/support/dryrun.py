"""A dry run's context with no Milvus: a real command runtime, real files, a plan of plain data."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from migrator.migration.journal import Journal
from migrator.migration.steps.base import RunContext
from migrator.playbook import Playbook
from migrator.runtime import runtime_for_playbook
from migrator.util.ports import free_ports
from tests.support.sandbox import quiet_env


def dry_context(tmp_path: Path, stop: list[str]) -> RunContext:
    config = tmp_path / "configs"
    config.mkdir(exist_ok=True)
    (config / "milvus.yaml").write_text("mq:\n  type: rocksmq\n")
    playbook = Playbook.model_validate({
        "version": 1, "name": "dry", "config": {"dir": str(config)},
        "milvus": {"uri": "http://127.0.0.1:1", "metrics_url": "http://127.0.0.1:1"},
        "runtime": {"kind": "command", "stop": stop, "start": ["/bin/sh", "-c", "exit 0"],
                    "logs": ["/bin/sh", "-c", "echo since {since}"]},
        "migration": {"state_dir": str(tmp_path / "state")},
    })
    plan = SimpleNamespace(source_mq="rocksmq", target_mq="natsmq", facts={},
                           changes={"mq.type": "natsmq", "natsmq.server.port": free_ports(1)[0]},
                           config_target=str(config / "milvus.yaml"), isolation_target=str(config / "milvus.yaml"),
                           gate={"kind": "isolation", "tool": None, "why": "the test's plan isolates"})
    recorded = {"playbook_path": "dry.yaml", "milvus_version": "v2.3.5", "source_mq": "rocksmq", "target_mq": "natsmq",
                "snapshot": {"collections": []}}
    journal = Journal.create(tmp_path / "journal.json", run_id="20261206T000000Z", plan=recorded, dry_run=True)
    return RunContext(env=quiet_env(), playbook=playbook, plan=plan, journal=journal,
                      runtime=runtime_for_playbook(playbook, {}), milvus_environ={}, dry_run=True)
