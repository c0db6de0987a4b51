"""`writes deny|allow` against a real Milvus 2.3.5, judged by the test's own client: its inserts are
refused after `deny` and accepted (and seen by a Strong query) after `allow`. Also the live
progress display and JSON-only stderr on a real (dry) run."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.cli import main
from migrator.context import Environment
from migrator.errors import ExitCode
from migrator.migration.journal import Journal, RunStatus
from tests.support.cli import run_cli
from tests.support.plans import make_plan
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.milvus

OWN = "writes_check"  # the test's own collection: the seeded ones stay exactly as seeded


def own_playbook(sandbox: Sandbox, tmp_path: Path, *, config_dir: Path | None = None) -> Path:
    """The sandbox's playbook with a state dir (journal, lock) of this test's own."""
    text = sandbox.playbook.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^  state_dir: .*$", f"  state_dir: {tmp_path / 'state'}", text)
    if config_dir is not None:
        text = re.sub(r"(?m)^  dir: .*$", f"  dir: {config_dir}", text)
    playbook = tmp_path / "pb.yaml"
    playbook.write_text(text, encoding="utf-8")
    return playbook


@pytest.fixture
def client(milvus_sandbox: Sandbox) -> Iterator[object]:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=milvus_sandbox.uri)
    if client.has_collection(OWN):
        client.drop_collection(OWN)
    client.create_collection(OWN, dimension=2)
    try:
        yield client
    finally:
        client.drop_collection(OWN)  # DDL: allowed under a deny too
        client.close()


def insert(client: object, row_id: int) -> str | None:
    """None when Milvus accepted the insert, else its error."""
    try:
        client.insert(OWN, [{"id": row_id, "vector": [0.1, 0.2]}])
    except Exception as error:  # noqa: BLE001 - pymilvus raises MilvusException; the text is the judge
        return str(error)
    return None


def force_deny_in(config: Path) -> str:
    lines = config.read_text(encoding="utf-8").splitlines()
    at = lines.index("  limitWriting:")
    return next(line.strip() for line in lines[at:] if line.strip().startswith("forceDeny:"))


def test_deny_then_allow_proved_by_our_own_client(milvus_sandbox: Sandbox, client: object, tmp_path: Path) -> None:
    playbook = own_playbook(milvus_sandbox, tmp_path)
    config = milvus_sandbox.config_dir / "milvus.yaml"
    try:
        denied = run_cli(["writes", "deny", "-p", str(playbook), "--yes", "--output", "json"])
        assert denied.exit_code == 0, denied.stderr
        document = denied.json()
        assert document["ok"] is True and document["writes"] == "denied" and document["journal"] is None
        assert document["file"] == str(config) and force_deny_in(config) == "forceDeny: true"
        refusal = insert(client, 1)
        assert refusal is not None and "deactivated by the administrator" in refusal

        status = run_cli(["status", "-p", str(playbook)])
        assert status.exit_code == ExitCode.NOT_ROLLED_BACK and "writes are still denied" in status.stderr

        # A run is recorded now: the next change goes into its journal, and status shows it.
        plan = make_plan(tmp_path, config)
        Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z", plan=plan.to_dict()).set_status(RunStatus.DONE)
        allowed = run_cli(["writes", "allow", "-p", str(playbook), "--yes"])
        assert allowed.exit_code == 0, allowed.stderr
        assert "writes allowed: forceDeny in" in allowed.stdout and "a Strong query sees it" in allowed.stdout
        assert force_deny_in(config) == "forceDeny: false"
        assert insert(client, 2) is None
        assert client.query(OWN, filter="id == 2", output_fields=["id"], consistency_level="Strong") == [{"id": 2}]

        journal = json.loads((tmp_path / "state" / "journal.json").read_text())
        assert [(entry["action"], entry["file"], entry["during"]) for entry in journal["writes"]] == [
            ("allow", str(config), RunStatus.DONE)]
        status = run_cli(["--output", "json", "status", "-p", str(playbook)])
        assert status.exit_code == 0, status.stderr
        assert status.json()["writes"][0]["action"] == "allow" and status.json()["writes_denied"] is False
    finally:
        if force_deny_in(config) != "forceDeny: false":  # leave the shared sandbox writable
            run_cli(["config", "set", "--config-dir", str(milvus_sandbox.config_dir), "--version", "2.3.5",
                     "--set", "quotaAndLimits.limitWriting.forceDeny=false", "--write",
                     "--backup-dir", str(tmp_path / "kept")])


def test_writes_is_refused_when_milvus_ignores_force_deny(milvus_sandbox: Sandbox, tmp_path: Path) -> None:
    copy = tmp_path / "configs"
    copy.mkdir()
    text = (milvus_sandbox.config_dir / "milvus.yaml").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    at = lines.index("quotaAndLimits:\n") + 1
    lines[at] = re.sub(r"enabled: \w+", "enabled: false", lines[at])
    assert "enabled: false" in lines[at]
    (copy / "milvus.yaml").write_text("".join(lines), encoding="utf-8")
    before = (copy / "milvus.yaml").read_bytes()
    result = run_cli(["writes", "deny", "-p", str(own_playbook(milvus_sandbox, tmp_path, config_dir=copy)), "--yes"])
    assert result.exit_code == ExitCode.REFUSED
    assert "quotaAndLimits.enabled is not true" in result.stderr and "restart Milvus" in result.stderr
    assert (copy / "milvus.yaml").read_bytes() == before


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_dry_run_shows_live_progress_on_a_terminal_and_json_lines_only_when_asked(
        milvus_sandbox: Sandbox, tmp_path: Path) -> None:
    playbook = str(own_playbook(milvus_sandbox, tmp_path))
    env = Environment(stdout=io.StringIO(), stderr=Terminal(), stdin=None, environ={"TERM": "xterm"})
    assert main(["apply", "-p", playbook, "--dry-run"], environment=env) == 0, env.stderr.getvalue()
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", env.stderr.getvalue())
    assert re.search(r"\[1/\d+\] preflight: Milvus reachable.*\d+\.\d s", screen)  # the live line, ticking
    assert re.search(r"\+ \[(\d+)/\1\] [a-z-]+: would ", screen)  # the last step, done: checked, not run
    assert "\x1b[?25h" in env.stderr.getvalue()  # the cursor is back

    result = run_cli(["apply", "-p", playbook, "--dry-run", "--log-format", "json", "--output", "json"])
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    assert [e["step"] for e in events if e["event"] == "step.end"][:2] in (["preflight", "hold-compaction"],
                                                                            ["preflight", "stop"])
    assert result.json()["dry_run"] is True and result.json()["ok"] is True
    assert not (tmp_path / "state").exists()
