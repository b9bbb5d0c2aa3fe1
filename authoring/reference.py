"""The manifest reference in docs/sdk.md, generated from kernel.manifest's models.

`python -m authoring.reference --write` rewrites every generated block of docs/sdk.md:

- between `<!-- BEGIN GENERATED REFERENCE -->` and `<!-- END GENERATED REFERENCE -->`:
  one table per manifest section, built from the JSON Schema (types, enums,
  required) and the pydantic fields (descriptions, defaults);
- between `<!-- BEGIN INCLUDE <source> -->` and `<!-- END INCLUDE -->`: the file
  `<source>` (relative to the project root) in a code fence, or, for
  `scaffold:<kind>:<name>/<file>`, what `peftlab plugin new` writes there.

`--check` exits 1 when the file differs from what would be written; a test does the same.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kernel.config import PROJECT_ROOT
from kernel.manifest import (
    API_VERSION,
    KINDS,
    PARAM_TYPES,
    TASKS,
    DatasetFacts,
    Manifest,
    ModelFacts,
    ParamSpec,
    Requirements,
    WeightsSource,
)
from kernel.schema import manifest_json_schema

DOC_FILE = PROJECT_ROOT / "docs" / "sdk.md"
BEGIN = "<!-- BEGIN GENERATED REFERENCE -->"
END = "<!-- END GENERATED REFERENCE -->"
_INCLUDE = re.compile(
    r"(?P<begin><!-- BEGIN INCLUDE (?P<source>\S+) -->\n).*?(?P<end><!-- END INCLUDE -->)",
    re.DOTALL,
)
_FENCE_LANGUAGES = {".py": "python", ".yaml": "yaml", ".toml": "toml", ".cfg": "ini", ".csv": "csv"}

# (heading, model, how the section is reached from the top of plugin.yaml)
SECTIONS: tuple[tuple[str, type[BaseModel], str], ...] = (
    ("plugin.yaml", Manifest, ""),
    ("requires", Requirements, "requires."),
    ("params.NAME", ParamSpec, "params.NAME."),
    ("model", ModelFacts, "model."),
    ("model.weights", WeightsSource, "model.weights."),
    ("dataset", DatasetFacts, "dataset."),
)


def render_reference() -> str:
    """The Markdown of the generated reference block (without the markers)."""
    schema = manifest_json_schema()
    definitions = schema["$defs"]
    out = [
        f"Generated from `kernel/manifest.py` (manifest api {API_VERSION}) by "
        "`python -m authoring.reference --write`; do not edit by hand. The same models produce "
        "`manifests/plugin.schema.json`, which editors can use for completion.",
        "",
        f"- kinds: {_codes(KINDS)}",
        f"- tasks: {_codes(TASKS)}",
        f"- param types: {_codes(PARAM_TYPES)}",
    ]
    for heading, model, prefix in SECTIONS:
        section = schema if model is Manifest else definitions[model.__name__]
        out += ["", f"### `{heading}`", "", (model.__doc__ or "").strip(), ""]
        out += ["| field | type | required / default | description |", "|---|---|---|---|"]
        required = set(section.get("required", []))
        for name, prop in section["properties"].items():
            field = model.model_fields[name]
            description = field.description or _referenced_doc(prop, definitions)
            default = field.get_default(call_default_factory=True)
            need = "**required**" if name in required else _default(default)
            out.append(f"| `{prefix}{name}` | {_type(prop)} | {need} | {_cell(description)} |")
    return "\n".join(out) + "\n"


def _codes(values: tuple[str, ...]) -> str:
    return ", ".join(f"`{v}`" for v in values)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _referenced_doc(prop: dict[str, Any], definitions: dict[str, Any]) -> str:
    ref = _ref_name(prop) or _ref_name(prop.get("additionalProperties") or {})
    return definitions[ref].get("description", "") if ref else ""


def _ref_name(prop: dict[str, Any]) -> str | None:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[1]
    for option in prop.get("anyOf", []):
        if "$ref" in option:
            return option["$ref"].rsplit("/", 1)[1]
    return None


def _type(prop: dict[str, Any]) -> str:
    """A JSON Schema property in the words an author uses."""
    if "$ref" in prop:
        return f"section `{_section_name(prop['$ref'].rsplit('/', 1)[1])}`"
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        options = [o for o in prop["anyOf"] if o.get("type") != "null"]
        return " or ".join(_type(o) for o in options)
    kind = prop.get("type")
    if kind == "array":
        item = _type(prop.get("items", {}))
        least = f" (at least {prop['minItems']})" if prop.get("minItems") else ""
        return f"list of {item}{least}"
    if kind == "object":
        values = prop.get("additionalProperties")
        if isinstance(values, dict) and _ref_name(values):
            return f"mapping of name to `{_section_name(_ref_name(values) or '')}`"
        return "mapping"
    names = {"string": "text", "integer": "integer", "number": "number", "boolean": "bool"}
    if kind in names:
        return names[kind]
    return "any"


def _section_name(model_name: str) -> str:
    for heading, model, _ in SECTIONS:
        if model.__name__ == model_name:
            return heading
    return model_name


def _default(value: Any) -> str:
    if value is None:
        return "optional"
    if isinstance(value, BaseModel):
        return "optional (its defaults)"
    return f"`{json.dumps(value)}`"


# --- the document -----------------------------------------------------------------------


def render_include(source: str) -> str:
    """A code fence holding a project file, or a file `peftlab plugin new` writes."""
    if source.startswith("scaffold:"):
        from authoring.scaffold import new_bundle

        _, kind, rest = source.split(":", 2)
        name, _, relative = rest.partition("/")
        with tempfile.TemporaryDirectory() as tmp:
            text = (new_bundle(kind, name, tmp) / relative).read_text(encoding="utf-8")
    else:
        relative = source
        text = (PROJECT_ROOT / source).read_text(encoding="utf-8")
    language = _FENCE_LANGUAGES.get(Path(relative).suffix, "")
    return f"```{language}\n{text.rstrip()}\n```\n"


def update_document(text: str) -> str:
    """The document with every generated block brought up to date."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"the document has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    text = f"{head}{BEGIN}\n{render_reference()}{END}{tail}"
    return _INCLUDE.sub(
        lambda m: m.group("begin") + render_include(m.group("source")) + m.group("end"), text
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--write", action="store_true", help="update the document in place")
    parser.add_argument("--check", action="store_true", help="exit 1 if the document is stale")
    parser.add_argument("--file", type=Path, default=DOC_FILE, help="default: docs/sdk.md")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        sys.stdout.write(render_reference())
        return 0
    current = args.file.read_text(encoding="utf-8")
    wanted = update_document(current)
    if args.check:
        if current != wanted:
            print(f"{args.file} is out of date; run: python -m authoring.reference --write")
            return 1
        print(f"{args.file} is up to date")
        return 0
    if current != wanted:
        args.file.write_text(wanted, encoding="utf-8")
        print(f"wrote {args.file}")
    else:
        print(f"{args.file} already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
