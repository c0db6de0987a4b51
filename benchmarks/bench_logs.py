"""Log following: memory over a 1 GB log, and the delay from a line written to it matched.

    .venv/bin/python benchmarks/bench_logs.py [--size-mb 1024] [--lines 500]

1. Writes a Milvus-looking log of --size-mb in a temp dir whose `try to init mq` /
   `initialize nmq finished` lines come last, then runs wait_for_mq over it from the start:
   reports throughput and RSS (sampled while following, and the process peak).
2. A writer process appends --lines lines, each carrying the monotonic time it was written;
   FileFollower (polling) and CommandFollower (`tail -F`) report written-to-matched delays.
The temp dir is deleted at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

from migrator.milvus.logs import (
    CommandFollower,
    FileFollower,
    Follower,
    mark,
    parse_line,
    wait_for_mq,
)

T = "[2026/11/28 05:59:08.618 +00:00]"
NOISE = [
    f'{T} [DEBUG] [sessionutil/session_util.go:253] ["Session try to connect to etcd"]',
    f'{T} [INFO] [gc/gc_tuner.go:90] ["GC Tune done"] ["previous GOGC"=200] ["heapuse "=26] ["total memory"=63] [gc-pause=106.038µs]',
    f'{T} [INFO] [indexnode/indexnode.go:304] ["IndexNode Component states"] [State="nodeID:1 role:\\"indexnode\\" state_code:Healthy "] [Status=Success]',
    '{"level":"WARN","time":"2026/11/28 05:59:20.170 +00:00","caller":"rootcoord/timeticksync.go:168","message":"session idle for long time","idle list":[1],"idle time":10000}',
]
PROOF = [
    f'{T} [INFO] [dependency/factory.go:84] ["try to init mq"] [standalone=true] [mqType=natsmq]',
    f'{T} [INFO] [nmq/nmq_server.go:79] ["initialize nmq finished"] [client-url=nats://127.0.0.1:38363] []',
]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_big_log(path: Path, size_mb: int) -> int:
    block = ("\n".join(NOISE * 5000) + "\n").encode()  # ~3 MB
    target = size_mb * 1024 * 1024
    written = 0
    with open(path, "wb") as f:
        while written < target:
            f.write(block)
            written += len(block)
        tail = ("\n".join(PROOF) + "\n").encode()
        f.write(tail)
    return written + len(tail)


def bench_memory(tmp: Path, size_mb: int) -> None:
    log = tmp / "standalone.log"
    started = time.monotonic()
    size = write_big_log(log, size_mb)
    print(f"generated {size / 2**20:.0f} MiB in {time.monotonic() - started:.1f} s")
    before, samples, done = rss_mb(), [], threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            samples.append(rss_mb())

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    with FileFollower(log) as follower:  # from the start: every byte goes through the follower
        evidence = wait_for_mq(follower, "natsmq", time.monotonic() + 600)
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    assert evidence.nats_port == 38363
    print(
        f"followed {size / 2**20:.0f} MiB to the proof in {elapsed:.1f} s ({size / 2**20 / elapsed:.0f} MiB/s); "
        f"RSS before {before:.1f} MB, while following min {min(samples, default=before):.1f} / "
        f"max {max(samples, default=before):.1f} MB; process peak (ru_maxrss) {peak_rss_mb():.1f} MB"
    )
    log.unlink()


def _writer(path: str, count: int, interval_s: float) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for i in range(count):
            time.sleep(interval_s)
            f.write(f'{T} [INFO] [dependency/factory.go:84] ["try to init mq"] [mqType=natsmq] [seq={i}] [t={time.monotonic()!r}]\n')
            f.flush()


def bench_delay(name: str, make_follower, log: Path, count: int) -> None:
    log.write_text("")
    follower: Follower = make_follower(log)
    time.sleep(0.3)  # let `tail -F` open the file before the first line
    writer = multiprocessing.get_context("spawn").Process(target=_writer, args=(str(log), count, 0.01))
    writer.start()
    delays: list[float] = []
    deadline = time.monotonic() + 60 + count * 0.02
    for line in follower.lines(deadline):
        parsed = parse_line(line)
        if parsed is not None and parsed.message == "try to init mq":
            delays.append(time.monotonic() - float(parsed.fields["t"]))
            if len(delays) == count:
                break
    follower.close()
    writer.join()
    delays_ms = sorted(d * 1000 for d in delays)
    p95 = delays_ms[max(0, int(len(delays_ms) * 0.95) - 1)]
    print(
        f"{name}: {len(delays_ms)}/{count} lines matched; written->matched median {statistics.median(delays_ms):.1f} ms, "
        f"p95 {p95:.1f} ms, max {delays_ms[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--lines", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp_dir:
        tmp = Path(tmp_dir)
        bench_memory(tmp, args.size_mb)
        bench_delay(
            "FileFollower (poll 50 ms)",
            lambda log: FileFollower(log, mark(log)),
            tmp / "delay-file.log",
            args.lines,
        )
        bench_delay(
            "CommandFollower (tail -F)",
            lambda log: CommandFollower(["tail", "-n", "0", "-F", str(log)]),
            tmp / "delay-command.log",
            args.lines,
        )


if __name__ == "__main__":
    main()
