"""The fleet playbook (playbooks/ansible): syntax, the plan -> canary -> batches order and its
stops (driven by a recording stand-in for milvus-migrate: no Milvus), and one real run against
localhost driving a sandbox Milvus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

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
        sys.stderr.write("rolled back\\n"); sys.exit(1)
    report = plan.parent / "report.json"; report.write_text(json.dumps({"host": host, "status": "done"}))
    print(json.dumps({"status": "done", "report_files": [str(report)]}))
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


def test_failure_in_a_batch_stops_later_batches(tmp_path: Path) -> None:
    inventory, calls = _fleet(tmp_path, {"h1": "ok", "h2": "FAIL", "h3": "ok", "h4": "ok", "h5": "ok"})
    result = _ansible(inventory, cwd=tmp_path)
    assert result.returncode != 0
    applied = {line.split()[1] for line in calls.read_text().splitlines() if line.startswith("apply")}
    assert applied == {"h1", "h2", "h3"}  # h2's batch finished; h4 and h5 never started


def _apply_exists() -> bool:
    tool = shutil.which("milvus-migrate", path=str(Path(sys.executable).parent))
    return tool is not None and subprocess.run([tool, "apply", "--help"], capture_output=True).returncode == 0


@pytest.mark.milvus
def test_real_rollout_on_localhost_sandbox(tmp_path: Path, fresh_sandbox) -> None:
    if not _apply_exists():
        pytest.skip("`milvus-migrate apply --help` fails: the plan/apply commands are not there yet")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[milvus]\nlocalhost ansible_connection=local "
        f"milvus_migrate_playbook={fresh_sandbox.playbook} milvus_migrate_work_dir={tmp_path / 'work'} "
        f"milvus_migrate_bin={Path(sys.executable).parent / 'milvus-migrate'} "
        f"milvus_migrate_reports_dir={tmp_path / 'reports'}\n")
    result = _ansible(inventory, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = list((tmp_path / "reports" / "localhost").glob("*.json"))
    fetched = [json.loads(p.read_text()) for p in reports if p.name != "plan.json"]
    assert fetched and fetched[0]["status"] == "done", [p.name for p in reports]
