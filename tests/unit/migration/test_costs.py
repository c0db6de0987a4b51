"""The plan's estimate behind the firewall gate against what benchmarks/bench_vs_manual.py measured
(2026-12-07, RocksMQ -> NATS, 3 runs a size): 11.4-14.7 s of write-downtime at 5 loaded
collections (8 in all), 33.3-35.5 s at 100 (112 in all); reads back 0.1-0.4 s after writes."""

from __future__ import annotations

import pytest

from migrator.migration import costs

SMALL = {"collections": 8, "loaded": 6, "loaded_segments": 8, "rows": 10_000}
HUNDRED = {"collections": 112, "loaded": 101, "loaded_segments": 250, "rows": 60_000}


def gated(scale: dict) -> costs.Estimate:
    return costs.estimate(scale, source="rocksmq", target="natsmq", stop_deadline_s=2.0, budget_s=None,
                          rollback_budget_s=None, gate="firewall")


@pytest.mark.parametrize(("scale", "low", "high"), [(SMALL, 10.0, 15.0), (HUNDRED, 30.0, 40.0)])
def test_the_gated_estimate_predicts_the_measured_write_downtime(scale: dict, low: float, high: float) -> None:
    assert low <= gated(scale)["write_downtime_s"] <= high


def test_the_checkpoints_grow_with_the_channels_beyond_what_the_restart_covers() -> None:
    assert gated(SMALL)["parts"]["checkpoints"] == 0.0
    assert gated(HUNDRED)["parts"]["checkpoints"] > 15.0


def test_reads_come_back_with_writes_unless_the_reload_outlasts_the_window() -> None:
    small = gated(SMALL)
    assert small["read_downtime_s"] == small["write_downtime_s"]
    big = dict(HUNDRED, loaded_segments=600)  # a reload of ~4 min outlasts the window
    assert gated(big)["read_downtime_s"] > gated(big)["write_downtime_s"] + 60
