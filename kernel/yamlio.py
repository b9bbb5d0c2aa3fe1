"""Reading YAML that people (or attackers) wrote: safe, bounded, errors naming the file.

A few hundred bytes of YAML can expand to billions of nodes through aliases
("billion laughs"): PyYAML builds every copy, so loading one exhausts memory.
Here the document is composed first (linear in the text), its size is counted
with every alias expanded, and only a document under the bound is constructed.
Recipes, manifests and run folders are all read through `load_yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kernel.errors import PeftlabError

#: nodes a document may have once every alias is expanded (real recipes and manifests
#: have a few hundred; an alias bomb has billions)
MAX_EXPANDED_NODES = 100_000


class AliasBombError(yaml.YAMLError):
    """A document whose aliases expand beyond MAX_EXPANDED_NODES (or refer to themselves)."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


def expanded_size(root: yaml.Node, limit: int = MAX_EXPANDED_NODES) -> int:
    """Nodes of `root` with every alias expanded; AliasBombError past `limit` or on a cycle."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)  # an alias is the very node object its anchor made
        if key in sizes:
            return sizes[key]
        if key in active:
            raise AliasBombError("an alias refers to the node that contains it", node.start_mark)
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > limit:
                raise AliasBombError(
                    f"aliases expand it beyond {limit:,} nodes; write the values out",
                    node.start_mark,
                )
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


def parse_bounded(text: str, loader: type) -> Any:
    """yaml.load(text, Loader=loader), refusing alias bombs before building anything."""
    instance = loader(text)
    try:
        node = instance.get_single_node()
        if node is None:
            return None
        expanded_size(node)
        return instance.construct_document(node)
    finally:
        instance.dispose()


def default_loader() -> type:
    """The manifest loader (safe, duplicate keys refused)."""
    from kernel.manifest import UniqueKeyFastLoader  # imported late: manifest reads through here

    return UniqueKeyFastLoader


def load_yaml(
    text: str | bytes,
    path: str | Path | None,
    *,
    error: type[PeftlabError] = PeftlabError,
    loader: type | None = None,
) -> Any:
    """Parse YAML safely; every problem (syntax, duplicate keys, an alias bomb, bytes that are
    not UTF-8) is raised as `error` naming `path` and the line."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(
                f"not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8", path=path
            ) from None
    try:
        return parse_bounded(text, loader or default_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(
            f"not valid YAML: {problem}", path=path, line=mark.line + 1 if mark else None
        ) from None
    except RecursionError:  # nesting thousands deep
        raise error("not valid YAML: nested too deeply", path=path) from None


def read_yaml(path: Path, *, error: type[PeftlabError] = PeftlabError) -> Any:
    """load_yaml of a file's bytes (FileNotFoundError is left to the caller)."""
    return load_yaml(Path(path).read_bytes(), path, error=error)
