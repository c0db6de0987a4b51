"""The config files through a migration: four named states, computed once, before the first write.

    original          as found
    isolated-source   original, clients isolated (proxy.port private, proxy.http.enabled false)
    isolated-target   the MQ switched (mq.type, natsmq.server.*), clients isolated
    final-target      the MQ switched, clients back: the original plus the plan's changes

Clients are isolated on every restart the tool makes until the new MQ is proven to carry Milvus
(docs/decisions/0008-isolate-clients-on-every-restart.md). Each state is a text per file the
migration touches, computed from the files as found, saved under `<state_dir>/config-states/<run>/`
and recorded with its sha256 in the journal: a resumed run writes the same bytes, and a write
refuses a file that is in none of the run's states (someone edited it meanwhile).
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from migrator.config import EffectiveConfig, plan_edit
from migrator.config.edit import edit_text
from migrator.config.keys import PROXY_HTTP, PROXY_PORT
from migrator.config.yamldoc import parse_document
from migrator.errors import NotRolledBack

ORIGINAL = "original"
ISOLATED_SOURCE = "isolated-source"
ISOLATED_TARGET = "isolated-target"
FINAL_TARGET = "final-target"
STATES = (ORIGINAL, ISOLATED_SOURCE, ISOLATED_TARGET, FINAL_TARGET)
MARK = "config_states"  # the journal mark that records them


class ConfigChangedMeanwhile(NotRolledBack):
    """A config file is in none of the states this run wrote: someone else edited it."""


def isolation_changes(private_port: int) -> dict[str, Any]:
    return {PROXY_PORT: private_port, PROXY_HTTP: False}


def free_port() -> int:
    """A port nothing listens on, on any interface: Milvus binds its client port on all of them."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ConfigStates:
    """file path -> state name -> text; and the private client port of the isolated states."""

    texts: dict[str, dict[str, str]]
    private_port: int

    @classmethod
    def compute(cls, effective: EffectiveConfig, changes: Mapping[str, Any], private_port: int) -> "ConfigStates":
        """From the files as found. Refused (naming the variable or etcd key) when an override would
        beat either edit: the switch would not happen, or clients would not be isolated."""
        switch = plan_edit(effective, dict(changes))
        isolate = plan_edit(effective, isolation_changes(private_port))
        switch.raise_if_refused()
        isolate.raise_if_refused()
        texts: dict[str, dict[str, str]] = {}
        for edit in (switch, isolate):
            texts.setdefault(str(edit.target), {ORIGINAL: edit.original})
        for path, states in texts.items():
            original = states[ORIGINAL]
            switched = switch.text if path == str(switch.target) else original
            states[ISOLATED_SOURCE] = isolate.text if path == str(isolate.target) else original
            states[FINAL_TARGET] = switched
            if path == str(isolate.target):
                isolated = edit_text(parse_document(Path(path), switched), isolation_changes(private_port))
                states[ISOLATED_TARGET] = isolated
            else:
                states[ISOLATED_TARGET] = switched
        return cls(texts, private_port)

    def save(self, directory: Path) -> dict[str, Any]:
        """Write every state's text into `directory`; what the journal records of them."""
        from migrator.util.files import write_bytes_atomic

        recorded: dict[str, Any] = {"private_port": self.private_port, "files": {}}
        for number, (path, states) in enumerate(sorted(self.texts.items())):
            entry = {}
            for name, text in states.items():
                copy = directory / f"{number}-{Path(path).name}.{name}"
                write_bytes_atomic(copy, text.encode("utf-8"))
                entry[name] = {"copy": str(copy), "sha256": sha256_text(text)}
            recorded["files"][path] = entry
        return recorded

    @classmethod
    def load(cls, recorded: Mapping[str, Any]) -> "ConfigStates":
        texts: dict[str, dict[str, str]] = {}
        for path, entry in recorded["files"].items():
            texts[path] = {}
            for name, saved in entry.items():
                text = Path(saved["copy"]).read_text(encoding="utf-8")
                if sha256_text(text) != saved["sha256"]:
                    raise NotRolledBack(f"{saved['copy']}: the saved {name} config does not match its sha256",
                                        hint=f"restore {path} by hand from the copies in {Path(saved['copy']).parent}")
                texts[path][name] = text
        return cls(texts, int(recorded["private_port"]))

    def state_of(self, path: str, text: str) -> str | None:
        for name in STATES:
            if self.texts[path][name] == text:
                return name
        return None

    def diff(self, name: str) -> str:
        from migrator.config.edit import unified_diff

        return "".join(unified_diff(states[ORIGINAL], states[name], path) for path, states in sorted(self.texts.items()))

    def write(self, name: str, writer: Any) -> list[str]:
        """Bring every file to state `name` with `writer(path, text)`; the files it wrote."""
        written = []
        for path, states in sorted(self.texts.items()):
            try:
                current = Path(path).read_text(encoding="utf-8")
            except OSError as error:
                raise ConfigChangedMeanwhile(f"{path}: cannot read it ({error.strerror or error})") from None
            if current == states[name]:
                continue
            if self.state_of(path, current) is None:
                raise ConfigChangedMeanwhile(
                    f"{path} changed since this run wrote it (it is in none of the run's config states)",
                    hint="see `milvus-migrate status`; put the file back as the run left it, or restore the "
                         f"original from {Path(path).name}.original in the run's config-states dir")
            writer(Path(path), states[name])
            written.append(path)
        return written
