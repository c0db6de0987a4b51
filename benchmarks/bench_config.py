"""Config engine cost: parse + edit + diff of a full-size milvus.yaml, as a ratio to a bare ruamel.yaml
round-trip load+dump of the same file, both timed in this run (target: ratio <= 1.5).

The file is the Milvus 2.3.5 config the `milvus` wheel ships (a dev dependency, its placeholders
filled in); the real release files in ../shared/fixtures are timed too when that directory sits
beside the clone.

    .venv/bin/python benchmarks/bench_config.py [--rounds N]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(action: Callable[[], object], rounds: int) -> float:
    """Median seconds of `rounds` runs after one warm-up."""
    action()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def ratio_for(name: str, text: str, rounds: int) -> float:
    from ruamel.yaml import YAML

    from migrator.config import load_layers, plan_edit

    config_dir = Path(tempfile.mkdtemp(prefix="bench-config-"))
    (config_dir / "milvus.yaml").write_text(text, encoding="utf-8")
    changes = {"mq.type": "natsmq", "natsmq.server.port": 4333, "quotaAndLimits.limitWriting.forceDeny": True}

    def engine() -> object:
        return plan_edit(load_layers(config_dir, "2.5.4", {}, None), changes).diff

    def ruamel_round_trip() -> object:
        yaml = YAML(typ="rt")
        out = io.StringIO()
        yaml.dump(yaml.load(text), out)
        return out.getvalue()

    try:
        ours, baseline = timed(engine, rounds), timed(ruamel_round_trip, rounds)
    finally:
        shutil.rmtree(config_dir)
    ratio = ours / baseline
    print(f"file: {name} ({len(text.splitlines())} lines), {len(changes)} keys edited, median of {rounds}")
    print(f"  parse+edit+diff (load_layers + plan_edit): {ours * 1000:.1f} ms")
    print(f"  ruamel.yaml round-trip load+dump:          {baseline * 1000:.1f} ms")
    print(f"  ratio: {ratio:.2f} (target <= 1.5)")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds

    from tests.support.config import (
        SHARED_ABSENT,
        SHARED_FIXTURE_FILES,
        wheel_template_text,
    )

    files = [("the milvus wheel's config template (2.3.5)", wheel_template_text())]
    files += [(f"{path.name} (../shared/fixtures)", path.read_text(encoding="utf-8")) for path in SHARED_FIXTURE_FILES]
    if not SHARED_FIXTURE_FILES:
        print(f"skipped the shared corpus: {SHARED_ABSENT}")
    ratios = [ratio_for(name, text, rounds) for name, text in files]
    return 0 if max(ratios) <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
