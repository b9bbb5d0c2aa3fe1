"""Manifest parsing and validation: every bad manifest names its file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernel.config import BUILTIN_PLUGINS, SCHEMA_FILE
from kernel.errors import ManifestError
from kernel.manifest import load_manifest
from kernel.schema import render
from tests.kernel.bundles import technique_manifest, write_bundle


def test_every_builtin_manifest_is_valid() -> None:
    manifests = sorted(BUILTIN_PLUGINS.rglob("plugin.yaml"))
    assert len(manifests) >= 10
    for path in manifests:
        manifest = load_manifest(path)
        assert manifest.id == path.parent.name


def test_committed_schema_matches_the_models() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), "run: python -m kernel.schema"
    schema = json.loads(SCHEMA_FILE.read_text())
    assert set(schema["required"]) >= {"id", "kind", "name", "version", "api", "entry"}


def test_schema_accepts_builtins_and_rejects_unknown_fields() -> None:
    import jsonschema
    import yaml

    schema = json.loads(SCHEMA_FILE.read_text())
    for path in BUILTIN_PLUGINS.rglob("plugin.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    bad = technique_manifest(colour="blue")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


BAD_MANIFESTS = [
    ("not yaml", "id: x\nname: [unclosed\nkind: technique\n", None, "not valid YAML"),
    ("a list", "- id: x\n", None, "must be a mapping"),
    (
        "missing name",
        {k: v for k, v in technique_manifest().items() if k != "name"},
        "name",
        "Field required",
    ),
    ("wrong type", technique_manifest(api="one"), "api", "integer"),
    ("unknown kind", technique_manifest(kind="gadget"), "kind", "technique"),
    ("bad id", technique_manifest(id="Has Spaces"), "id", "[a-z0-9_-]+"),
    ("entry outside", technique_manifest(entry="../x:y"), "entry", "outside"),
    ("entry absolute", technique_manifest(entry="/etc/passwd:y"), "entry", "outside"),
    ("unknown field", technique_manifest(colour="blue"), "colour", "unknown field"),
    (
        "bad param type",
        technique_manifest(params={"r": {"type": "complex"}}),
        "params.r.type",
        "int",
    ),
    (
        "min above max",
        technique_manifest(params={"r": {"type": "int", "default": 1, "min": 5, "max": 2}}),
        "params.r",
        "greater than max",
    ),
    (
        "choice without options",
        technique_manifest(params={"m": {"type": "choice", "default": "a"}}),
        "params.m",
        "options",
    ),
    ("model without section", technique_manifest(kind="model"), None, "model:"),
    ("unsupported api", technique_manifest(api=7), "api", "not supported"),
]


@pytest.mark.parametrize(
    ("case", "content", "field", "message"), BAD_MANIFESTS, ids=[c[0] for c in BAD_MANIFESTS]
)
def test_bad_manifest_names_file_and_field(
    tmp_path: Path, case: str, content, field, message
) -> None:
    folder = write_bundle(tmp_path, "bad", content)
    with pytest.raises(ManifestError) as info:
        load_manifest(folder / "plugin.yaml")
    error = info.value
    assert error.path == str(folder / "plugin.yaml")
    assert message in str(error)
    if field is not None:
        assert error.field == field
    if case == "not yaml":
        assert error.line is not None and error.line >= 2


def test_all_problems_are_collected(tmp_path: Path) -> None:
    manifest = technique_manifest(api="x", colour="blue")
    del manifest["name"]
    folder = write_bundle(tmp_path, "bad", manifest)
    with pytest.raises(ManifestError) as info:
        load_manifest(folder / "plugin.yaml")
    fields = {p.field for p in info.value.problems}
    assert fields == {"api", "colour", "name"}


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no plugin.yaml"):
        load_manifest(tmp_path / "plugin.yaml")
    (tmp_path / "plugin.yaml").write_bytes(b"id: caf\xe9\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        load_manifest(tmp_path / "plugin.yaml")


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path, "evil", "!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest(folder / "plugin.yaml")
