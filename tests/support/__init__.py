"""Helpers the tests share (not collected as tests): the CLI run in-process, sandboxes, RocksDB
fixtures in Milvus's layout, config-file helpers, paths.

Import from the submodule that holds a helper: `from tests.support.cli import run_cli`.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
