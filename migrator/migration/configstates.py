"""The config files through a migration: named states, computed once, before the first write.

    original          as found
    isolated-source   original, clients isolated (proxy.port private, proxy.http.enabled false)
    isolated-target   the MQ switched (mq.type, natsmq.server.*), clients isolated
    held-source       original, automatic compaction held off
    held-target       the MQ switched, automatic compaction held off
    final-target      the MQ switched, clients back: the original plus the plan's changes

A run behind port isolation uses the isolated states (decision 0008), one behind the firewall gate
the held ones (decision 0022): compaction is held off while stored-row counts are compared across
the switch, since it drops deleted rows from them. Each state is a text per file the
migration touches, computed from the files as found, saved under `<state_dir>/config-states/<run>/`
and recorded with its sha256 in the journal: a resumed run writes the same bytes, and a write
refuses a file that is in none of the run's states (someone edited it meanwhile).
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from migrator.config import EffectiveConfig, plan_edit
from migrator.config.edit import edit_text
from migrator.config.keys import AUTO_COMPACTION, PROXY_HTTP, PROXY_PORT
from migrator.config.yamldoc import CONFIG_LIMIT, parse_document
from migrator.errors import BadInput, NotRolledBack
from migrator.util.files import child_path, read_bounded

ORIGINAL = "original"
ISOLATED_SOURCE = "isolated-source"
ISOLATED_TARGET = "isolated-target"
HELD_SOURCE = "held-source"
HELD_TARGET = "held-target"
FINAL_TARGET = "final-target"
STATES = (ORIGINAL, ISOLATED_SOURCE, ISOLATED_TARGET, HELD_SOURCE, HELD_TARGET, FINAL_TARGET)
CONFIG_STATES_DIR = "config-states"  # under the state dir, one directory per run


class _Recorded(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class SavedState(_Recorded):
    copy_path: str = Field(alias="copy")  # the file holding the state's text, in the run's config-states dir
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class RecordedConfigStates(_Recorded):
    """What the journal records of the states (its `config_states` mark): data to check, never a
    list of files to write (ConfigStates.load checks it against the playbook)."""

    private_port: int = Field(ge=1, le=65535)
    files: dict[str, dict[str, SavedState]]  # config file -> state name -> its saved copy

    @field_validator("files")
    @classmethod
    def _every_state(cls, files: dict[str, dict[str, SavedState]]) -> dict[str, dict[str, SavedState]]:
        for path, states in files.items():
            if sorted(states) != sorted(STATES):
                raise ValueError(f"{path}: the states must be {', '.join(STATES)}")
        return files


def states_dir(state_dir: Path, run_id: str) -> Path:
    """`<state_dir>/config-states/<run_id>`, refused when the run id would lead elsewhere."""
    return child_path(Path(state_dir) / CONFIG_STATES_DIR, run_id, what="run_id")


class ConfigChangedMeanwhile(NotRolledBack):
    """A config file is in none of the states this run wrote: someone else edited it."""


def isolation_changes(private_port: int) -> dict[str, Any]:
    return {PROXY_PORT: private_port, PROXY_HTTP: False}


def hold_changes() -> dict[str, Any]:
    return {AUTO_COMPACTION: False}


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
    def compute(cls, effective: EffectiveConfig, changes: Mapping[str, Any], private_port: int) -> ConfigStates:
        """From the files as found. Refused (naming the variable or etcd key) when an override would
        beat an edit: the switch would not happen, clients would not be isolated, or compaction
        would not be held."""
        switch = plan_edit(effective, dict(changes))
        overlays = {(ISOLATED_SOURCE, ISOLATED_TARGET): isolation_changes(private_port),
                    (HELD_SOURCE, HELD_TARGET): hold_changes()}
        edits = {names: plan_edit(effective, overlay) for names, overlay in overlays.items()}
        for edit in (switch, *edits.values()):
            edit.raise_if_refused()
        texts: dict[str, dict[str, str]] = {}
        for edit in (switch, *edits.values()):
            texts.setdefault(str(edit.target), {ORIGINAL: edit.original})
        for path, states in texts.items():
            original = states[ORIGINAL]
            switched = switch.text if path == str(switch.target) else original
            states[FINAL_TARGET] = switched
            for (on_source, on_target), edit in edits.items():
                overlaid = path == str(edit.target)
                states[on_source] = edit.text if overlaid else original
                states[on_target] = (edit_text(parse_document(Path(path), switched), overlays[on_source, on_target])
                                     if overlaid else switched)
        return cls(texts, private_port)

    def save(self, directory: Path) -> RecordedConfigStates:
        """Write every state's text into `directory`; what the journal records of them."""
        from migrator.util.files import write_bytes_atomic

        files: dict[str, dict[str, SavedState]] = {}
        for number, (path, states) in enumerate(sorted(self.texts.items())):
            entry = {}
            for name, text in states.items():
                copy = directory / f"{number}-{Path(path).name}.{name}"
                write_bytes_atomic(copy, text.encode("utf-8"))
                entry[name] = SavedState(copy=str(copy), sha256=sha256_text(text))
            files[path] = entry
        return RecordedConfigStates(private_port=self.private_port, files=files)

    @classmethod
    def load(cls, recorded: RecordedConfigStates, *, directory: Path, config_files: set[str],
             where: str) -> ConfigStates:
        """The states a journal (`where`) recorded, read back from their copies. BadInput, before
        anything is written, unless every file is one of `config_files` (the config layers of the
        operator's playbook) and every copy lies inside `directory` (the run's config-states dir)."""
        texts: dict[str, dict[str, str]] = {}
        for path, entry in recorded.files.items():
            if path not in config_files:
                raise BadInput(f"{where}: marks.config_states.files names {path!r}, which is not a config file "
                               f"of the playbook ({', '.join(sorted(config_files)) or 'none'})",
                               hint="this journal is not of this deployment: move it aside")
            texts[path] = {}
            for name, saved in entry.items():
                copy = child_path(directory.parent, directory.name, Path(saved.copy_path).name,
                                  what=f"{where}: marks.config_states copy")
                if Path(saved.copy_path) != copy:
                    raise BadInput(f"{where}: marks.config_states copy {saved.copy_path!r} is not in {directory}",
                                   hint="this journal is not of this deployment: move it aside")
                text = read_bounded(copy, CONFIG_LIMIT, what="saved config state").decode("utf-8", "replace")
                if sha256_text(text) != saved.sha256:
                    raise NotRolledBack(f"{copy}: the saved {name} config does not match its sha256",
                                        hint=f"restore {path} by hand from the copies in {directory}")
                texts[path][name] = text
        return cls(texts, recorded.private_port)

    def state_of(self, path: str, text: str) -> str | None:
        for name in STATES:
            if self.texts[path][name] == text:
                return name
        return None

    def diff(self, name: str) -> str:
        from migrator.config.edit import unified_diff

        return "".join(unified_diff(states[ORIGINAL], states[name], path)
                       for path, states in sorted(self.texts.items()))

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
