"""`rehearse` on a seeded sandbox standing for production: the copy is migrated and measured, and
production is only read. Judged by the test's own means: its own clients and ledger, file hashes,
its own etcd reads, /proc. The rehearsal is also SIGKILLed at a random moment: the next run
removes what it left, and production never noticed."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrator.milvus.client import MilvusAdapter
from migrator.runtime import firewall
from migrator.sandbox.seed import SEED
from migrator.verbs import sandbox as lifecycle
from tests.support.cli import run_cli
from tests.support.etcd import etcd_range
from tests.support.ledger import LedgerWriter, judge
from tests.support.sandbox import Sandbox, quiet_env

pytestmark = pytest.mark.milvus

EXPECTED = {f"{s.database}.{s.name}": s.expected_rows for s in SEED}


def production_state(sandbox: Sandbox) -> dict:
    """What must not change: config bytes, the process and the MQ it logged, seed counts, SST
    contents, etcd's collection metadata and sessions."""
    status = lifecycle.status(quiet_env(), sandbox.dir)
    with MilvusAdapter.connect(sandbox.uri, timeout=60) as milvus:
        counts = {c.key: c.rows for c in milvus.snapshot(deadline_s=180).collections if c.key in EXPECTED}
    rocksmq = {name: hashlib.sha256((sandbox.rocksmq_path / name).read_bytes()).hexdigest()
               for name in os.listdir(sandbox.rocksmq_path) if name.endswith(".sst")}
    storage = sandbox.dir / "data" / "storage"
    segment_files = {str(path.relative_to(storage)) for path in storage.rglob("*") if path.is_file()}
    endpoint = f"127.0.0.1:{sandbox.ports['etcd_client']}"
    keys = etcd_range(endpoint, "by-dev/")
    return {
        "config": (sandbox.config_dir / "milvus.yaml").read_bytes(),
        "pid": status.pid, "mq": (status.mq_config, status.mq_log), "counts": counts, "ssts": rocksmq,
        "rocksmq_names": sorted(os.listdir(sandbox.rocksmq_path)), "segment_files": segment_files,
        "meta": {k: v for k, v in keys.items() if "/root-coord/" in k or "/session/" in k},
        "keys": set(keys),
    }


def owner_id(path: str) -> str:
    """The segment (binlogs: `<kind>_log/<collection>/<partition>/<segment>/...`) or index build
    (`index_files/<build>/...`) a segment file belongs to."""
    parts = path.split("/")
    return parts[1] if parts[0] == "index_files" else parts[3]


def assert_untouched(before: dict, after: dict) -> None:
    assert after["config"] == before["config"]
    assert after["pid"] == before["pid"], "production was restarted"
    assert after["mq"] == ("rocksmq", "rocksmq")
    assert after["counts"] == before["counts"] == EXPECTED
    for name, digest in before["ssts"].items():  # SSTs are immutable: one that is still there is identical
        if name in after["ssts"]:
            assert after["ssts"][name] == digest, name
    foreign = set(after["rocksmq_names"]) - set(before["rocksmq_names"])
    assert all(name.endswith((".sst", ".log")) or name.startswith(("MANIFEST-", "OPTIONS-")) for name in foreign), foreign
    assert after["meta"] == before["meta"], "collection metadata or sessions changed in production's etcd"
    gone = {key for key in before["keys"] - after["keys"] if "/datacoord-meta/" not in key}
    assert not gone, gone
    # New segment files are production's own (its flushes, compactions and index builds go on):
    # each belongs to a segment or an index build production's etcd knows. One of the copy's would
    # carry an id only the copy's etcd knows.
    known = {part for key in after["keys"] for part in key.split("/")}
    foreign = sorted(path for path in after["segment_files"] - before["segment_files"] if owner_id(path) not in known)
    assert not foreign, foreign[:5]


def processes_in(directory: Path) -> list[int]:
    """Processes whose working directory or command line is inside `directory`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(directory)) or str(directory) in cmdline:
            found.append(int(entry))
    return found


def test_rehearse_migrates_a_copy_and_leaves_production_untouched(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    writer = LedgerWriter(fresh_sandbox.uri, "ledger_rehearse", interval_s=0.2)
    writer.create_collection()
    before = production_state(fresh_sandbox)
    writer.start()
    copy_dir = tmp_path / "copy"
    try:
        result = run_cli(["--output", "json", "rehearse", "-p", str(fresh_sandbox.playbook), "--dir", str(copy_dir)])
    finally:
        writer.stop()
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = result.json()
    assert report["status"] == "rehearsed"
    measured = report["measured"]
    assert measured["write_downtime_s"] > 1.0  # the copy's clients were cut off for real
    assert measured["acknowledged_missing_count"] == 0
    assert report["estimate"]["write_downtime_s"] > 0
    assert [step["state"] for step in report["steps"]] == ["done"] * len(report["steps"])
    # Production took writes throughout, and lost none.
    verdict = judge(fresh_sandbox.uri, writer)
    assert verdict.ok, str(verdict)
    assert not verdict.refused, f"production refused writes during the rehearsal: {verdict.refused}"
    assert_untouched(before, production_state(fresh_sandbox))
    assert not copy_dir.exists()
    assert processes_in(copy_dir) == []


def test_a_killed_rehearsal_is_cleaned_up_by_the_next_one(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    before = production_state(fresh_sandbox)
    tables_before = set(firewall.leftover_tables())
    copy_dir = tmp_path / "copy"
    seed = int(os.environ.get("REHEARSE_KILL_SEED") or random.randrange(1 << 30))  # to replay a failure
    moment = random.Random(seed).uniform(2.0, 45.0)
    process = subprocess.Popen([sys.executable, "-m", "migrator", "rehearse", "-p", str(fresh_sandbox.playbook),
                                "--dir", str(copy_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(moment)
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = copy_dir.exists()
    result = run_cli(["--output", "json", "rehearse", "-p", str(fresh_sandbox.playbook), "--dir", str(copy_dir)])
    context = f"killed after {moment:.1f} s (seed {seed}); copy left: {left}"
    assert result.exit_code == 0, context + result.stdout[-3000:] + result.stderr[-3000:]
    report = result.json()
    if left:
        assert "removed_leftover_copy" in report, context
    assert not copy_dir.exists(), context
    assert processes_in(copy_dir) == [], context
    # Killed with the copy's gate closed, it left an nft table: the next rehearsal removed it.
    assert set(firewall.leftover_tables()) <= tables_before, context
    assert_untouched(before, production_state(fresh_sandbox))
