"""Run management: a run's display name, notes and tags (meta.json), and deleting a run.

The run folder's name stays its id (the CLI, reports and other runs refer to it);
renaming sets the name shown for it. meta.json is written atomically, so a
reader never sees half of it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel.errors import RunError
from kernel.runs import RunFolder, atomic_write_json

META_FILE = "meta.json"


@dataclass
class RunMeta:
    """What a person wrote about a run; nothing here changes how it trained."""

    name: str = ""
    notes: str = ""
    tags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "notes": self.notes, "tags": list(self.tags)}


def read_meta(run: RunFolder) -> RunMeta:
    try:
        data = json.loads((run.path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return RunMeta()
    if not isinstance(data, dict):
        return RunMeta()
    tags = data.get("tags")
    return RunMeta(
        name=str(data.get("name") or ""),
        notes=str(data.get("notes") or ""),
        tags=[str(t) for t in tags] if isinstance(tags, list) else [],
    )


def parse_tags(text: str) -> list[str]:
    """Comma-separated tags, trimmed, without empties or repeats, in the order given."""
    tags: list[str] = []
    for part in text.split(","):
        tag = part.strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def update_meta(
    run: RunFolder,
    *,
    name: str | None = None,
    notes: str | None = None,
    tags: list[str] | None = None,
) -> RunMeta:
    """Change the given fields of a run's meta.json; the others keep their values."""
    if not (run.path / "recipe.yaml").is_file():
        raise RunError("not a run folder", path=run.path)
    meta = read_meta(run)
    if name is not None:
        meta.name = name.strip()
    if notes is not None:
        meta.notes = notes
    if tags is not None:
        meta.tags = parse_tags(",".join(tags))
    atomic_write_json(run.path / META_FILE, meta.as_dict())
    return meta


def display_name(run: RunFolder) -> str:
    """The name a person gave the run, else its id."""
    return read_meta(run).name or run.id


def delete_run(run: RunFolder) -> None:
    """Remove a run folder for good; refused while its training process is alive."""
    from engine.queue import dequeue, is_live

    if not (run.path / "recipe.yaml").is_file():
        raise RunError("not a run folder", path=run.path)
    if is_live(run):
        raise RunError("the run is still training; cancel it first", path=run.path)
    dequeue(run)
    shutil.rmtree(run.path)


def matches(row: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """A runs-table row passes when each filtered column holds one of the chosen values;
    the `tags` filter passes a row that carries any chosen tag."""
    for column, wanted in filters.items():
        if not wanted:
            continue
        value = row.get(column)
        if column == "tags":
            if not set(wanted) & set(value or []):
                return False
        elif value not in wanted:
            return False
    return True


def exists(path: Path) -> bool:
    return (path / "recipe.yaml").is_file()
