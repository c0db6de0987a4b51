"""The config engine: what Milvus will read, and a safe edit of the file that wins.

Public API (the plan/apply engine uses these):

- `load_layers(config_dir, version, environ, etcd, *, env_origin="environment") -> EffectiveConfig`
  Milvus's sources in Milvus's order: config files of `config_dir` for `version`, the environment
  `environ`, and etcd (`EtcdSource`) when Milvus uses an external etcd.
  `EffectiveConfig.get(key) -> Resolved(key, value, raw, source)`; `.mq_type()` resolves `default`.
- `plan_edit(effective, changes) -> ConfigEdit`: target file, new text, unified diff, refusals
  (env/etcd overrides the edit cannot beat); `ConfigEdit.raise_if_refused()`.
- `write_atomic(path, text) -> Path` and `keep_original(path, dest_dir) -> (copy, sha256)`.
- `natsmq_findings(effective, changes, target) -> list[Finding]` (migrator.findings.Finding).
"""

from migrator.config.edit import ConfigEdit, Refusal, plan_edit
from migrator.config.envrules import read_env_file
from migrator.config.etcd import EtcdSource
from migrator.config.keys import EDITABLE_KEYS, FORCE_DENY, MQ_TYPE, parse_assignment
from migrator.config.layers import (
    EffectiveConfig,
    Resolved,
    Source,
    config_files_for,
    load_layers,
)
from migrator.config.natsmq_rules import natsmq_findings
from migrator.config.write import keep_original, write_atomic

__all__ = [
    "EDITABLE_KEYS",
    "FORCE_DENY",
    "MQ_TYPE",
    "ConfigEdit",
    "EffectiveConfig",
    "EtcdSource",
    "Refusal",
    "Resolved",
    "Source",
    "config_files_for",
    "keep_original",
    "load_layers",
    "natsmq_findings",
    "parse_assignment",
    "plan_edit",
    "read_env_file",
    "write_atomic",
]
