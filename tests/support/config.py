"""Helpers of the config tests: the project's fixtures, the optional shared corpus, the wheel's
template, diff parsing."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

# Written by this project (tests/fixtures/config/README.md says which layout each captures).
FIXTURES = Path(__file__).parents[1] / "fixtures" / "config"
FIXTURE_DIRS = sorted(path for path in FIXTURES.iterdir() if (path / "milvus.yaml").is_file())

# The real milvus.yaml files of Milvus releases, when a directory of them sits beside the clone.
# An extra corpus: a clone with nothing beside it skips these, saying why.
SHARED_FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
SHARED_FIXTURE_FILES = sorted(SHARED_FIXTURES.glob("*.yaml")) if SHARED_FIXTURES.is_dir() else []
SHARED_ABSENT = f"{SHARED_FIXTURES} is not beside the clone: the real milvus.yaml corpus is optional"

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)(?:\((\w+)\))?(?:\s*:\s*([^}]*?))?\s*\}\}")


def fixture_dir(name: str) -> Path:
    path = FIXTURES / name
    assert (path / "milvus.yaml").is_file(), f"no fixture {path}"
    return path


def milvus_yaml_sources() -> list:
    """pytest params: (name, text) of every milvus.yaml to edit: the project's fixtures, the
    `milvus` wheel's template, and the shared corpus (one skipped param when it is absent)."""
    params = [pytest.param(path.name, (path / "milvus.yaml").read_bytes().decode("utf-8"), id=path.name)
              for path in FIXTURE_DIRS]
    params.append(pytest.param("wheel-template", None, id="wheel-template"))
    if SHARED_FIXTURE_FILES:
        params += [pytest.param(path.name, path.read_text(encoding="utf-8"), id=f"shared-{path.name}")
                   for path in SHARED_FIXTURE_FILES]
    else:
        params.append(pytest.param("shared", "", id="shared-corpus", marks=pytest.mark.skip(reason=SHARED_ABSENT)))
    return params


def wheel_template_text() -> str:
    """The `milvus` wheel's config template with its `{{ name(type): default }}` filled in."""
    spec = importlib.util.find_spec("milvus")
    assert spec is not None and spec.submodule_search_locations, "the milvus wheel is a dev dependency"
    template = Path(next(iter(spec.submodule_search_locations))) / "data" / "config.yaml.template"
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
