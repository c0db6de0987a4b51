"""The fleet playbook (playbooks/ansible): syntax, the plan -> canary -> batches order and its
stops (driven by a recording stand-in for milvus-migrate: no Milvus), one real run against
localhost driving a sandbox Milvus, and a real fleet of three sandboxes whose canary fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.sandbox import Sandbox, start_sandbox, stop_sandbox

SITE = REPO / "playbooks" / "ansible" / "site.yml"
ANSIBLE = Path(sys.executable).parent / "ansible-playbook"

pytestmark = pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible-core is not installed (pip install -e .[dev])")

# Records each call as "<verb> <host>"; a host's playbook containing REFUSE makes plan exit 3,
# FAIL makes apply exit 1. The host is the playbook's (plan) or work dir's (apply) name.
RECORDER = """\
import json, sys
from pathlib import Path
args = sys.argv[1:]
log = Path(sys.argv[0]).parent / "calls.log"
if "plan" in args:
    playbook = Path(args[args.index("--playbook") + 1])
    host = playbook.stem
    with log.open("a") as f: f.write(f"plan {host}\\n")
    if "REFUSE" in playbook.read_text():
        sys.stderr.write("refused: MQ_TYPE set in the unit\\n"); sys.exit(3)
    out = Path(args[args.index("--out") + 1]); out.write_text(json.dumps({"playbook": str(playbook)}))
    print("{}")
elif "apply" in args:
    plan = Path(args[args.index("apply") + 1])
    host = Path(json.loads(plan.read_text())["playbook"]).stem
    with log.open("a") as f: f.write(f"apply {host}\\n")
    if "FAIL" in Path(json.loads(plan.read_text())["playbook"]).read_text():
        (plan.parent / "reports").mkdir(exist_ok=True)
        (plan.parent / "reports" / "run-1.json").write_text(json.dumps({"host": host, "status": "rolled-back"}))
        sys.stderr.write("rolled back\\n"); sys.exit(1)
    report = plan.parent / "report.json"; report.write_text(json.dumps({"host": host, "status": "done"}))
    print(json.dumps({"status": "done", "report_files": [str(report)]}))
elif "status" in args:  # the journal beside <work dir>/reports/<run_id>.json, like the real tool's
    playbook = Path(args[args.index("--playbook") + 1])
    work = Path(sys.argv[0]).parent.parent / "work" / playbook.stem
    print(json.dumps({"journal": str(work / "journal.json"), "run_id": "run-1"}))
"""


def _ansible(inventory: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(cwd / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    # serial is decided before any host's vars exist: the batch size must be an extra var.
    return subprocess.run([str(ANSIBLE), "-i", str(inventory), str(SITE), "-e", "milvus_migrate_batch=2", *extra],
                          cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_syntax_check(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[milvus]\nlocalhost ansible_connection=local\n")
    result = _ansible(inventory, "--syntax-check", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    result = _ansible(REPO / "playbooks" / "ansible" / "inventory.example.ini", "--syntax-check", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _fleet(tmp_path: Path, contents: dict[str, str]) -> tuple[Path, Path]:
    """Hosts h1..hN, all local, each with its own playbook and work dir; a recording milvus-migrate."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "milvus-migrate"
    tool.write_text(f"#!{sys.executable}\n{RECORDER}")
    tool.chmod(0o755)
    lines = ["[milvus]"]
    for host, text in contents.items():
        playbook = tmp_path / f"{host}.yaml"
        playbook.write_text(text)
        lines.append(f"{host} ansible_connection=local milvus_migrate_playbook={playbook} "
                     f"milvus_migrate_work_dir={tmp_path / 'work' / host}")
    lines += ["[milvus:vars]", f"milvus_migrate_bin={tool}",
              f"milvus_migrate_reports_dir={tmp_path / 'reports'}"]
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("\n".join(lines) + "\n")
    return inventory, bin_dir / "calls.log"


def test_plan_everywhere_then_canary_then_batches(tmp_path: Path) -> None:
    inventory, calls = _fleet(tmp_path, {f"h{i}": "ok" for i in range(1, 6)})
    result = _ansible(inventory, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = calls.read_text().splitlines()
    assert sorted(lines[:5]) == [f"plan h{i}" for i in range(1, 6)]
    assert lines[5] == "apply h1"  # the canary, alone
    assert sorted(lines[6:8]) == ["apply h2", "apply h3"] and sorted(lines[8:]) == ["apply h4", "apply h5"]
    for i in range(1, 6):
        assert json.loads((tmp_path / "reports" / f"h{i}" / "report.json").read_text())["host"] == f"h{i}"
        assert (tmp_path / "reports" / f"h{i}" / "plan.json").exists()


def test_one_refusal_stops_everything(tmp_path: Path) -> None:
    inventory, calls = _fleet(tmp_path, {"h1": "ok", "h2": "ok", "h3": "REFUSE"})
    result = _ansible(inventory, cwd=tmp_path)
    assert result.returncode != 0
    assert "refused by preflight on h3" in result.stdout
    assert not any(line.startswith("apply") for line in calls.read_text().splitlines())


def test_failed_canary_stops_the_rollout(tmp_path: Path) -> None:
    inventory, calls = _fleet(tmp_path, {"h1": "FAIL", "h2": "ok", "h3": "ok"})
    result = _ansible(inventory, cwd=tmp_path)
    assert result.returncode != 0
    assert [line for line in calls.read_text().splitlines() if line.startswith("apply")] == ["apply h1"]
    assert "rolled back" in (tmp_path / "reports" / "h1" / "apply-failed.txt").read_text()
    # The failed run's own report is fetched too.
    assert json.loads((tmp_path / "reports" / "h1" / "run-1.json").read_text())["status"] == "rolled-back"


def test_failure_in_a_batch_stops_later_batches(tmp_path: Path) -> None:
    inventory, calls = _fleet(tmp_path, {"h1": "ok", "h2": "FAIL", "h3": "ok", "h4": "ok", "h5": "ok"})
    result = _ansible(inventory, cwd=tmp_path)
    assert result.returncode != 0
    applied = {line.split()[1] for line in calls.read_text().splitlines() if line.startswith("apply")}
    assert applied == {"h1", "h2", "h3"}  # h2's batch finished; h4 and h5 never started


# milvus-migrate as a host runs it; with `hold_port`, the NATS port Milvus will need is taken on
# the host for as long as `apply` runs: the switch to NATS fails for real (Milvus exits at start).
TOOL = """\
import os, socket, subprocess, sys
held = None
if "apply" in sys.argv[1:] and {hold_port}:
    held = socket.socket()
    held.bind(("127.0.0.1", {hold_port}))
    held.listen()
env = {{**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [{repo!r}, os.environ.get("PYTHONPATH")]))}}
sys.exit(subprocess.call([sys.executable, "-m", "migrator", *sys.argv[1:]], env=env))
"""


def _tool(path: Path, hold_port: int = 0) -> Path:
    path.write_text(f"#!{sys.executable}\n" + TOOL.format(hold_port=hold_port, repo=str(REPO)))
    path.chmod(0o755)
    return path


@pytest.mark.milvus
def test_real_rollout_on_localhost_sandbox(tmp_path: Path, fresh_sandbox) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[milvus]\nlocalhost ansible_connection=local "
        f"milvus_migrate_playbook={fresh_sandbox.playbook} milvus_migrate_work_dir={tmp_path / 'work'} "
        f"milvus_migrate_bin={_tool(tmp_path / 'milvus-migrate')} "
        f"milvus_migrate_reports_dir={tmp_path / 'reports'}\n")
    result = _ansible(inventory, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = list((tmp_path / "reports" / "localhost").glob("*.json"))
    fetched = [json.loads(p.read_text()) for p in reports if p.name != "plan.json"]
    assert fetched and fetched[0]["status"] == "done", [p.name for p in reports]


@pytest.fixture
def three_sandboxes(tmp_path: Path) -> Iterator[list[Sandbox]]:
    """Three hosts' worth of Milvus on this machine, each seeded with a little data."""
    from tests.containers import checks

    roots = [tmp_path / f"h{number}" for number in (1, 2, 3)]
    try:
        sandboxes = [start_sandbox(root) for root in roots]
        for sandbox in sandboxes:
            checks.seed(sandbox.uri)
        yield sandboxes
    finally:
        for root in roots:
            stop_sandbox(root)


@pytest.mark.milvus
def test_a_failed_canary_stops_a_real_fleet_and_leaves_the_others_untouched(tmp_path: Path, three_sandboxes) -> None:
    """Three sandboxes, an inventory of three local hosts: plan everywhere, then the canary (h1),
    whose switch to NATS fails for real (its NATS port is taken) and is rolled back; the batch
    of h2 and h3 never starts. Judged by each Milvus's own log, config bytes and a client's writes."""
    from tests.containers import checks

    before = {}
    for sandbox in three_sandboxes:
        milvus_yaml = sandbox.config_dir / "milvus.yaml"
        log = sandbox.dir / "logs" / "stdout.log"
        before[sandbox.dir.name] = (milvus_yaml.read_bytes(), log.stat().st_size, checks.counts(sandbox.uri))
    lines = ["[milvus]"]
    for sandbox in three_sandboxes:
        host = sandbox.dir.name
        tool = _tool(tmp_path / f"milvus-migrate-{host}", sandbox.ports["nats"] if host == "h1" else 0)
        lines.append(f"{host} ansible_connection=local milvus_migrate_playbook={sandbox.playbook} "
                     f"milvus_migrate_work_dir={tmp_path / 'work' / host} milvus_migrate_bin={tool}")
    lines += ["[milvus:vars]", f"milvus_migrate_reports_dir={tmp_path / 'reports'}"]
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("\n".join(lines) + "\n")

    result = _ansible(inventory, cwd=tmp_path)
    assert result.returncode != 0
    assert "apply failed on h1 (exit 1; 1 = rolled back" in result.stdout, result.stdout[-3000:]

    reports = tmp_path / "reports"
    [report] = [json.loads(p.read_text()) for p in (reports / "h1").glob("*.json") if p.name != "plan.json"]
    assert report["status"] == "rolled-back" and report["target_mq"] == "natsmq"
    assert (reports / "h1" / f"{report['run_id']}.md").exists()
    assert "exit: 1" in (reports / "h1" / "apply-failed.txt").read_text()
    for sandbox in three_sandboxes:
        host = sandbox.dir.name
        config, offset, rows = before[host]
        assert (reports / host / "plan.json").exists()  # every host planned, its plan kept
        assert (sandbox.config_dir / "milvus.yaml").read_bytes() == config, host  # h1: the original is back
        since = (sandbox.dir / "logs" / "stdout.log").read_bytes()[offset:].decode("utf-8", "replace")
        if host == "h1":
            # The failed start on NATS, then RocksMQ again (the rollback); behind port isolation (no
            # nft/iptables) an isolated restart on RocksMQ comes first, behind the firewall gate none.
            runs = checks.mq_runs(since)
            assert runs[-2:] == ["natsmq", "rocksmq"] and set(runs[:-2]) <= {"rocksmq"}, runs
        else:
            assert checks.mq_types(since) == [], host  # never restarted: still the RocksMQ it started on
            assert [p.name for p in (reports / host).glob("*.json")] == ["plan.json"], host  # never applied
        assert checks.counts(sandbox.uri) == rows, host
        assert checks.insert_accepted(sandbox.uri, 1_000_000), host  # writes allowed everywhere
