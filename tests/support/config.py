"""Shared helpers of the config tests: the shared fixtures, the wheel's template, diff parsing."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

# Read where they live, never copied into the project.
FIXTURES = Path(__file__).parents[2] / ".." / "shared" / "fixtures"
FIXTURE_FILES = sorted(FIXTURES.glob("*.yaml"))

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)(?:\((\w+)\))?(?:\s*:\s*([^}]*?))?\s*\}\}")


def wheel_template_text() -> str:
    """The `milvus` wheel's config template with its `{{ name(type): default }}` filled in."""
    spec = importlib.util.find_spec("milvus")
    assert spec is not None and spec.submodule_search_locations, "the milvus wheel is a dev dependency"
    template = Path(list(spec.submodule_search_locations)[0]) / "data" / "config.yaml.template"
    text = template.read_text(encoding="utf-8")
    return _PLACEHOLDER.sub(lambda m: m.group(3) if m.group(3) else f"/tmp/milvus/{m.group(1)}", text)


def changed_lines(diff: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines of a unified diff, without their +/- and line endings."""
    removed, added = [], []
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(line[1:].rstrip("\r"))
        elif line.startswith("+"):
            added.append(line[1:].rstrip("\r"))
    return removed, added
