"""Milvus's environment source: which variable overrides which key.

Milvus formats every variable's name like a key (lower-case, a leading `milvus.` cut, `/`, `_`,
`.` removed) and a variable wins over the files when the formatted names are equal:
`MQ_TYPE` and `MQTYPE` set `mq.type`, `MILVUS_MQ_TYPE` sets nothing (`milvus_` is not `milvus.`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from migrator.config.keys import format_key
from migrator.errors import BadInput
from migrator.util.files import MIB, read_bounded

ENV_FILE_LIMIT = 1 * MIB  # a page of KEY=VALUE lines


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    origin: str  # where it is set: "environment" or an env file's path


def env_overrides(environ: Mapping[str, str], origin: str = "environment") -> dict[str, EnvVar]:
    """Variables by the formatted key they override; on a tie the last one in `environ` wins."""
    return {format_key(name): EnvVar(name, value, origin) for name, value in environ.items()}


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines (docker --env-file, systemd EnvironmentFile, compose .env).

    Blank lines and `#` comments are skipped, `export ` is allowed, one pair of surrounding
    quotes is removed. A line without `=` is BadInput naming file:line.
    """
    raw = read_bounded(path, ENV_FILE_LIMIT, what="env file")  # a regular file, never a FIFO or /dev/zero
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(f"{path}: cannot read env file: {error}") from None
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :].lstrip()
        name, sep, value = stripped.partition("=")
        name = name.strip()
        if not sep or not name or any(ch.isspace() for ch in name):
            raise BadInput(f"{path}:{number}: expected NAME=VALUE, got {line.strip()!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        variables[name] = value
    return variables
