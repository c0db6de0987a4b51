"""Deliberate breakages of the checks that keep data safe, each with the fast tests that must catch it.

    .venv/bin/python scripts/mutations.py            # every mutation; a table of killed/survived
    .venv/bin/python scripts/mutations.py NAME ...   # only these
    .venv/bin/python scripts/mutations.py --list     # the mutations and their tests

Each mutation replaces one exact snippet of one file in a copy of the tree (never this working tree)
and runs the tests named for it there: a failing test kills it. Before that, the named tests run
on an unmutated copy and must pass. A snippet found zero times or more than once makes the entry
`stale`: the code moved on and the entry must follow it. Adding a mutation is one entry in
MUTATIONS. The tests run for real on this machine: a mutation that removes a guard around real
paths must be paired with tests that only ever point the tool at temporary ones.
Exit status: 0 when every mutation was killed, 1 otherwise. docs/testing.md has the last table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the repository root
    original: str  # must occur exactly once in the file
    mutated: str
    tests: tuple[str, ...]  # pytest node ids or files that must fail once it is applied
    breaks: str  # what the mutation does to the tool, in words


MUTATIONS: list[Mutation] = [
    Mutation(
        "isolation-keeps-the-client-port", "migrator/migration/configstates.py",
        "    return {PROXY_PORT: private_port, PROXY_HTTP: False}",
        "    return {PROXY_HTTP: False}",
        ("tests/unit/migration/test_configstates.py",),
        "an isolated start leaves clients their port",
    ),
    Mutation(
        "running-step-counts-as-done", "migrator/migration/journal.py",
        "        return entry is not None and entry.state == StepState.DONE",
        "        return entry is not None and entry.state in (StepState.DONE, StepState.RUNNING)",
        ("tests/unit/migration/test_engine.py::test_a_step_cut_off_by_kill_9_runs_again_on_resume",),
        "a step cut off by kill -9 is skipped on resume",
    ),
    Mutation(
        "changed-means-finished", "migrator/migration/engine.py",
        "    changed = any(ctx.journal.started(s.id) for s in steps if s.side_effects)",
        "    changed = any(ctx.journal.is_done(s.id) for s in steps if s.side_effects)",
        ("tests/unit/migration/test_engine.py::test_a_first_stop_that_fails_half_way_is_a_change_and_is_rolled_back",),
        'a half-done first stop reports "nothing changed" and is not rolled back',
    ),
    Mutation(
        "dry-run-under-the-budget", "migrator/migration/engine.py",
        "    budget = None if ctx.dry_run else budget_for(",
        "    budget = budget_for(",
        ("tests/unit/migration/test_budget.py::test_a_dry_run_has_no_budget",),
        "a dry run is cut short by a write-downtime budget it does not spend",
    ),
    Mutation(
        "config-written-in-place", "migrator/config/write.py",
        "        os.replace(temp_name, target)\n",
        '        __import__("shutil").copyfile(temp_name, target)\n        os.unlink(temp_name)\n',
        ("tests/unit/config/test_write.py::test_a_reader_of_the_old_file_reads_all_of_it_and_the_path_gets_a_new_inode",),
        "the config file is rewritten through its inode (copy, unlink): a reader can see half of it",
    ),
    Mutation(
        "edit-not-read-back", "migrator/config/edit.py",
        "    _verify(document, current, changes)\n",
        "    pass  # not verified\n",
        ("tests/unit/config/test_edit.py::test_an_edit_that_went_wrong_is_refused_and_nothing_is_written",),
        "a config edit that went wrong is written",
    ),
    Mutation(
        "clean-up-ignores-files-not-in-the-backup", "migrator/rocksmq/cleanup.py",
        '        problems += [f"{name} is not in the backup" for name in sorted(live - backed)]\n',
        "",
        ("tests/unit/rocksmq/test_backup.py::test_clean_refuses_when_a_live_file_is_not_in_the_backup",),
        "rocksmq.path is deleted though a live file is in no backup",
    ),
    Mutation(
        "clean-up-reads-a-mark-nobody-writes", "migrator/migration/steps/clean_up.py",
        "    cut_off_at = ctx.journal.marks.clients_off_at",
        "    cut_off_at = ctx.journal.marks.rollback_started_at",
        ("tests/unit/migration/test_backup_steps.py",),
        "clean-up no longer knows when clients were cut off (the old deny_at bug)",
    ),
    Mutation(
        "clean-up-takes-any-backup", "migrator/migration/steps/clean_up.py",
        "config_dir=ctx.playbook.config.dir, not_before=cut_off_at)",
        "config_dir=ctx.playbook.config.dir, not_before=None)",
        ("tests/unit/migration/test_backup_steps.py",),
        "a backup started before clients were cut off authorises the clean-up",
    ),
    Mutation(
        "backup-needs-no-room", "migrator/migration/preflight.py",
        '    needed = int(rocksmq_facts.get("bytes_on_disk", 0))',
        "    needed = 0",
        ("tests/unit/migration/test_backup_room.py",),
        "a plan accepts a backup dir too small for the backup",
    ),
    Mutation(
        "log-mark-an-hour-early", "migrator/runtime/base.py",
        '    return {"since": now.isoformat(timespec="microseconds"),',
        '    return {"since": (now - __import__("datetime").timedelta(hours=1)).isoformat(timespec="microseconds"),',
        ("tests/unit/runtime/test_command.py::test_the_mark_is_the_moment_it_was_taken",),
        "log lines of the hour before a start can pass for proof of it",
    ),
    Mutation(
        "redaction-drops-list-items", "migrator/util/redact.py",
        "        return [redact(v) for v in value]",
        "        return [redact(v) for v in value if v is not None]",
        ("tests/unit/util/test_redact.py::test_redact_keeps_the_shape_of_any_document",),
        "a redacted document loses items of its lists",
    ),
    Mutation(
        "refused-address-retried", "migrator/milvus/client.py",
        "                refused = refused_address(self.uri) if self.alive is None else None",
        "                refused = None",
        ("tests/unit/milvus/test_client.py::test_an_address_nobody_serves_fails_at_once_without_alive",),
        "a client of an address nobody serves waits out its whole timeout",
    ),
    Mutation(
        "fewer-rows-after-accepted", "migrator/migration/steps/verify.py",
        "        elif rows != facts.rows:",
        "        elif rows > facts.rows:",
        ("tests/unit/migration/test_switch_checks.py::test_fewer_rows_after_is_a_mismatch_as_much_as_more",),
        "verify accepts a collection with fewer rows after the switch",
    ),
    Mutation(
        "unmoved-checkpoint-accepted", "migrator/migration/steps/verify.py",
        "        if checkpoint.timestamp <= old_ts:",
        "        if checkpoint.timestamp < old_ts:",
        ("tests/unit/migration/test_switch_checks.py",),
        "a channel checkpoint left where it was before the switch passes for a position of the new MQ",
    ),
    Mutation(
        "stored-below-counted-accepted", "migrator/migration/steps/flush_all.py",
        "            for facts, rows in zip(counted, stored, strict=True) if rows < facts.rows]",
        "            for facts, rows in zip(counted, stored, strict=True) if False]",
        ("tests/unit/migration/test_switch_checks.py",),
        "a FlushAll that stored fewer rows than a Strong count saw passes (isolation gate)",
    ),
    Mutation(
        "datanode-wait-skipped", "migrator/migration/steps/flush_all.py",
        "        if not behind:\n",
        "        if True:\n",
        ("tests/unit/migration/test_flush_wait.py",),
        "FlushAll is sent before the datanode caught up with its channels (a replayed segment dropped)",
    ),
    Mutation(
        "a-write-after-the-flush-passes", "migrator/migration/drained.py",
        "        if recorded is None or head.timestamp > recorded.timestamp:",
        "        if recorded is None:",
        ("tests/unit/migration/test_drained.py",),
        "the drained check lets a write acknowledged after the FlushAll be switched away",
    ),
    Mutation(
        "nats-blocks-not-read", "migrator/milvus/nats_store.py",
        "            if not sequence & _SEQUENCE_FLAGS and sequence > after_sequence:",
        "            if False:",
        ("tests/unit/migration/test_drained.py",),
        "a stopped NATS store is taken as drained without reading its messages",
    ),
    Mutation(
        "journal-gate-name-unchecked", "migrator/runtime/firewall.py",
        "        if not isinstance(name, str) or not _NAME.match(name):",
        "        if not isinstance(name, str):",
        ("tests/unit/runtime/test_firewall.py",),
        "a rule name from the journal reaches nft unchecked",
    ),
    Mutation(
        "compaction-not-held", "migrator/migration/configstates.py",
        "    return {AUTO_COMPACTION: False}",
        "    return {}",
        ("tests/unit/migration/test_configstates.py",),
        "stored-row counts are compared while compaction may drop deleted rows from them",
    ),
    Mutation(
        "firewall-rollback-ignores-a-half-opened-gate", "migrator/migration/steps/pipeline.py",
        '    if journal.started("open-gate"):',
        '    if journal.is_done("open-gate"):',
        ("tests/unit/migration/test_gate_pipeline.py",),
        "a rollback after a gate opening cut off half-way leaves the target without flushing what clients wrote",
    ),
    Mutation(
        "isolation-rollback-ignores-a-half-done-public-start", "migrator/migration/steps/pipeline.py",
        '    if journal.started("public-start"):',
        '    if journal.is_done("public-start"):',
        ("tests/unit/migration/test_gate_pipeline.py",),
        "behind port isolation, a rollback after a public start cut off half-way leaves the target unflushed",
    ),
]


@dataclass
class Outcome:
    mutation: Mutation
    result: str  # killed, survived, stale, error, timeout
    seconds: float
    detail: str = ""


def tree_files(root: Path) -> list[str]:
    """The files of the working tree that git tracks or would track (uncommitted work included)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=root, capture_output=True, check=True).stdout.decode()
    return [name for name in listed.split("\0") if name and os.path.lexists(root / name)]


def copy_tree(root: Path, files: list[str], into: Path) -> None:
    for name in files:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target, follow_symlinks=False)


def run_tests(copy: Path, tests: tuple[str, ...], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """pytest in the copy, importing the copy's `migrator` (and so do the processes its tests start)."""
    environ = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           *tests], cwd=copy, env=environ, capture_output=True, text=True, timeout=timeout_s)


def imports_the_copy(copy: Path) -> bool:
    environ = {**os.environ, "PYTHONPATH": str(copy)}
    shown = subprocess.run([sys.executable, "-c", "import migrator; print(migrator.__file__)"], cwd=copy,
                           env=environ, capture_output=True, text=True).stdout.strip()
    return Path(shown).resolve().is_relative_to(copy.resolve())


def try_mutation(mutation: Mutation, files: list[str], timeout_s: float) -> Outcome:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutation-{mutation.name}-") as temp:
        copy = Path(temp)
        copy_tree(REPO, files, copy)
        target = copy / mutation.path
        text = target.read_text(encoding="utf-8") if target.is_file() else ""
        found = text.count(mutation.original)
        if found != 1:
            return Outcome(mutation, "stale", 0.0, f"the original snippet occurs {found} times in {mutation.path}")
        target.write_text(text.replace(mutation.original, mutation.mutated), encoding="utf-8")
        try:
            ran = run_tests(copy, mutation.tests, timeout_s)
        except subprocess.TimeoutExpired:
            return Outcome(mutation, "timeout", time.monotonic() - started, f"no verdict within {timeout_s:.0f} s")
    seconds = time.monotonic() - started
    last = (ran.stdout.strip().splitlines() or [""])[-1]
    # pytest: 0 all passed, 1 some failed; anything else (collection error, no test found) is no verdict.
    result = {0: "survived", 1: "killed"}.get(ran.returncode, "error")
    return Outcome(mutation, result, seconds, last if result != "error" else (ran.stdout + ran.stderr)[-800:])


def baseline(files: list[str], mutations: list[Mutation], timeout_s: float) -> str | None:
    """Why the named tests cannot judge (they fail unmutated, or the copy imports another tree), or None."""
    tests = tuple(dict.fromkeys(test for mutation in mutations for test in mutation.tests))
    with tempfile.TemporaryDirectory(prefix="mutation-baseline-") as temp:
        copy = Path(temp)
        copy_tree(REPO, files, copy)
        if not imports_the_copy(copy):
            return f"python in {copy} does not import the copy's migrator (check PYTHONPATH and the install)"
        ran = run_tests(copy, tests, timeout_s)
    if ran.returncode != 0:
        return "the named tests fail on the unmutated tree:\n" + (ran.stdout + ran.stderr)[-3000:]
    return None


def table(outcomes: list[Outcome]) -> str:
    rows = ["| mutation | file | what it breaks | killed by | result |", "|---|---|---|---|---|"]
    for outcome in outcomes:
        mutation = outcome.mutation
        tests = "<br>".join(f"`{test.removeprefix('tests/')}`" for test in mutation.tests)
        rows.append(f"| {mutation.name} | `{mutation.path}` | {mutation.breaks} | {tests} | {outcome.result} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="run only these mutations")
    parser.add_argument("--list", action="store_true", help="list the mutations and their tests")
    parser.add_argument("--jobs", type=int, default=1, help="mutations at a time (default 1: the machine is shared)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for one mutation's tests")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    unknown = sorted(set(args.names) - {m.name for m in MUTATIONS})
    if unknown:
        parser.error(f"no mutation named {', '.join(unknown)} (see --list)")
    if args.list:
        for mutation in chosen:
            print(f"{mutation.name}: {mutation.path}: {mutation.breaks}\n    " + "\n    ".join(mutation.tests))
        return 0
    files = tree_files(REPO)
    problem = baseline(files, chosen, args.timeout)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max(args.jobs, 1)) as pool:
        for outcome in pool.map(lambda m: try_mutation(m, files, args.timeout), chosen):
            outcomes.append(outcome)
            print(f"{outcome.result:>8}  {outcome.mutation.name} ({outcome.seconds:.0f} s) {outcome.detail}",
                  file=sys.stderr, flush=True)
    print(table(outcomes))
    return 0 if all(outcome.result == "killed" for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
