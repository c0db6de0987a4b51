"""The lead's plan/apply engine driving Milvus through the systemd runtime: a real Milvus 2.3.5
behind stand-in systemctl/journalctl (tests/standins), migrated RocksMQ -> NATS, the switch
proven from the journal stand-in, every row still there."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from migrator.milvus.client import MilvusAdapter
from migrator.verbs import sandbox as lifecycle
from tests.standins import standins_on_path
from tests.support.cli import run_cli
from tests.support.sandbox import Sandbox, quiet_env

pytestmark = pytest.mark.milvus


def _systemd_playbook(sandbox: Sandbox, path: Path) -> Path:
    yaml = YAML()
    document = yaml.load(sandbox.playbook.read_text())
    document["name"] = "sandbox-under-systemd"
    document["runtime"] = {"kind": "systemd", "unit": "milvus.service"}
    document["logs"] = {"kind": "runtime"}
    # As the sandbox's own playbook does (stop_timeout_s: 2): a graceful stop of 2.3.5 on RocksMQ with
    # loaded collections hangs, and the default 30 s deadline would be spent twice per run.
    document["migration"]["deadlines"] = {"stop_s": 3}
    with path.open("w") as out:
        yaml.dump(document, out)
    return path


def test_apply_through_systemd_runtime(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    with MilvusAdapter.connect(fresh_sandbox.uri) as milvus:
        before = {c.key: c.rows for c in milvus.snapshot().collections}
    with standins_on_path(tmp_path / "standin", fresh_sandbox.dir) as standins:
        (standins.home / "units" / "milvus.service").write_text("[Service]\nRestart=always\n")
        playbook = _systemd_playbook(fresh_sandbox, tmp_path / "systemd.yaml")
        plan_file = tmp_path / "plan.json"
        planned = run_cli(["plan", "--playbook", str(playbook), "--out", str(plan_file)])
        assert planned.exit_code == 0, planned.stdout + planned.stderr
        applied = run_cli(["--output", "json", "apply", str(plan_file), "--yes"])
        assert applied.exit_code == 0, applied.stdout + applied.stderr
        assert applied.json()["status"] == "done"
    status = lifecycle.status(quiet_env(), fresh_sandbox.dir)
    assert (status.mq_config, status.mq_log) == ("natsmq", "natsmq")
    with MilvusAdapter.connect(fresh_sandbox.uri) as milvus:
        assert {c.key: c.rows for c in milvus.snapshot().collections} == before
