"""The effective Milvus config: files in Milvus's order, then environment, then etcd.

Precedence (pkg/util/paramtable/base_table.go, pkg/config/manager.go): inside one file source the
later file wins (2.3.x: milvus.yaml only; 2.4: milvus < default < user; 2.5+: milvus < _test <
default < user); the environment beats the files; etcd beats both when Milvus uses an external etcd.
Keys are compared as Milvus compares them, after `format_key`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from migrator.config.envrules import EnvVar, env_overrides
from migrator.config.etcd import EtcdSource, EtcdValue
from migrator.config.keys import (
    DEFAULTS,
    MQ_TYPE,
    MQ_TYPES_BEFORE_2_6,
    MQ_TYPES_FROM_2_6,
    NATSMQ_DEFAULTS,
    ROCKSMQ_PATH,
    format_key,
    render_raw,
    typed_value,
    value_error,
)
from migrator.config.yamldoc import Leaf, YamlDocument, read_document
from migrator.errors import BadInput

FILES_2_3 = ("milvus.yaml",)
FILES_2_4 = ("milvus.yaml", "default.yaml", "user.yaml")
FILES_2_5 = ("milvus.yaml", "_test.yaml", "default.yaml", "user.yaml")


def parse_version(version: str | None) -> tuple[int, int] | None:
    """`v2.3.5-lite`, `2.4.13`, `2.5` -> (2, 3) ...; None when unknown; BadInput when unreadable."""
    if version is None or not version.strip():
        return None
    found = re.match(r"^v?(\d+)\.(\d+)", version.strip())
    if not found:
        raise BadInput(f"--version {version!r}: expected a Milvus version such as 2.4.13 or v2.3.5-lite")
    return int(found.group(1)), int(found.group(2))


def config_files_for(version: str | None) -> tuple[str, ...]:
    """The file names Milvus reads from its config dir, lowest precedence first.

    An unknown version reads the 2.5 list, the widest: a default.yaml or user.yaml that a 2.3
    Milvus ignores then shows up in `config show`, which is the safer mistake.
    """
    parsed = parse_version(version)
    if parsed is None or parsed >= (2, 5):
        return FILES_2_5
    if parsed >= (2, 4):
        return FILES_2_4
    return FILES_2_3


@dataclass(frozen=True)
class Source:
    """Where an effective value comes from."""

    kind: str  # file | env | etcd | default
    name: str  # file path, variable name, etcd key, or "built-in default"
    line: int | None = None
    column: int | None = None
    origin: str | None = None  # env: the environment or env file that sets the variable

    def __str__(self) -> str:
        if self.kind == "file":
            return f"{self.name}:{self.line}:{self.column}"
        if self.kind == "env":
            return f"environment variable {self.name} ({self.origin})"
        if self.kind == "etcd":
            return f"etcd key {self.name}"
        return self.name

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind, "name": self.name}
        if self.kind == "file":
            data.update(line=self.line, column=self.column)
        if self.origin:
            data["origin"] = self.origin
        return data


@dataclass(frozen=True)
class Resolved:
    """A key's effective value: `value` typed for the keys the tool knows, `raw` as Milvus sees it."""

    key: str
    value: object
    raw: str | None  # None: no source sets it and the tool knows no default
    source: Source

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "value": self.value, "raw": self.raw, "source": str(self.source),
                "where": self.source.to_dict()}


@dataclass
class Layer:
    """One config file Milvus reads, in precedence order."""

    name: str  # milvus.yaml, user.yaml, ...
    document: YamlDocument

    @property
    def path(self) -> Path:
        return self.document.path


@dataclass
class EffectiveConfig:
    """Everything Milvus would read, and which source wins for each key. Built by `load_layers`."""

    config_dir: Path
    version: str | None
    layers: list[Layer]  # existing files, lowest precedence first
    env: dict[str, EnvVar]
    etcd: dict[str, EtcdValue]
    etcd_state: str  # why etcd was or was not read, for `config show`
    _flat: list[dict[str, Leaf]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._flat = [layer.document.flat() for layer in self.layers]

    def file_value(self, key: str) -> tuple[Layer, Leaf] | None:
        """The winning file's leaf for `key` (ignoring env and etcd), or None when no file sets it."""
        formatted = format_key(key)
        for layer, flat in zip(reversed(self.layers), reversed(self._flat)):
            if formatted in flat:
                return layer, flat[formatted]
        return None

    def get(self, key: str) -> Resolved:
        """The effective value of `key` (dotted, e.g. `natsmq.server.port`) and where it comes from."""
        formatted = format_key(key)
        if formatted in self.etcd:
            found = self.etcd[formatted]
            return Resolved(key, typed_value(key, found.value), found.value, Source("etcd", found.key))
        if formatted in self.env:
            var = self.env[formatted]
            return Resolved(key, typed_value(key, var.value), var.value, Source("env", var.name, origin=var.origin))
        in_file = self.file_value(key)
        if in_file is not None:
            layer, leaf = in_file
            return Resolved(
                key, typed_value(key, leaf.raw), leaf.raw, Source("file", str(layer.path), leaf.line, leaf.column)
            )
        if key in DEFAULTS:
            default = DEFAULTS[key]
            return Resolved(key, default, render_raw(default), Source("default", "built-in default"))
        return Resolved(key, None, None, Source("default", "not set"))

    def mq_types(self) -> tuple[str, ...]:
        parsed = parse_version(self.version)
        if parsed is None:
            return (*MQ_TYPES_BEFORE_2_6, "woodpecker")
        return MQ_TYPES_FROM_2_6 if parsed >= (2, 6) else MQ_TYPES_BEFORE_2_6

    def mq_type(self) -> str:
        """The MQ a standalone Milvus would start with: `default` resolved as Milvus's factory does.

        `default` is rocksmq when rocksmq.path is non-empty (it always is in the shipped files),
        else pulsar when pulsar.address is set, else kafka when kafka.brokerList is set.
        """
        resolved = self.get(MQ_TYPE)
        mq_type = (resolved.raw or "").strip()
        if mq_type != "default":
            return mq_type
        for key, candidate in ((ROCKSMQ_PATH, "rocksmq"), ("pulsar.address", "pulsar"), ("kafka.brokerList", "kafka")):
            if (self.get(key).raw or "").strip():
                return candidate
        raise BadInput(f"mq.type is default ({resolved.source}) but rocksmq.path, pulsar.address and kafka.brokerList are all empty")

    def check(self) -> None:
        """BadInput for an effective mq.type Milvus rejects or a natsmq number that is not a number."""
        for key in (MQ_TYPE, *NATSMQ_DEFAULTS):
            resolved = self.get(key)
            problem = value_error(key, resolved.value, self.mq_types())
            if problem:
                raise BadInput(f"{resolved.source}: {problem}")


def load_layers(
    config_dir: Path,
    version: str | None,
    environ: Mapping[str, str],
    etcd: EtcdSource | None,
    *,
    env_origin: str = "environment",
) -> EffectiveConfig:
    """Load Milvus's config as Milvus would: files of `config_dir` for `version`, env, etcd.

    `environ` is the environment the Milvus process sees (`env_origin` says where it was read,
    for messages). `etcd` is read only when that source is active (etcd.use.embed false); when
    it is active and `etcd` is None, `etcd_state` says the overrides are unknown.
    Raises BadInput for a missing dir, no config file, a bad file, an unknown mq.type or a
    natsmq number that is not a number; Refused when etcd is active but cannot be read.
    """
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise BadInput(f"{config_dir}: config dir not found" if not config_dir.exists() else f"{config_dir}: not a directory")
    names = config_files_for(version)
    layers = [Layer(name, read_document(config_dir / name)) for name in names if (config_dir / name).exists()]
    if not layers:
        raise BadInput(f"{config_dir}: none of {', '.join(names)} is there")
    effective = EffectiveConfig(config_dir, version, layers, env_overrides(environ, env_origin), {}, "")
    embedded = effective.get("etcd.use.embed")
    if embedded.value is True:
        effective.etcd_state = f"not a source: etcd.use.embed is true ({embedded.source})"
    elif etcd is None:
        effective.etcd_state = "active (etcd.use.embed is false) but not read: give --etcd to see its overrides"
    else:
        root_path = effective.get("etcd.rootPath").raw or ""
        effective.etcd = etcd.read_config(root_path)
        effective.etcd_state = f"read from {etcd.url} ({len(effective.etcd)} override(s) under {root_path}/config/)"
    effective.check()
    return effective
