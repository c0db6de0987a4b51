"""The version matrix: the round trip RocksMQ -> NATS -> RocksMQ, live, on each Milvus 2.3.x wheel
release, and the refusal of 2.2.16; the table goes into docs/compatibility.md.

    make matrix                                        # every version, then the doc is rewritten
    .venv/bin/python benchmarks/matrix.py --versions 2.3.0,2.3.5 --out /tmp/matrix.md   # some, elsewhere

Slow (a few minutes a version, and a 100 MB wheel download the first time): not part of `make test`.
Each release runs in a sandbox of its own (`sandbox up --version V`), seeded, migrated with the CLI
both ways; the counts are read back with a client of this script's own after each migration, and
the MQ Milvus logged at its last start is read from its own log.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from migrator.cli import main as cli_main  # noqa: E402
from migrator.context import Environment  # noqa: E402
from migrator.milvus.client import MilvusAdapter  # noqa: E402
from migrator.sandbox import seed  # noqa: E402
from migrator.sandbox.seed import SEED  # noqa: E402
from migrator.verbs import sandbox as lifecycle  # noqa: E402

VERSIONS = ("2.3.0", "2.3.1", "2.3.2", "2.3.3", "2.3.4", "2.3.5")
REFUSED = "2.2.16"
DOC = REPO / "docs" / "compatibility.md"
START, END = "<!-- matrix:start -->", "<!-- matrix:end -->"
EXPECTED = {f"{s.database}.{s.name}": s.expected_rows for s in SEED}


def quiet() -> Environment:
    return Environment(stdout=io.StringIO(), stderr=io.StringIO(), stdin=None)


def cli(*args: str) -> tuple[int, dict]:
    env = quiet()
    code = cli_main(["--output", "json", *args], environment=env)
    try:
        return code, json.loads(env.stdout.getvalue())
    except ValueError:
        return code, {"error": env.stderr.getvalue()[-300:]}


def counts(uri: str) -> dict[str, int]:
    with MilvusAdapter.connect(uri, timeout=60) as milvus:
        return {c.key: c.rows for c in milvus.snapshot(deadline_s=300).collections if c.key in EXPECTED}


def migrate(root: Path, uri: str, target: str) -> str:
    started = time.monotonic()
    code, report = cli("apply", "-p", str(root / "playbook.yaml"), "--to", target, "--yes")
    seconds = time.monotonic() - started
    if code != 0:
        return f"exit {code}: {str(report.get('error'))[:160]}"
    found = counts(uri)
    logged = lifecycle.status(quiet(), root).mq_log
    if found != EXPECTED or logged != target:
        return f"exit 0 but counts {'equal' if found == EXPECTED else found} and the log says {logged}"
    downtime = report.get("write_downtime_s")
    return f"yes: {seconds:.0f} s, write-downtime {downtime:.0f} s" if downtime is not None else f"yes: {seconds:.0f} s"


def one_version(version: str, work: Path) -> dict[str, str]:
    root = work / f"milvus-{version}"
    row = {"version": version}
    try:
        lifecycle.up(quiet(), root, version=version)
        _, state = lifecycle.load(root)
        uri = f"http://127.0.0.1:{state.ports['proxy']}"
        with MilvusAdapter.connect(uri, timeout=60) as milvus:
            row["server"] = milvus.version()
        if version == REFUSED:
            code, report = cli("plan", "-p", str(root / "playbook.yaml"))
            errors = [f["message"] for f in report.get("findings", []) if f.get("level") == "error"]
            row["there"] = f"exit {code}: " + (errors[0][:120] if errors else str(report.get("error"))[:120])
            return row
        seed.seed(quiet(), uri)
        row["there"] = migrate(root, uri, "natsmq")
        row["back"] = migrate(root, uri, "rocksmq") if row["there"].startswith("yes") else "not run"
    except Exception as error:  # noqa: BLE001 - a row says what failed; the next version still runs
        row.setdefault("there", f"{type(error).__name__}: {str(getattr(error, 'message', error))[:160]}")
    finally:
        if (root / "sandbox.json").exists():
            try:
                lifecycle.down(quiet(), root, timeout_s=3.0)
            except Exception as error:  # noqa: BLE001
                row["down"] = f"down failed: {error}"
        shutil.rmtree(root, ignore_errors=True)
    return row


def table(rows: list[dict[str, str]]) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [f"Run by `make matrix` on {when} (the `milvus` wheels from PyPI, a 2-core shared machine):", "",
             "| wheel | server says | RocksMQ -> NATS | NATS -> RocksMQ |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['version']} | {row.get('server', '-')} | {row.get('there', '-')} | "
                     f"{row.get('back', '-')} |".replace("\n", " "))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", default=",".join((*VERSIONS, REFUSED)), help="comma-separated releases")
    parser.add_argument("--out", type=Path, default=None, help="write the table here instead of into the doc")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="milvus-migrate-matrix-") as work:
        for version in args.versions.split(","):
            print(f"== Milvus {version}", flush=True)
            rows.append(one_version(version.strip(), Path(work)))
            print(json.dumps(rows[-1]), flush=True)
    text = table(rows)
    if args.out is not None:
        args.out.write_text(text)
        return
    doc = DOC.read_text()
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n{text}{END}{tail}")


if __name__ == "__main__":
    main()
