"""Params are checked, and recipes resolved, before any model is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.config import RECIPES_DIR
from kernel.errors import IncompatibleError, ParamError, RecipeError, UnknownPluginError
from kernel.params import complete_params, parse_cli_value
from kernel.recipe import Recipe, load_recipe, resolve


@pytest.fixture
def kernel(make_kernel):
    return make_kernel(builtin=True)


def lora(kernel):
    return kernel.get("technique", "lora").manifest


def test_defaults_are_filled_and_values_normalised(kernel) -> None:
    params = complete_params(
        lora(kernel), {"r": 16.0, "dropout": 0}, model=kernel.get("model", "minilm").manifest
    )
    assert params["r"] == 16 and isinstance(params["r"], int)
    assert params["dropout"] == 0.0 and isinstance(params["dropout"], float)
    assert params["target_modules"] == "auto" and params["bias"] == "none"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"r": "eight"}, "r", "expected an integer"),
        ({"r": 0}, "r", "below the minimum 1"),
        ({"r": 1000}, "r", "above the maximum 256"),
        ({"dropout": True}, "dropout", "got a boolean"),
        ({"use_dora": "yes"}, "use_dora", "expected true or false"),
        ({"bias": "some"}, "bias", "not one of: none, all, lora_only"),
        (
            {"rank": 8},
            "rank",
            "unknown parameter(s) rank; valid: alpha, bias, corda_method, dropout",
        ),
        ({"target_modules": []}, "target_modules", "at least one"),
    ],
)
def test_bad_values_are_refused_with_valid_choices(kernel, values, field, message) -> None:
    with pytest.raises(ParamError) as info:
        complete_params(lora(kernel), values)
    assert info.value.field == field
    assert message in str(info.value)


def test_cli_values_parse_like_yaml() -> None:
    assert parse_cli_value("16") == 16
    assert parse_cli_value("1e-3") == 0.001
    assert parse_cli_value("q_lin") == "q_lin"
    assert parse_cli_value("0.001") == 0.001
    assert parse_cli_value("true") is True
    assert parse_cli_value("[query, value]") == ["query", "value"]


def test_default_recipe_resolves(kernel) -> None:
    recipe = load_recipe(RECIPES_DIR / "default.yaml")
    resolved = resolve(recipe, kernel.snapshot, kernel.graph())
    record = resolved.as_record()
    assert record["technique"]["id"] == "lora" and record["technique"]["params"]["r"] == 8
    assert Path(record["model"]["path"]).name == "minilm"
    assert len(record["dataset"]["content_hash"]) == 64


def test_overrides_swap_plugins_and_set_params(kernel) -> None:
    recipe = load_recipe(RECIPES_DIR / "default.yaml").with_overrides(
        {"technique": "full", "model": None}, ["trainer.epochs=2", "dataset.max_length=32"]
    )
    assert recipe.technique.id == "full" and recipe.technique.params == {}
    resolved = resolve(recipe, kernel.snapshot, kernel.graph())
    assert resolved.plugins["trainer"].params["epochs"] == 2.0
    assert resolved.plugins["dataset"].params["max_length"] == 32


def test_resolution_errors_name_the_kind(kernel) -> None:
    base = load_recipe(RECIPES_DIR / "default.yaml")
    with pytest.raises(UnknownPluginError, match="available: .*lora"):
        resolve(base.with_overrides({"technique": "nope"}, []), kernel.snapshot, kernel.graph())
    with pytest.raises(ParamError) as info:
        resolve(base.with_overrides({}, ["technique.r=-1"]), kernel.snapshot, kernel.graph())
    assert info.value.field == "technique.r"
    with pytest.raises(RecipeError, match="KIND.PARAM=VALUE"):
        base.with_overrides({}, ["r=4"])


def test_incompatible_recipe_is_refused(kernel, tmp_path: Path) -> None:
    recipe = Recipe.model_validate(
        {"dataset": {"id": "demo"}, "model": {"id": "minilm"}, "technique": {"id": "lora"}}
    )
    snapshot = kernel.snapshot
    graph = kernel.graph()
    graph.nodes[("technique", "lora")] = graph.nodes[("technique", "lora")].model_copy(
        update={
            "requires": graph.nodes[("technique", "lora")].requires.model_copy(
                update={"architectures": ["t5"]}
            )
        }
    )
    with pytest.raises(IncompatibleError, match="architecture bert not supported"):
        resolve(recipe, snapshot, graph)


def test_bad_recipe_files(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("dataset: {id: demo}\nmodel: {id: minilm}\n")
    with pytest.raises(RecipeError, match="technique"):
        load_recipe(tmp_path / "r.yaml")
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")
