"""A rehearsal killed with its copy's gate closed leaves a real nft table on this host, rejecting the
copy's private ports; the next rehearsal's clean-up removes the rule the copy's journal names (checked
first), and the copy. Judged by `nft list tables`, not by what the tool says."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from migrator.context import Environment
from migrator.migration.journal import Journal
from migrator.rehearsal.layout import CopyLayout, create_copy_dir
from migrator.runtime import firewall
from migrator.util.ports import free_ports
from migrator.verbs.rehearse import _remove_copy_and_its_gate
from tests.support.plans import make_plan

RUN_ID = "20261207T051500Z"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="needs root and nft (make test installs it)")
def test_the_next_rehearsal_removes_the_rule_a_killed_one_left(tmp_path: Path) -> None:
    layout = CopyLayout(tmp_path / "copy")
    create_copy_dir(layout, "production.yaml")
    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    journal = Journal.create(layout.state_dir / "journal.json", run_id=RUN_ID, plan=make_plan(tmp_path, layer).to_dict())
    rule = firewall.GateRule(firewall.NFT, firewall.rule_name(RUN_ID), tuple(free_ports(2)),
                             firewall.exempt_address_for(RUN_ID))
    journal.mark("gate", rule.to_dict())
    firewall.install(rule)
    try:
        assert rule.name in firewall.leftover_tables()
        _remove_copy_and_its_gate(Environment(stdout=io.StringIO(), stderr=io.StringIO(), stdin=None), layout)
        assert rule.name not in firewall.leftover_tables()
        assert not layout.root.exists()
    finally:
        firewall.remove(rule)
