"""The sweep's search space: parsed, typed and bounded by the built-in manifests' params."""

from __future__ import annotations

import optuna
import pytest

from engine.space import as_sets, bind, parse_search
from kernel.errors import ParamError
from kernel.recipe import PluginChoice, Recipe


@pytest.fixture
def recipe() -> Recipe:
    return Recipe(
        dataset=PluginChoice(id="demo"),
        model=PluginChoice(id="minilm"),
        technique=PluginChoice(id="lora"),
    )


def test_values_and_ranges_are_typed_by_the_declared_param(kernel, recipe):
    space = bind(
        ["technique.r=4,8,16", "trainer.learning_rate=1e-4..1e-2:log", "technique.alpha=8..32"],
        recipe,
        kernel.snapshot,
    )
    r, lr, alpha = space.params
    assert r.values == (4, 8, 16) and not r.is_range
    assert (lr.low, lr.high, lr.log, lr.integer) == (1e-4, 1e-2, True, False)
    assert alpha.integer and not alpha.log
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = space.suggest(study.ask())
        assert values["technique.r"] in (4, 8, 16)
        assert 1e-4 <= values["trainer.learning_rate"] <= 1e-2
        assert isinstance(values["technique.alpha"], int) and 8 <= values["technique.alpha"] <= 32
    sets = as_sets(values)
    applied = recipe.with_overrides({}, sets)
    assert applied.technique.params["r"] == values["technique.r"]
    assert applied.trainer.params["learning_rate"] == values["trainer.learning_rate"]


@pytest.mark.parametrize(
    ("search", "field", "words"),
    [
        ("technique.r=4,300", "technique.r", "above the maximum 256"),
        ("technique.r=0..16", "technique.r", "below the minimum 1"),
        ("trainer.learning_rate=1e-4..2:log", "trainer.learning_rate", "above the maximum 1"),
        ("technique.bias=none,some", "technique.bias", "'some' is not one of"),
        ("technique.rank=4,8", "technique.rank", "has no param 'rank'"),
        ("technique.bias=0..1", "technique.bias", "needs a number param"),
        ("technique.r=2.5..8", "technique.r", "not an integer"),
    ],
)
def test_a_value_outside_the_declaration_is_refused_naming_param_and_bound(
    kernel, recipe, search, field, words
):
    with pytest.raises(ParamError) as caught:
        bind([search], recipe, kernel.snapshot)
    assert caught.value.field == field
    assert words in caught.value.message
    assert str(caught.value).startswith(f"--search [{field}]: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "r=4,8",
        "technique.r",
        "technique.r=",
        "technique.r=8..4",
        "trainer.learning_rate=0..1:log",
        "technique.r=4,8:log",
    ],
)
def test_malformed_searches_are_refused(text):
    with pytest.raises(ParamError):
        parse_search(text)


def test_every_problem_is_listed_and_a_grid_refuses_ranges(kernel, recipe):
    with pytest.raises(ParamError) as caught:
        bind(["technique.r=999", "technique.dropout=2.0"], recipe, kernel.snapshot)
    assert len(caught.value.problems) == 2
    space = bind(["technique.r=4,8", "trainer.learning_rate=1e-4..1e-2"], recipe, kernel.snapshot)
    with pytest.raises(ParamError, match="grid sweep needs listed values"):
        space.grid()
    grid = bind(
        ["technique.r=4,8", "trainer.learning_rate=1e-3,2e-3,5e-3"], recipe, kernel.snapshot
    )
    assert grid.grid_size() == 6
    assert grid.grid() == {"technique.r": [4, 8], "trainer.learning_rate": [1e-3, 2e-3, 5e-3]}
