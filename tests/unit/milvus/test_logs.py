"""Log followers and the MQ proof, on real files and real subprocesses.

The sample lines are copied from a Milvus 2.3.5 (the `milvus` wheel) started on RocksMQ,
on NATS with `log.format: json`, and on NATS with its port taken.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from migrator.errors import NotRolledBack
from migrator.milvus.logs import (
    CommandFollower,
    FileFollower,
    LogLine,
    MqConfirmTimeout,
    MqMismatch,
    MqStartFailed,
    mark,
    parse_line,
    read_nats_fatal,
    wait_for_mq,
)

T = "[2026/11/28 05:59:08.618 +00:00]"
INIT_NATS = f'{T} [INFO] [dependency/factory.go:84] ["try to init mq"] [standalone=true] [mqType=natsmq]'
INIT_ROCKS = f'{T} [INFO] [dependency/factory.go:84] ["try to init mq"] [standalone=true] [mqType=rocksmq]'
NMQ_FINISHED = f'{T} [INFO] [nmq/nmq_server.go:79] ["initialize nmq finished"] [client-url=nats://127.0.0.1:38363] []'
ROCKS_OK = f'{T} [INFO] [msgstream/mq_factory.go:18] ["init rocksmq msgstream success"] [path=/var/lib/milvus/rdb_data]'
NMQ_FAILED = (
    f'{T} [FATAL] [nmq/nmq_server.go:75] ["initialize nmq failed"] [error="nmq is not ready within timeout"]'
)
NOISE = f'{T} [DEBUG] [sessionutil/session_util.go:253] ["Session try to connect to etcd"]'
NATS_FTL = (
    '[9754] 2026/11/28 05:59:53.206827 [FTL] Error listening on port: 127.0.0.1:14222, '
    '"listen tcp 127.0.0.1:14222: bind: address already in use"'
)


def append(path: Path, *lines: str, end: str = "\n") -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(line + end for line in lines))


def collect(follower, seconds: float = 0.15) -> list[str]:
    return list(follower.lines(time.monotonic() + seconds))


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("caller_line", [83, 84, 85, 86])
def test_text_line_matches_the_message_whatever_the_caller(caller_line: int) -> None:
    line = INIT_NATS.replace("factory.go:84", f"factory.go:{caller_line}")
    assert parse_line(line) == LogLine("INFO", "try to init mq", {"standalone": "true", "mqType": "natsmq"})


def test_text_line_quoted_keys_values_and_escapes() -> None:
    line = (
        f'{T} [INFO] [indexnode/indexnode.go:304] ["IndexNode Component states"] '
        '[State="nodeID:1 role:\\"indexnode\\" state_code:Healthy "] ["previous GOGC"=200] '
        '[endpoints="[localhost:9379]"] [key="a b"] [gc-pause=106.038µs]'
    )
    parsed = parse_line(line)
    assert parsed is not None
    assert parsed.message == "IndexNode Component states"
    assert parsed.fields == {
        "State": 'nodeID:1 role:"indexnode" state_code:Healthy ',
        "previous GOGC": "200",
        "endpoints": "[localhost:9379]",
        "key": "a b",
        "gc-pause": "106.038µs",
    }


def test_text_line_bare_message_empty_field_and_prefix() -> None:
    assert parse_line(f"{T} [DEBUG] [querynode/service.go:127] [QueryNode] [State=Initializing]") == LogLine(
        "DEBUG", "QueryNode", {"State": "Initializing"}
    )
    assert parse_line(NMQ_FINISHED).fields == {"client-url": "nats://127.0.0.1:38363"}
    # docker compose and journald prefix every line.
    assert parse_line("milvus-standalone  | " + INIT_ROCKS).fields["mqType"] == "rocksmq"
    assert parse_line("Nov 28 05:15:21 host milvus[812]: " + INIT_ROCKS).message == "try to init mq"


def test_json_line() -> None:
    line = json.dumps(
        {
            "level": "INFO",
            "time": "2026/11/28 05:15:21.781 +00:00",
            "caller": "dependency/factory.go:84",
            "message": "try to init mq",
            "standalone": True,
            "mqType": "natsmq",
        }
    )
    assert parse_line(line) == LogLine("INFO", "try to init mq", {"standalone": True, "mqType": "natsmq"})


def test_not_a_milvus_line() -> None:
    for line in ["", "    __  _________ _   ____  ______", "2026/11/28 05:59:53 maxprocs: Leaving GOMAXPROCS=2", "{not json"]:
        assert parse_line(line) is None


# --- file follower ------------------------------------------------------------------------


def test_only_lines_after_the_mark_count(tmp_path: Path) -> None:
    log = tmp_path / "milvus.log"
    append(log, INIT_ROCKS, ROCKS_OK)
    position = mark(log)
    append(log, INIT_NATS)
    with FileFollower(log, position, poll_interval=0.01) as follower:
        assert collect(follower) == [INIT_NATS]


def test_mark_of_a_missing_file_counts_everything_it_will_hold(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    position = mark(log)
    with FileFollower(log, position, poll_interval=0.01) as follower:
        assert collect(follower, 0.05) == []
        append(log, INIT_NATS)
        assert collect(follower) == [INIT_NATS]


def test_partial_lines_wait_for_their_end(tmp_path: Path) -> None:
    log = tmp_path / "milvus.log"
    log.write_text("")
    with FileFollower(log, mark(log), poll_interval=0.01) as follower:
        append(log, INIT_NATS[:30], end="")
        assert collect(follower, 0.05) == []
        append(log, INIT_NATS[30:], NOISE)
        assert collect(follower) == [INIT_NATS, NOISE]


def test_rotation_by_rename_finishes_the_old_file_then_reads_the_new(tmp_path: Path) -> None:
    log = tmp_path / "standalone.log"
    append(log, NOISE)
    with FileFollower(log, mark(log), poll_interval=0.01) as follower:
        append(log, "old-1")
        assert collect(follower, 0.05) == ["old-1"]
        append(log, "old-2", "old-partial", end="")  # written after the last read, before the rename
        log.rename(tmp_path / "standalone-2026-11-28T05-15-21.log")
        append(log, "new-1")
        assert collect(follower) == ["old-2old-partial", "new-1"]


def test_a_marked_file_rotated_before_following_is_found_by_its_inode(tmp_path: Path) -> None:
    log = tmp_path / "standalone.log"
    append(log, NOISE)
    position = mark(log)
    append(log, "after-mark-in-old-file")
    log.rename(tmp_path / "standalone-1.log")
    append(log, "in-new-file")
    with FileFollower(log, position, poll_interval=0.01) as follower:
        assert collect(follower) == ["after-mark-in-old-file", "in-new-file"]


def test_truncation_restarts_at_zero(tmp_path: Path) -> None:
    log = tmp_path / "milvus.log"
    append(log, NOISE, NOISE, NOISE)
    with FileFollower(log, mark(log), poll_interval=0.01) as follower:
        assert collect(follower, 0.05) == []
        with open(log, "w") as f:  # copytruncate / a runtime that reopens with O_TRUNC
            f.write("fresh\n")
        assert collect(follower) == ["fresh"]


def test_file_rewritten_past_the_mark_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    append(log, "before-restart-" + "x" * 80)
    position = mark(log)
    with open(log, "w") as f:  # same inode, truncated and rewritten further than the mark
        f.write("after-restart-" + "y" * 200 + "\n")
    with FileFollower(log, position, poll_interval=0.01) as follower:
        assert collect(follower) == ["after-restart-" + "y" * 200]


def test_an_over_long_line_is_cut_and_the_next_line_survives(tmp_path: Path) -> None:
    log = tmp_path / "milvus.log"
    log.write_text("")
    with FileFollower(log, mark(log), poll_interval=0.01, max_line_bytes=200) as follower:
        append(log, "z" * 1000, INIT_NATS)
        assert collect(follower) == ["z" * 200, INIT_NATS]


def test_follower_sees_lines_from_a_concurrent_writer(tmp_path: Path) -> None:
    log = tmp_path / "milvus.log"
    log.write_text("")
    position = mark(log)

    def writer() -> None:
        for i in range(50):
            append(log, f"line-{i}")
            time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    with FileFollower(log, position, poll_interval=0.01) as follower:
        seen = []
        for line in follower.lines(soon()):
            seen.append(line)
            if len(seen) == 50:
                break
    thread.join()
    assert seen == [f"line-{i}" for i in range(50)]


# --- command follower ---------------------------------------------------------------------


def test_command_follower_yields_output_then_ends() -> None:
    with CommandFollower(["sh", "-c", "echo one; echo two >&2; printf three"]) as follower:
        assert list(follower.lines(soon())) == ["one", "two", "three"]
        assert follower.ended and follower.returncode == 0


def test_command_follower_close_kills_the_command_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    follower = CommandFollower(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; echo started; wait"])
    assert next(iter(follower.lines(soon()))) == "started"
    child = int(pid_file.read_text())
    started = time.monotonic()
    follower.close()
    assert time.monotonic() - started < 3
    assert follower.returncode != 0
    until = time.monotonic() + 5  # SIGTERM to the group is sent; the child needs a moment to die
    while _alive(child):
        assert time.monotonic() < until, f"child {child} outlived close()"
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie waits for a reaper, it runs no more


def test_command_follower_deadline_returns_while_the_command_runs() -> None:
    with CommandFollower(["sh", "-c", "echo first; sleep 30"]) as follower:
        started = time.monotonic()
        assert list(follower.lines(time.monotonic() + 0.3)) == ["first"]
        assert 0.25 < time.monotonic() - started < 2
        assert not follower.ended


# --- the MQ proof -------------------------------------------------------------------------


def test_wait_for_natsmq_collects_the_port(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    append(log, INIT_ROCKS, ROCKS_OK)  # the previous run, before the mark
    position = mark(log)
    append(log, NOISE, INIT_NATS, NOISE, NMQ_FINISHED, INIT_NATS)
    with FileFollower(log, position, poll_interval=0.01) as follower:
        evidence = wait_for_mq(follower, "natsmq", soon())
    assert evidence.mq_type == "natsmq"
    assert evidence.init_line == INIT_NATS and evidence.confirm_line == NMQ_FINISHED
    assert evidence.nats_client_url == "nats://127.0.0.1:38363" and evidence.nats_port == 38363


def test_wait_for_rocksmq_in_json_format(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_text("")
    position = mark(log)
    base = {"level": "INFO", "time": "2026/11/28 05:15:21.781 +00:00"}
    append(
        log,
        json.dumps({**base, "caller": "dependency/factory.go:85", "message": "try to init mq", "standalone": True, "mqType": "rocksmq"}),
        json.dumps({**base, "caller": "msgstream/mq_factory.go:18", "message": "init rocksmq msgstream success", "path": "/d/rdb"}),
    )
    with FileFollower(log, position, poll_interval=0.01) as follower:
        evidence = wait_for_mq(follower, "rocksmq", soon())
    assert evidence.rocksmq_path == "/d/rdb" and evidence.nats_port is None


def test_the_source_mq_fails_fast(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_text("")
    position = mark(log)
    append(log, INIT_ROCKS, ROCKS_OK)
    started = time.monotonic()
    with FileFollower(log, position, poll_interval=0.01) as follower, pytest.raises(MqMismatch) as caught:
        wait_for_mq(follower, "natsmq", soon(30))
    assert time.monotonic() - started < 2
    assert "rocksmq" in caught.value.message and caught.value.evidence == [INIT_ROCKS]
    assert isinstance(caught.value, NotRolledBack)


def test_nmq_failed_fails_fast(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_text("")
    position = mark(log)
    append(log, INIT_NATS, NMQ_FAILED)
    with FileFollower(log, position, poll_interval=0.01) as follower, pytest.raises(MqStartFailed) as caught:
        wait_for_mq(follower, "natsmq", soon(30))
    assert "nmq is not ready within timeout" in caught.value.message


def test_init_line_alone_is_not_proof_and_a_dead_process_quotes_nats(tmp_path: Path) -> None:
    # Seen on 2.3.5 with the NATS port taken: `try to init mq` natsmq, then exit 1.
    log, nats_log = tmp_path / "stdout.log", tmp_path / "nats.log"
    log.write_text("")
    append(nats_log, "[1] 2026/11/28 05:50:00.000000 [FTL] an old failure of another start")
    position, nats_position = mark(log), mark(nats_log)
    append(log, INIT_NATS)
    append(nats_log, "[9754] 2026/11/28 05:59:53.180730 [INF] Starting nats-server", NATS_FTL)
    with FileFollower(log, position, poll_interval=0.01) as follower, pytest.raises(MqStartFailed) as caught:
        wait_for_mq(follower, "natsmq", soon(30), still_running=lambda: False, nats_log=nats_position)
    assert "address already in use" in caught.value.message
    assert "old failure" not in caught.value.message


def test_timeout_is_its_own_error(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_text("")
    position = mark(log)
    append(log, INIT_NATS, NOISE)
    with FileFollower(log, position, poll_interval=0.01) as follower, pytest.raises(MqConfirmTimeout) as caught:
        wait_for_mq(follower, "natsmq", soon(0.2), still_running=lambda: True)
    assert "initialize nmq finished" in caught.value.message


def test_wait_for_mq_on_a_command_that_ends_without_proof() -> None:
    with CommandFollower([sys.executable, "-c", f"print({NOISE!r})"]) as follower, pytest.raises(MqConfirmTimeout) as caught:
        wait_for_mq(follower, "natsmq", soon(30))
    assert "ended" in caught.value.message


def test_wait_for_mq_on_a_streaming_command() -> None:
    script = f"echo '{INIT_NATS}'; sleep 0.1; echo '{NMQ_FINISHED}'; sleep 30"
    with CommandFollower(["sh", "-c", script]) as follower:
        assert wait_for_mq(follower, "natsmq", soon()).nats_port == 38363


def test_read_nats_fatal(tmp_path: Path) -> None:
    nats_log = tmp_path / "nats.log"
    append(nats_log, "[9754] 2026/11/28 05:59:53.180730 [INF] Starting nats-server", NATS_FTL)
    assert read_nats_fatal(nats_log) == [
        'Error listening on port: 127.0.0.1:14222, "listen tcp 127.0.0.1:14222: bind: address already in use"'
    ]


def test_an_over_long_line_across_reads_is_cut_once(tmp_path: Path) -> None:
    log = tmp_path / "milvus.log"
    log.write_text("")
    with FileFollower(log, mark(log), poll_interval=0.01, max_line_bytes=100_000) as follower:
        append(log, "a" * 300_000, INIT_NATS)
        assert collect(follower) == ["a" * 100_000, INIT_NATS]


def test_command_follower_close_returns_when_an_exited_command_left_a_child_on_the_pipe() -> None:
    follower = CommandFollower(["sh", "-c", "sleep 60 & echo started"])
    assert list(follower.lines(time.monotonic() + 0.3)) == ["started"]
    started = time.monotonic()
    follower.close()
    assert time.monotonic() - started < 3
