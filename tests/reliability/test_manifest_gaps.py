"""Bad manifests and recipes beyond tests/kernel/test_manifest.py: repeated keys, repeated ids
in one folder. (Not YAML, not a mapping, missing field, wrong type, unknown kind and entries
outside the bundle are covered there; duplicate ids across folders in
tests/kernel/test_discovery_registry.py.)"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

from kernel.errors import ManifestError, RecipeError
from kernel.manifest import load_manifest
from kernel.recipe import load_recipe
from kernel.registry import DuplicateBundleWarning, describe_status
from tests.reliability.builders import kernel_for, technique_bundle

ECHO = "from sdk import Technique\n\n\nclass T(Technique):\n    def apply(self, model, ctx):\n        return model\n"


def test_a_key_given_twice_in_a_manifest_is_refused_with_its_line(tmp_path: Path) -> None:
    folder = technique_bundle(tmp_path, "twice", ECHO)
    text = (folder / "plugin.yaml").read_text()
    # a second params block would silently replace the first with a plain YAML load
    text += "params:\n  r: {type: int, default: 4}\n  r: {type: int, default: 8}\n"
    (folder / "plugin.yaml").write_text(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(folder / "plugin.yaml")
    assert info.value.path == str(folder / "plugin.yaml")
    assert "not valid YAML: duplicate key 'r'" in str(info.value)
    assert info.value.line == len(text.splitlines())


def test_a_repeated_top_level_id_is_refused(tmp_path: Path) -> None:
    folder = technique_bundle(tmp_path, "first", ECHO)
    (folder / "plugin.yaml").write_text((folder / "plugin.yaml").read_text() + "id: second\n")
    with pytest.raises(ManifestError, match="duplicate key 'id'"):
        load_manifest(folder / "plugin.yaml")


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    folder = technique_bundle(tmp_path, "merged", ECHO)
    text = (folder / "plugin.yaml").read_text() + (
        "params:\n"
        "  r: &int_param {type: int, default: 4, min: 1}\n"
        "  alpha:\n    <<: *int_param\n    default: 8\n"
    )
    (folder / "plugin.yaml").write_text(text)
    params = load_manifest(folder / "plugin.yaml").params
    assert (params["r"].default, params["alpha"].default, params["alpha"].min) == (4, 8, 1)


def test_a_key_given_twice_in_a_recipe_is_refused(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: twice\ndataset: {id: demo}\nmodel: {id: minilm}\n"
        "technique: {id: lora}\ntechnique: {id: full}\n"
    )
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe)
    assert "duplicate key 'technique'" in str(info.value) and info.value.line == 5


def test_two_bundles_with_one_id_in_one_folder(tmp_path: Path) -> None:
    """Same priority: the first path in sorted order wins, every time, and both are named."""
    for folder in ("b_copy", "a_original"):
        technique_bundle(tmp_path / "plugins", folder, ECHO)
        manifest = tmp_path / "plugins" / folder / "plugin.yaml"
        data = yaml.safe_load(manifest.read_text())
        data.update(id="same", version="2.0.0" if folder == "b_copy" else "1.0.0")
        manifest.write_text(yaml.safe_dump(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kernel = kernel_for(tmp_path / "plugins", builtin=False)
    winner = kernel.get("technique", "same")
    assert winner.path.name == "a_original" and winner.manifest.version == "1.0.0"
    (message,) = {str(w.message) for w in caught if w.category is DuplicateBundleWarning}
    assert "a_original" in message and "b_copy" in message
    statuses = {Path(r["path"]).name: r["status"] for r in describe_status(kernel.snapshot)}
    assert statuses["a_original"] == "ok"
    assert statuses["b_copy"].startswith("shadowed by ")
