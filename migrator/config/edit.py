"""Plan an edit of Milvus's config: pick the file that wins, change only the lines that must change.

Why line-level and not ruamel's round-trip dump: a round-trip load+dump of Milvus's own milvus.yaml
is not byte-identical (it re-flows `key:  # comment` nulls and spacing, see
docs/decisions/0002-config-edit.md). So ruamel parses, and its node marks (line, column) say
which characters to replace or after which line to insert; every other byte is copied as is.
The result is parsed again and compared key by key before anyone may write it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator.config.keys import (
    KEY_ORDER,
    SECTION_NEIGHBOURS,
    canonical_key,
    format_key,
    render_raw,
    value_error,
)
from migrator.config.layers import EffectiveConfig, Layer
from migrator.config.yamldoc import YamlDocument, parse_document, split_lines
from migrator.errors import BadInput, Refused


@dataclass(frozen=True)
class Refusal:
    """A change the edit cannot make win: an env variable or etcd key overrides the file."""

    key: str
    wanted: object
    kind: str  # env | etcd
    name: str  # variable name or etcd key
    value: str
    origin: str  # where the variable is set, or the etcd endpoint

    @property
    def message(self) -> str:
        if self.kind == "env":
            return (
                f"{self.key}: environment variable {self.name}={self.value} (set in {self.origin}) overrides "
                f"every config file, so writing {render_raw(self.wanted)!r} cannot win; remove {self.name}"
            )
        return (
            f"{self.key}: etcd key {self.name}={self.value} ({self.origin}) overrides every config file, "
            f"so writing {render_raw(self.wanted)!r} cannot win; delete or change that key"
        )

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "kind": self.kind, "name": self.name, "value": self.value, "origin": self.origin,
                "message": self.message}


@dataclass(frozen=True)
class ConfigEdit:
    """A planned edit of one config file. Nothing is written until `write_atomic(edit.target, edit.text)`."""

    target: Path  # the file to write (a symlink is fine: the write edits its target)
    layer: str  # milvus.yaml, user.yaml, ...
    original: str  # the file's text as read
    text: str  # the new text
    diff: str  # unified diff original -> text
    changes: dict[str, object]  # canonical key -> value, as asked
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def raise_if_refused(self) -> None:
        """Refused naming every variable or etcd key that would beat the edit."""
        if self.refusals:
            raise Refused(
                "; ".join(refusal.message for refusal in self.refusals),
                hint="the file edit alone cannot change what Milvus runs with",
            )

    def to_dict(self) -> dict[str, object]:
        return {
            "config_target": str(self.target),
            "layer": self.layer,
            "changes": self.changes,
            "changed": self.changed,
            "diff": self.diff,
            "refusals": [refusal.to_dict() for refusal in self.refusals],
        }


def plan_edit(effective: EffectiveConfig, changes: dict[str, object]) -> ConfigEdit:
    """Plan setting `changes` (dotted key -> value) so that they win in Milvus.

    Keys: `mq.type`, `quotaAndLimits.limitWriting.forceDeny`, any `natsmq.server.*` key (any case).
    The target is the highest-precedence file that sets any of these keys today, else user.yaml
    when it exists, else milvus.yaml: a value written there wins over every other file. An env
    variable or etcd key that overrides a key with a different value is a `Refusal` (the edit is
    still planned, so it can be shown). Values equal to what the files already give are left out.
    Raises BadInput for an unknown key, a value of the wrong type, or a file the edit cannot
    change safely (a multi-line value, a flow mapping, a key spelled twice).
    """
    normalized = _normalize(effective, changes)
    refusals = [refusal for key, value in normalized.items() if (refusal := _refusal(effective, key, value))]
    needed = {key: value for key, value in normalized.items() if not _already_in_files(effective, key, value)}
    layer = _target_layer(effective, normalized)
    document = layer.document
    text = edit_text(document, needed)
    diff = unified_diff(document.text, text, str(document.path))
    return ConfigEdit(layer.path, layer.name, document.text, text, diff, normalized, refusals)


def _normalize(effective: EffectiveConfig, changes: dict[str, object]) -> dict[str, object]:
    normalized: dict[str, object] = {}
    for name, value in changes.items():
        key = canonical_key(name)
        if key is None:
            raise BadInput(f"{name}: not a key this tool edits (mq.type, "
                           "quotaAndLimits.limitWriting.forceDeny, natsmq.server.*)")
        problem = value_error(key, value, effective.mq_types())
        if problem:
            raise BadInput(problem)
        normalized[key] = value
    return normalized


def _refusal(effective: EffectiveConfig, key: str, value: object) -> Refusal | None:
    formatted = format_key(key)
    wanted = render_raw(value)
    if formatted in effective.etcd and effective.etcd[formatted].value.strip() != wanted:
        found = effective.etcd[formatted]
        return Refusal(key, value, "etcd", found.key, found.value, "etcd config source")
    if formatted in effective.env and effective.env[formatted].value.strip() != wanted:
        var = effective.env[formatted]
        return Refusal(key, value, "env", var.name, var.value, var.origin)
    return None


def _already_in_files(effective: EffectiveConfig, key: str, value: object) -> bool:
    found = effective.file_value(key)
    return found is not None and found[1].raw == render_raw(value)


def _target_layer(effective: EffectiveConfig, changes: dict[str, object]) -> Layer:
    setting = [effective.layers.index(found[0]) for key in changes if (found := effective.file_value(key))]
    if setting:
        return effective.layers[max(setting)]
    by_name = {layer.name: layer for layer in effective.layers}
    return by_name.get("user.yaml") or by_name.get("milvus.yaml") or effective.layers[-1]


def unified_diff(before: str, after: str, path: str) -> str:
    """A unified diff that keeps CR/CRLF visible and marks a missing final newline like git does."""
    lines = difflib.unified_diff(split_lines(before), split_lines(after), fromfile=path, tofile=f"{path} (edited)")
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def edit_text(document: YamlDocument, changes: dict[str, object]) -> str:
    """The text of `document` with `changes` (canonical dotted key -> value) applied line by line.

    Checks the result: parsed again, every key not changed keeps its value and every changed
    key has its new one; otherwise BadInput (nothing may be written).
    """
    current = document
    for key, value in changes.items():
        current = parse_document(document.path, _apply(current, key.split("."), value))
    _verify(document, current, changes)
    return current.text


def _verify(before: YamlDocument, after: YamlDocument, changes: dict[str, object]) -> None:
    expected = {name: leaf.raw for name, leaf in before.flat().items()}
    expected.update({format_key(key): render_raw(value) for key, value in changes.items()})
    got = {name: leaf.raw for name, leaf in after.flat().items()}
    if got != expected:
        differing = sorted(set(got.items()) ^ set(expected.items()))
        raise BadInput(f"{before.path}: the edit could not be verified (differs at {differing[:3]}); nothing written")


def _apply(document: YamlDocument, path: list[str], value: object) -> str:
    lines = document.lines
    node = document.root
    if node is None:
        return _append_to_empty(document, lines, path, value)
    depth = 0
    while True:
        found = _find_child(document, node, path[depth])
        if found is None:
            return _insert_missing(document, lines, node, path, depth, value)
        key_node, value_node = found
        if depth == len(path) - 1:
            return _replace_scalar(document, lines, key_node, value_node, value)
        if value_node.id == "mapping":
            node = value_node
            depth += 1
            continue
        if _is_empty(value_node):
            return _insert_under_empty_key(document, lines, key_node, path[depth + 1 :], value)
        _fail_at(document, value_node, f"{'.'.join(path[: depth + 1])} holds a value, expected a section")


def _find_child(document: YamlDocument, node: Any, name: str) -> tuple[Any, Any] | None:
    # Milvus matches keys by their formatted name: `storedir` sets storeDir, so edit that line.
    matches = [(k, v) for k, v in node.value if format_key(k.value) == format_key(name)]
    if len(matches) > 1:
        _fail_at(document, matches[1][0], f"{name} is spelled twice ({matches[0][0].value}, "
                                          f"{matches[1][0].value}); keep one")
    return matches[0] if matches else None


def _is_empty(node: Any) -> bool:
    return node.id == "scalar" and node.tag.endswith(":null") and node.value == ""


def _column(document: YamlDocument, mark: Any) -> int:
    return mark.column + (document.bom_offset if mark.line == 0 else 0)


def _replace_scalar(document: YamlDocument, lines: list[str], key_node: Any, value_node: Any, value: object) -> str:
    if value_node.id != "scalar":
        _fail_at(document, value_node, f"{key_node.value} holds a {value_node.id}, expected a single value")
    rendered = render_scalar(value, value_node.style)
    if _is_empty(value_node):
        # `maxBytes:  # comment`: the value goes right after the colon, the comment keeps its place.
        number = key_node.end_mark.line
        line = lines[number]
        colon = line.index(":", _column(document, key_node.end_mark))
        if rendered:
            lines[number] = f"{line[: colon + 1]} {rendered}{line[colon + 1 :]}"
        return "".join(lines)
    start, end = value_node.start_mark, value_node.end_mark
    if start.line != end.line:
        _fail_at(document, value_node,
                 f"{key_node.value} spans several lines; make it one line to let the tool edit it")
    line = lines[start.line]
    head, tail = line[: _column(document, start)], line[_column(document, end) :]
    if not rendered:
        # Undo what filling an empty value does, so set-then-restore gives the original bytes.
        head = (head.rstrip(" ") if not tail.strip()
                else head[:-1] if head.endswith(("  ", ": ")) else head)
    lines[start.line] = head + rendered + tail
    return "".join(lines)


def render_scalar(value: object, style: str | None = None) -> str:
    """A YAML scalar for `value`: plain when that reads back as the same string, else quoted.

    A string keeps the quote style the old value had.
    """
    if not isinstance(value, str):
        return render_raw(value)
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not _reads_back_plain(value):
        import json

        return json.dumps(value, ensure_ascii=False)
    return value


def _reads_back_plain(text: str) -> bool:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if not text or text != text.strip() or "\n" in text:
        return False
    try:
        root = YAML(typ="safe", pure=False).compose(f"k: {text}\n")
    except YAMLError:
        return False
    node = root.value[0][1]
    return (node.id == "scalar" and node.tag.endswith(":str") and node.value == text
            and node.end_mark.column == 3 + len(text))


def _indent_step(document: YamlDocument) -> int:
    for key_node, value_node in document.root.value if document.root is not None else ():
        if value_node.id == "mapping" and value_node.value and not value_node.flow_style:
            step = value_node.value[0][0].start_mark.column - key_node.start_mark.column
            if step > 0:
                return step
    return 2


def _last_line(key_node: Any, value_node: Any) -> int:
    """0-based index of the last line that belongs to this key and its value."""
    if value_node.id in ("mapping", "sequence") and not value_node.flow_style and value_node.value:
        last = value_node.value[-1]
        return _last_line(*last) if value_node.id == "mapping" else _last_line(last, last)
    if value_node.id == "scalar" and _is_empty(value_node):
        return key_node.end_mark.line
    end = value_node.end_mark
    return end.line if end.column > 0 else end.line - 1


def _block(document: YamlDocument, indent: int, path: list[str], value: object) -> list[str]:
    step, newline = _indent_step(document), document.newline
    rendered = render_scalar(value)
    out = []
    for depth, name in enumerate(path):
        tail = (f" {rendered}" if rendered else "") if depth == len(path) - 1 else ""
        out.append(f"{' ' * (indent + depth * step)}{name}:{tail}{newline}")
    return out


def _insert_after(document: YamlDocument, lines: list[str], index: int, new_lines: list[str]) -> str:
    if index == len(lines) - 1 and lines[-1] == lines[-1].rstrip("\r\n\x85\u2028\u2029"):
        # The file has no final newline: keep it that way, the new last line has none either.
        lines[-1] += document.newline
        new_lines[-1] = new_lines[-1].rstrip("\r\n")
    return "".join(lines[: index + 1] + new_lines + lines[index + 1 :])


def _insert_missing(document: YamlDocument, lines: list[str], node: Any, path: list[str], depth: int,
                    value: object) -> str:
    if node.flow_style:
        _fail_at(document, node, f"cannot add {'.'.join(path)} to a {{...}} mapping; write it in block style")
    rest = path[depth:]
    if depth == 0:
        return _insert_section(document, lines, node, rest, value)
    indent = node.value[0][0].start_mark.column
    parent = ".".join(path[:depth])
    order = next((names for section, names in KEY_ORDER.items() if format_key(section) == format_key(parent)), ())
    present = {format_key(k.value): (k, v) for k, v in node.value}
    wanted = [format_key(name) for name in order]
    position = wanted.index(format_key(rest[0])) if format_key(rest[0]) in wanted else len(wanted)
    predecessors = [present[name] for name in wanted[:position] if name in present]
    if predecessors:
        after = _last_line(*predecessors[-1])
    elif order:
        after = _parent_key_line(document, node)  # first in its section, as Milvus lists it
    else:
        after = _last_line(*node.value[-1])
    return _insert_after(document, lines, after, _block(document, indent, rest, value))


def _parent_key_line(document: YamlDocument, node: Any) -> int:
    """The line of the key that holds `node`, so a first key goes right under its section name."""
    first_key_line = node.value[0][0].start_mark.line
    for number in range(first_key_line - 1, -1, -1):
        stripped = document.lines[number].strip()
        if stripped and not stripped.startswith("#"):
            return number
    return first_key_line - 1


def _insert_section(document: YamlDocument, lines: list[str], root: Any, path: list[str], value: object) -> str:
    present = {format_key(k.value): (k, v) for k, v in root.value}
    neighbour = next((present[format_key(n)] for n in SECTION_NEIGHBOURS.get(path[0], ()) if format_key(n) in present),
                     None)
    after = _last_line(*neighbour) if neighbour else _last_line(*root.value[-1])
    return _insert_after(document, lines, after, [document.newline, *_block(document, 0, path, value)])


def _insert_under_empty_key(document: YamlDocument, lines: list[str], key_node: Any, path: list[str],
                            value: object) -> str:
    indent = key_node.start_mark.column + _indent_step(document)
    return _insert_after(document, lines, key_node.end_mark.line, _block(document, indent, path, value))


def _append_to_empty(document: YamlDocument, lines: list[str], path: list[str], value: object) -> str:
    new_lines = _block(document, 0, path, value)
    if lines:
        return _insert_after(document, lines, len(lines) - 1, new_lines)
    return "".join(new_lines)


def _fail_at(document: YamlDocument, node: Any, message: str) -> None:
    mark = node.start_mark
    raise BadInput(f"{document.path}:{mark.line + 1}:{_column(document, mark) + 1}: {message}")
