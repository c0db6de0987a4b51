"""Pure parts of the migration: journal, lock, plan file and staleness, report, playbook errors, secrets."""

from __future__ import annotations

from pathlib import Path

from migrator.migration.journal import Journal
from migrator.migration.report import build_report, render_markdown
from tests.support.plans import make_plan


def test_report_counts_downtime_and_renders(tmp_path: Path) -> None:
    layer = tmp_path / "milvus.yaml"
    layer.write_text("x: 1\n")
    journal = Journal.create(tmp_path / "j.json", run_id="20261130T000000Z", plan=make_plan(tmp_path, layer).to_dict())
    journal.mark("clients_off_at", 100.0)
    journal.mark("clients_back_at", 112.5)
    journal.mark("all_readable_at", 130.5)
    journal.begin("verify")
    journal.remember("verify", counts={"collections": {"default.a": {"rows": 10, "loaded": True}},
                                       "all_answer_strong_s": 3.2, "restart_to_all_strong_s": 30.5})
    journal.finish("verify", 4.0, "counts equal")
    report = build_report(journal)
    assert report["write_downtime_s"] == 12.5
    assert report["counts"] == [{"collection": "default.a", "loaded": True, "before": 10, "after": 10}]
    text = render_markdown(report)
    assert "write-downtime (clients cut off to a write acknowledged again): 12.5 s" in text and "| verify | done |" in text
    assert report["read_downtime_s"] == 30.5
    assert "read-downtime (clients cut off to every loaded collection answering a search again): 30.5 s" in text
