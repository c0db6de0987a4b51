"""The probe loop that proves writes are denied or allowed: it keeps probing until Milvus answers the
way asked, and gives up at its deadline (a scripted stand-in answers; no migration runs here)."""

from __future__ import annotations

import pytest

from migrator.migration.writes import WritesNotControlled, wait_for_write_state


class ScriptedProbe:
    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.probes: list[int] = []

    def probe_insert(self, probe_id: int) -> bool:
        self.probes.append(probe_id)
        return self.answers[min(len(self.probes) - 1, len(self.answers) - 1)]


def test_waits_until_a_probe_is_accepted() -> None:
    milvus = ScriptedProbe([False, False, True])
    _, probe_id = wait_for_write_state(milvus, denied=False, deadline_s=10, pause_s=0.01)
    assert len(milvus.probes) == 3 and probe_id == milvus.probes[-1]


def test_waits_until_a_probe_is_rejected() -> None:
    milvus = ScriptedProbe([True, True, True, False])
    wait_for_write_state(milvus, denied=True, deadline_s=10, pause_s=0.01)
    assert len(milvus.probes) == 4
    assert len(set(milvus.probes)) == 4  # a fresh id each time


def test_gives_up_at_the_deadline() -> None:
    milvus = ScriptedProbe([True])
    with pytest.raises(WritesNotControlled, match="still accepted"):
        wait_for_write_state(milvus, denied=True, deadline_s=0.05, pause_s=0.01)
