"""The effective Milvus config: files in Milvus's order, then environment, then etcd.

Precedence (pkg/util/paramtable/base_table.go, pkg/config/manager.go): inside one file source the
later file wins (2.3.x: milvus.yaml only; 2.4: milvus < default < user; 2.5+: milvus < _test <
default < user); the environment beats the files; etcd beats both when Milvus uses an external etcd.
Keys are compared as Milvus compares them, after `format_key`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

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
from migrator.errors import BadInput, Refused
from migrator.mq import Mq

# From this release on Milvus pins its MQ in etcd (`<rootPath>/config/mqtype`) and has no natsmq.
FIRST_PINNED_RELEASE = (2, 6, 0)

FILES_2_3 = ("milvus.yaml",)
FILES_2_4 = ("milvus.yaml", "default.yaml", "user.yaml")
FILES_2_5 = ("milvus.yaml", "_test.yaml", "default.yaml", "user.yaml")


def parse_version(version: str | None) -> tuple[int, int] | None:
    """`v2.3.5-lite`, `2.4.13`, `2.5` -> (2, 3) ...; None when unknown; BadInput when unreadable."""
    release = parse_release(version)
    return None if release is None else (release[0], release[1])


def parse_release(version: str | None) -> tuple[int, int, int] | None:
    """`v2.5.16`, `2.5.4-gpu`, `2.5` -> (2, 5, 16), (2, 5, 4), (2, 5, 0); None when unknown;
    BadInput when unreadable. The patch level matters for the road to 2.6 (2.5.16 and later)."""
    if version is None or not version.strip():
        return None
    found = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    if not found:
        raise BadInput(f"--version {version!r}: expected a Milvus version such as 2.4.13 or v2.3.5-lite")
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


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


PIN_NOTE = ("Milvus 2.6+ pins the MQ here at its first start (create-if-absent): a yaml or env edit of "
            "mq.type changes nothing")


@dataclass(frozen=True)
class Setting:
    """One source that sets an MQ key, and whether Milvus goes by it."""

    key: str  # the dotted key it sets (as spelled when the tool does not know the key)
    raw: str
    source: Source
    status: str  # wins | overridden | ignored
    note: str = ""  # why it is overridden or ignored, or what it is (the 2.6 pin)

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "raw": self.raw, "source": str(self.source), "where": self.source.to_dict(),
                "status": self.status, "note": self.note}


def _is_mq_key(formatted: str) -> bool:
    return formatted == format_key(MQ_TYPE) or formatted.startswith("natsmq")


_KNOWN_MQ_KEYS = {format_key(key): key for key in (MQ_TYPE, *NATSMQ_DEFAULTS)}


def _dotted(formatted: str, spelled: str) -> str:
    """The dotted key a source sets: the known key's canonical name, else as the source spells it."""
    return _KNOWN_MQ_KEYS.get(formatted, spelled)


def _mq_key_order(formatted: str) -> tuple[int, str]:
    order = list(_KNOWN_MQ_KEYS)
    return (order.index(formatted), "") if formatted in _KNOWN_MQ_KEYS else (len(order), formatted)


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
    etcd: dict[str, EtcdValue]  # the active etcd source, by formatted key (empty when Milvus does not read it)
    etcd_state: str  # why etcd was or was not read, for `config show`
    etcd_values: list[EtcdValue] = field(default_factory=list)  # every key read under config/, active or not
    unread_layers: list[Layer] = field(default_factory=list)  # files in the dir this version does not read
    _flat: list[dict[str, Leaf]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._flat = [layer.document.flat() for layer in self.layers]

    def file_value(self, key: str) -> tuple[Layer, Leaf] | None:
        """The winning file's leaf for `key` (ignoring env and etcd), or None when no file sets it."""
        formatted = format_key(key)
        for layer, flat in zip(reversed(self.layers), reversed(self._flat), strict=True):
            if formatted in flat:
                return layer, flat[formatted]
        return None

    def get(self, key: str) -> Resolved:
        """The effective value of `key` (dotted, e.g. `natsmq.server.port`) and where it comes from."""
        formatted = format_key(key)
        pin = self.mq_pin() if formatted == format_key(MQ_TYPE) and self.pins_mq() else None
        if pin is not None:
            return Resolved(key, pin.value, pin.value, Source("etcd", pin.key))
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
        for key, candidate in ((ROCKSMQ_PATH, Mq.ROCKSMQ.value), ("pulsar.address", "pulsar"),
                               ("kafka.brokerList", "kafka")):
            if (self.get(key).raw or "").strip():
                return candidate
        raise BadInput(f"mq.type is default ({resolved.source}) but rocksmq.path, pulsar.address and "
                       "kafka.brokerList are all empty")

    def release(self) -> tuple[int, int, int] | None:
        return parse_release(self.version)

    def pins_mq(self) -> bool:
        """Milvus 2.6+: the MQ is the one pinned in etcd, whatever files and environment say."""
        release = self.release()
        return release is not None and release >= FIRST_PINNED_RELEASE

    def shaped_like_2_6(self) -> Path | None:
        """A file of these layers shaped like Milvus 2.6's (a `woodpecker` section and no `natsmq`
        one), whatever version was said: the config then belongs to a Milvus without natsmq."""
        for layer in self.layers:
            sections = {format_key(leaf.key.split(".", 1)[0]) for leaf in layer.document.leaves()}
            if "woodpecker" in sections and "natsmq" not in sections:
                return layer.path
        return None

    def mq_pin(self) -> EtcdValue | None:
        """The etcd key that formats to `mqtype` (Milvus 2.6 pins its MQ at `<rootPath>/config/mqtype`),
        read whether or not etcd is a config source here; None when absent or not read."""
        pins = [value for value in self.etcd_values if value.formatted == format_key(MQ_TYPE)]
        return pins[-1] if pins else None

    def mq_settings(self) -> list[Setting]:
        """Every source that sets mq.type or a natsmq key, per key from the one that wins down.

        The files this version does not read, an etcd Milvus does not read (embedded) and the
        `MILVUS_...` variables (Milvus cuts `milvus.`, not `milvus_`) are listed as ignored: each
        is a place where an edit would not take effect. On 2.6+ the etcd `mqtype` key is the pin.
        """
        pinned_release = self.pins_mq()
        by_key: dict[str, list[Setting]] = {}

        def add(formatted: str, setting: Setting) -> None:
            by_key.setdefault(formatted, []).append(setting)

        for value in self.etcd_values:
            if not _is_mq_key(value.formatted):
                continue
            key = _dotted(value.formatted, value.name)
            source = Source("etcd", value.key)
            if pinned_release and value.formatted == format_key(MQ_TYPE):
                add(value.formatted, Setting(key, value.value, source, "wins", PIN_NOTE))
            elif self.etcd.get(value.formatted) == value:
                add(value.formatted, Setting(key, value.value, source, "wins"))
            elif value.formatted in self.etcd:
                add(value.formatted, Setting(key, value.value, source, "ignored",
                                             f"the later etcd key {self.etcd[value.formatted].key} wins"))
            else:
                add(value.formatted, Setting(key, value.value, source, "ignored",
                                             "Milvus does not read config from etcd here (etcd.use.embed is true)"))
        for formatted, var in self.env.items():
            if _is_mq_key(formatted):
                add(formatted, Setting(_dotted(formatted, var.name), var.value,
                                       Source("env", var.name, origin=var.origin), "wins"))
            elif formatted.startswith("milvus") and _is_mq_key(formatted[len("milvus"):]):
                add(formatted[len("milvus"):], Setting(
                    _dotted(formatted[len("milvus"):], var.name), var.value, Source("env", var.name, origin=var.origin),
                    "ignored", "sets nothing: Milvus cuts a leading `milvus.` from variable names, not `milvus_`"))
        for layer in reversed(self.layers):
            for leaf in layer.document.leaves():
                formatted = format_key(leaf.key)
                if _is_mq_key(formatted):
                    add(formatted, Setting(_dotted(formatted, leaf.key), leaf.raw,
                                           Source("file", str(layer.path), leaf.line, leaf.column), "wins"))
        reader = f"Milvus {self.version}" if self.version else "this Milvus"
        for layer in self.unread_layers:
            for leaf in layer.document.leaves():
                formatted = format_key(leaf.key)
                if _is_mq_key(formatted):
                    add(formatted, Setting(_dotted(formatted, leaf.key), leaf.raw,
                                           Source("file", str(layer.path), leaf.line, leaf.column), "ignored",
                                           f"{reader} does not read {layer.name} (it reads "
                                           f"{', '.join(config_files_for(self.version))})"))
        settings: list[Setting] = []
        for formatted in sorted(by_key, key=_mq_key_order):
            winner: Setting | None = None
            for setting in by_key[formatted]:
                if setting.status == "wins":
                    if winner is None:
                        winner = setting
                    else:
                        setting = replace(setting, status="overridden", note=f"{winner.source} wins")
                settings.append(setting)
        return settings

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
    check: bool = True,
) -> EffectiveConfig:
    """Load Milvus's config as Milvus would: files of `config_dir` for `version`, env, etcd.

    `environ` is the environment the Milvus process sees (`env_origin` says where it was read,
    for messages). `etcd` is a source only when Milvus uses an external etcd (etcd.use.embed
    false); when it is active and `etcd` is None, `etcd_state` says the overrides are unknown.
    With an embedded etcd its config keys are still read when `etcd` is given, best effort, so
    that `mq_settings` can show them as ignored (and a 2.6 pin as what it is).
    Raises BadInput for a missing dir, no config file, a bad file, and (with `check`) an mq.type
    this version rejects or a natsmq number that is not a number; Refused when etcd is active
    but cannot be read.
    """
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise BadInput(f"{config_dir}: config dir not found" if not config_dir.exists()
                       else f"{config_dir}: not a directory")
    names = config_files_for(version)
    layers = [Layer(name, read_document(config_dir / name)) for name in names if (config_dir / name).exists()]
    if not layers:
        raise BadInput(f"{config_dir}: none of {', '.join(names)} is there")
    unread = [Layer(name, read_document(config_dir / name)) for name in FILES_2_5
              if name not in names and (config_dir / name).exists()]
    effective = EffectiveConfig(config_dir, version, layers, env_overrides(environ, env_origin), {}, "",
                                unread_layers=unread)
    embedded = effective.get("etcd.use.embed")
    root_path = effective.get("etcd.rootPath").raw or ""
    if embedded.value is True:
        effective.etcd_state = f"not a source: etcd.use.embed is true ({embedded.source})"
        if etcd is not None:
            try:
                effective.etcd_values = etcd.read_config(root_path)
            except Refused as refusal:
                effective.etcd_state += f"; its keys could not be read ({refusal.message})"
            else:
                effective.etcd_state += (f"; {len(effective.etcd_values)} key(s) under {root_path}/config/ "
                                         f"read from {etcd.url}, which Milvus ignores")
    elif etcd is None:
        effective.etcd_state = "active (etcd.use.embed is false) but not read: give --etcd to see its overrides"
    else:
        effective.etcd_values = etcd.read_config(root_path)
        effective.etcd = {value.formatted: value for value in effective.etcd_values}
        effective.etcd_state = f"read from {etcd.url} ({len(effective.etcd)} override(s) under {root_path}/config/)"
    if check:
        effective.check()
    return effective
