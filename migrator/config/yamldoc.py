"""One YAML config file, parsed for reading and for editing by position.

The file is composed (not constructed) with ruamel.yaml: nodes keep their start and end marks
(line, column), which is all a line-level edit needs, and composing with the C parser is several
times faster than a round-trip load. Every problem is a BadInput naming file:line:col.

Bounded and unambiguous: a file over CONFIG_LIMIT, a FIFO or a device is refused before parsing;
aliases (`*name`) and merge keys (`<<`) are refused, since a line-level edit of a value defined
elsewhere would change every key sharing it (and an alias bomb expands exponentially); two keys
that Milvus reads as one (`type` and `Type`: it ignores case, `_` and `.`) are refused, since
which one it reads is the order of a Go map walk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator.config.keys import format_key
from migrator.errors import BadInput
from migrator.util.files import MIB, read_bounded

# milvus.yaml is ~40 KB; a config file 100 times that is not one Milvus was given on purpose.
CONFIG_LIMIT = 4 * MIB
MAX_DEPTH = 64  # Milvus's own files nest 6 deep
MERGE_TAG = "tag:yaml.org,2002:merge"

# The line breaks YAML (and so the marks' line numbers) count.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


@dataclass(frozen=True)
class Leaf:
    """A scalar (or a sequence, which Milvus joins with commas) at a dotted key."""

    key: str  # dotted, as spelled in the file
    raw: str  # the string Milvus sees
    line: int  # 1-based, of the key
    column: int  # 1-based, of the key
    node: Any = field(repr=False, compare=False)
    key_node: Any = field(repr=False, compare=False)


@dataclass
class YamlDocument:
    """A parsed config file: its exact text, its lines and its node tree (None when empty)."""

    path: Path
    text: str
    root: Any  # ruamel MappingNode or None

    @property
    def lines(self) -> list[str]:
        """The lines with their own line endings, so that ''.join(lines) == text."""
        return split_lines(self.text)

    @property
    def newline(self) -> str:
        """The file's line ending: the first one it uses, '\\n' for a one-line file."""
        found = _LINE_BREAK.search(self.text)
        return found.group(0) if found else "\n"

    @property
    def bom_offset(self) -> int:
        # libyaml does not count a byte-order mark in columns; Python strings do.
        return 1 if self.text.startswith("\ufeff") else 0

    def leaves(self) -> Iterator[Leaf]:
        """Every leaf, depth first, in file order."""
        if self.root is not None:
            yield from _walk(self.root, ())

    def flat(self) -> dict[str, Leaf]:
        """Leaves by Milvus's formatted key; a later duplicate (by format) wins, as in a Go map merge."""
        return {format_key(leaf.key): leaf for leaf in self.leaves()}


def split_lines(text: str) -> list[str]:
    lines: list[str] = []
    start = 0
    for match in _LINE_BREAK.finditer(text):
        lines.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        lines.append(text[start:])
    return lines


def read_document(path: Path) -> YamlDocument:
    """Read and parse `path`; BadInput for an unreadable file, bad encoding or bad YAML."""
    data = read_bounded(path, CONFIG_LIMIT, what="config file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(f"{path}: not UTF-8 (byte {error.start})") from None
    return parse_document(path, text)


def parse_document(path: Path, text: str) -> YamlDocument:
    """Parse `text` (as read from `path`): a mapping, no duplicate keys, no tabs in indentation."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        root = YAML(typ="safe", pure=False).compose(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = error.problem or error.context or "invalid YAML"
        if "\t" in text and "cannot start any token" in problem:
            problem += " (a tab? YAML indents with spaces only)"
        raise BadInput(f"{where}: invalid YAML: {problem}") from None
    except YAMLError as error:
        raise BadInput(f"{path}: invalid YAML: {error}") from None
    except RecursionError:
        raise BadInput(f"{path}: invalid YAML: nested deeper than Python can parse") from None
    if root is not None and root.id != "mapping":
        raise BadInput(
            f"{path}:{root.start_mark.line + 1}:{root.start_mark.column + 1}: the top level must be a mapping of "
            f"sections, not a {root.id}"
        )
    document = YamlDocument(path=path, text=text, root=root)
    if root is not None:
        _check_duplicates(document, root)
    return document


def _check_duplicates(document: YamlDocument, root: Any) -> None:
    """Refuse what Milvus would read differently from this tool: an alias or a merge key, a key
    that is not a plain name, a duplicate key, two keys Milvus formats alike, nesting past MAX_DEPTH."""
    seen_nodes: set[int] = set()
    formatted: dict[str, Any] = {}
    # Iterative depth-first walk: a deeply nested file must not exhaust Python's stack.
    pending: list[tuple[Any, tuple[str, ...], Any]] = [(root, (), None)]
    while pending:
        node, prefix, key_node = pending.pop()
        if id(node) in seen_nodes:
            _raise_at(document, key_node if key_node is not None else node,
                      f"{'.'.join(prefix) or 'a value'} holds a YAML alias (*name): aliases are not "
                      "supported in a config file the tool reads and edits; write the value out")
        seen_nodes.add(id(node))
        if len(prefix) > MAX_DEPTH:
            _raise_at(document, node, f"nested more than {MAX_DEPTH} levels deep")
        if node.id == "sequence":
            pending.extend((item, prefix, key_node) for item in reversed(node.value))
            continue
        if node.id != "mapping":
            continue
        names: dict[str, Any] = {}
        children = []
        for child_key, value_node in node.value:
            if child_key.tag == MERGE_TAG or (child_key.id == "scalar" and child_key.value == "<<"
                                              and not child_key.style):
                _raise_at(document, child_key, "a YAML merge key (<<) is not supported in a config file the tool "
                          "reads and edits; write the keys out")
            if child_key.id != "scalar":
                _raise_at(document, child_key, "a key must be a plain name")
            name = child_key.value
            if name in names:
                first = names[name].start_mark.line + 1
                _raise_at(document, child_key, f"duplicate key {'.'.join((*prefix, name))} (first at line {first})")
            names[name] = child_key
            path = (*prefix, name)
            if value_node.id != "mapping":
                key = format_key(".".join(path))
                if key in formatted:
                    other = formatted[key]
                    _raise_at(document, child_key,
                              f"{'.'.join(path)} is spelled twice ({other[0]} at line {other[1].start_mark.line + 1}): "
                              "Milvus ignores case, '_' and '.' in keys and reads one of them at random; keep one")
                formatted[key] = (".".join(path), child_key)
            children.append((value_node, path, child_key))
        pending.extend(reversed(children))


def _raise_at(document: YamlDocument, node: Any, message: str) -> None:
    mark = node.start_mark
    raise BadInput(f"{document.path}:{mark.line + 1}:{mark.column + 1}: {message}")


def _walk(node: Any, prefix: tuple[str, ...]) -> Iterator[Leaf]:
    for key_node, value_node in node.value:
        path = (*prefix, key_node.value)
        if value_node.id == "mapping":
            yield from _walk(value_node, path)
            continue
        yield Leaf(
            key=".".join(path),
            raw=_raw(value_node),
            line=key_node.start_mark.line + 1,
            column=key_node.start_mark.column + 1,
            node=value_node,
            key_node=key_node,
        )


def _raw(node: Any) -> str:
    """The string Milvus's `cast.ToString` makes of a YAML value."""
    if node.id == "sequence":
        return ",".join(_raw(item) for item in node.value if item.id == "scalar")
    if node.tag.endswith(":null"):
        return ""
    if node.tag.endswith(":bool"):
        return "true" if node.value.lower() == "true" else "false"
    if node.tag.endswith(":int"):
        try:
            return str(int(node.value.replace("_", ""), 0))
        except ValueError:
            return node.value
    return node.value
