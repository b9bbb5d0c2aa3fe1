"""`peftlab plugin new KIND NAME`: write a working bundle folder to start from.

Templates live in authoring/templates/<kind>/ (plus common/ for every kind); each file
is named as its output plus `.txt`, and `{{ name }}` placeholders are filled in.
What comes out passes `peftlab plugin validate` and trains as generated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kernel.errors import PeftlabError
from kernel.manifest import KINDS

TEMPLATES = Path(__file__).resolve().parent / "templates"
NAME_RE = re.compile(r"^[a-z0-9_-]+$")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

#: each kind's module is named for the kind: technique.py, model.py, ...
MODULE_FILES = {kind: f"{kind}.py" for kind in KINDS}
SUMMARIES = {
    "technique": "low-rank adapters (LoRA via peft) on the chosen model's default target modules.",
    "model": "a BERT encoder from a local folder or a hub id, built with transformers Auto classes.",
    "dataset": "short reviews labelled negative or positive, shipped as two small CSV files.",
    "trainer": "a plain PyTorch training loop for sequence classification.",
}
USAGE = {
    "technique": "    $ peftlab --plugins-dir . train --technique {id}\n",
    "model": "    $ peftlab --plugins-dir . train --model {id} --set model.name_or_path=PATH_OR_HUB_ID\n",
    "dataset": "    $ peftlab --plugins-dir . train --dataset {id}\n",
    "trainer": "    $ peftlab --plugins-dir . train --trainer {id} --set trainer.max_steps=50\n",
}


class ScaffoldError(PeftlabError):
    """A `plugin new` request that cannot be carried out (bad kind or name, folder in use)."""


@dataclass(frozen=True)
class Names:
    """Every spelling of the bundle's name the templates use."""

    id: str
    kind: str

    @property
    def module_name(self) -> str:
        return self.id.replace("-", "_")

    @property
    def class_name(self) -> str:
        words = [w for w in re.split(r"[-_]+", self.id) if w]
        name = "".join(w[:1].upper() + w[1:] for w in words)
        return name if name[:1].isalpha() else self.kind.title() + name

    @property
    def title(self) -> str:
        return " ".join(w[:1].upper() + w[1:] for w in re.split(r"[-_]+", self.id) if w)

    def values(self, files: list[str]) -> dict[str, str]:
        return {
            "id": self.id,
            "kind": self.kind,
            "module_name": self.module_name,
            "class_name": self.class_name,
            "title": self.title,
            "module_file": MODULE_FILES[self.kind],
            "summary": SUMMARIES[self.kind],
            "usage": USAGE[self.kind].format(id=self.id),
            "tree": "\n".join(f"  {f}" for f in files),
        }


def check_request(kind: str, name: str) -> None:
    """Refuse an unknown kind or a name that cannot be a bundle id, saying what would do."""
    if kind not in KINDS:
        raise ScaffoldError(
            f"unknown kind '{kind}'; choose one of: {', '.join(KINDS)}", field="kind"
        )
    if not NAME_RE.match(name):
        raise ScaffoldError(
            f"'{name}' cannot be a plugin name: use lowercase letters, digits, '-' and '_' "
            "(it becomes the bundle id and folder name)",
            field="name",
        )


def render(text: str, values: dict[str, str], source: Path) -> str:
    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"{source}: unknown placeholder {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER.sub(substitute, text)


def template_files(kind: str) -> list[tuple[Path, str]]:
    """(template file, output path relative to the bundle) for a kind, sorted."""
    found = []
    for root in (TEMPLATES / kind, TEMPLATES / "common"):
        for path in sorted(root.rglob("*.txt")):
            found.append((path, str(path.relative_to(root).with_suffix("").as_posix())))
    return found


def new_bundle(kind: str, name: str, directory: Path | str = ".") -> Path:
    """Write DIRECTORY/NAME as a working bundle of KIND and return its path."""
    check_request(kind, name)
    target = Path(directory).expanduser() / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        what = "folder is not empty" if target.is_dir() else "path exists and is not a folder"
        raise ScaffoldError(f"will not overwrite: the {what}", path=target)
    names = Names(name, kind)
    files = template_files(kind)
    outputs = [render(rel, names.values([]), source) for source, rel in files]
    values = names.values(sorted(outputs))
    target.mkdir(parents=True, exist_ok=True)
    for (source, _), rel in zip(files, outputs, strict=True):
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(source.read_text(encoding="utf-8"), values, source), encoding="utf-8")
    return target
