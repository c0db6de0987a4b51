"""The plan's estimate behind the firewall gate against what benchmarks/bench_vs_manual.py measured
(2026-12-07, 3 runs a size). RocksMQ -> NATS: 11.4-14.7 s of write-downtime at 5 loaded
collections (8 in all), 33.3-35.5 s at 100 (112 in all); reads back 0.1-0.4 s after writes.
NATS -> RocksMQ: 8.1-11.0 s at 5, 15.6-17.1 s at 100; reads back 28.9-29.9 s after the cut at 100."""

from __future__ import annotations

import pytest

from migrator.migration import costs

SMALL = {"collections": 8, "loaded": 6, "loaded_segments": 8, "rows": 10_000}
HUNDRED = {"collections": 112, "loaded": 101, "loaded_segments": 250, "rows": 60_000}


def gated(scale: dict, target: str = "natsmq") -> costs.Estimate:
    source = "natsmq" if target == "rocksmq" else "rocksmq"
    return costs.estimate(scale, source=source, target=target, stop_deadline_s=2.0, budget_s=None,
                          rollback_budget_s=None, gate="firewall")


@pytest.mark.parametrize(("scale", "target", "low", "high"), [
    (SMALL, "natsmq", 10.0, 15.0), (HUNDRED, "natsmq", 30.0, 40.0),
    (SMALL, "rocksmq", 8.0, 13.0), (HUNDRED, "rocksmq", 14.0, 19.0),
])
def test_the_gated_estimate_predicts_the_measured_write_downtime(scale: dict, target: str, low: float,
                                                                 high: float) -> None:
    assert low <= gated(scale, target)["write_downtime_s"] <= high


def test_on_the_way_back_reads_come_back_when_the_reload_ends() -> None:
    assert 26.0 <= gated(HUNDRED, "rocksmq")["read_downtime_s"] <= 33.0
    assert 30.0 <= gated(HUNDRED, "natsmq")["read_downtime_s"] <= 40.0


def test_the_checkpoints_grow_with_the_channels_beyond_what_the_restart_covers_on_nats_only() -> None:
    assert gated(SMALL)["parts"]["checkpoints"] == 0.0
    assert gated(HUNDRED)["parts"]["checkpoints"] > 15.0
    assert gated(HUNDRED, "rocksmq")["parts"]["checkpoints"] == 0.0


def test_reads_come_back_with_writes_unless_the_reload_outlasts_the_window() -> None:
    small = gated(SMALL)
    assert small["read_downtime_s"] == small["write_downtime_s"]
    big = dict(HUNDRED, loaded_segments=600)  # a reload of minutes outlasts the window
    assert gated(big)["read_downtime_s"] > gated(big)["write_downtime_s"] + 60


def test_the_rollback_bound_holds_the_way_back_to_nats_too() -> None:
    # NATS -> RocksMQ is short at 100; its rollback ends on NATS, whose checkpoints come one by one.
    back, forth = gated(HUNDRED, "rocksmq"), gated(HUNDRED, "natsmq")
    both_ways = forth["write_downtime_s"] + back["write_downtime_s"]
    assert back["rollback_budget_s"] == forth["rollback_budget_s"] == costs.budget_for_estimate(both_ways)
