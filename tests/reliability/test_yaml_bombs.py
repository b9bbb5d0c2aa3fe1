"""YAML alias bombs: recipes, manifests and run folders refuse them, naming the file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kernel.errors import ManifestError, PeftlabError, RecipeError, RunError
from tests.reliability.builders import peftlab


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A few hundred bytes that expand to width**levels nodes."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_a_bomb_is_refused_in_milliseconds_naming_the_file() -> None:
    from kernel.yamlio import load_yaml

    text = alias_bomb()
    assert len(text) < 1000
    started = time.perf_counter()
    with pytest.raises(PeftlabError, match=r"bomb\.yaml:\d+: .*aliases expand it beyond"):
        load_yaml(text, "bomb.yaml")
    assert time.perf_counter() - started < 2


def test_small_aliases_and_merges_still_work() -> None:
    from kernel.yamlio import load_yaml

    data = load_yaml("base: &b {r: 8}\nuse: {<<: *b, alpha: 16}\nlist: [*b, *b]\n", "ok.yaml")
    assert data["use"] == {"r": 8, "alpha": 16} and data["list"] == [{"r": 8}] * 2


def test_a_self_referencing_alias_is_refused() -> None:
    from kernel.yamlio import load_yaml

    with pytest.raises(PeftlabError, match="refers to the node that contains it"):
        load_yaml("a: &a [1, *a]\n", "loop.yaml")


def test_recipe_manifest_and_run_folder_refuse_a_bomb(tmp_path: Path) -> None:
    from kernel.manifest import load_manifest
    from kernel.recipe import load_recipe
    from kernel.runs import RunFolder

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(alias_bomb(), encoding="utf-8")
    with pytest.raises(RecipeError, match="recipe.yaml"):
        load_recipe(recipe)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "plugin.yaml").write_text("id: x\nkind: technique\n" + alias_bomb(), encoding="utf-8")
    with pytest.raises(ManifestError, match="plugin.yaml"):
        load_manifest(bundle / "plugin.yaml")
    run = RunFolder.create(tmp_path / "runs", "bomb")
    run.recipe_file.write_text(alias_bomb(), encoding="utf-8")
    with pytest.raises(RunError, match="aliases expand"):
        run.recipe()


def test_cli_refuses_bombs_in_recipes_and_bundles(tmp_path: Path) -> None:
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(alias_bomb(), encoding="utf-8")
    result = peftlab(tmp_path, "train", "--recipe", str(recipe), timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "bomb.yaml" in result.stderr and "aliases expand" in result.stderr
    bundle = tmp_path / "plugins" / "bomb"
    bundle.mkdir(parents=True)
    (bundle / "plugin.yaml").write_text(
        "id: bomb\nkind: technique\n" + alias_bomb(), encoding="utf-8"
    )
    result = peftlab(tmp_path, "plugins", "validate", str(bundle), timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "aliases expand" in result.stdout + result.stderr


def test_non_utf8_recipe_is_one_line(tmp_path: Path) -> None:
    recipe = tmp_path / "latin1.yaml"
    recipe.write_bytes("name: caf\xe9\n".encode("latin-1"))
    result = peftlab(tmp_path, "train", "--recipe", str(recipe), timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "latin1.yaml: not UTF-8" in result.stderr
