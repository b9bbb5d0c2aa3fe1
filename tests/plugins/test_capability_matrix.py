"""Every built-in technique on every tested model family: fits and trains, or is refused.

A pair the capability graph accepts (with the facts derived from the tiny model
of that family) trains one step, saves and reloads on a fresh base to the same
outputs; a pair it refuses is refused by `resolve` (before any run folder
exists) with the graph's reasons. The whole matrix runs with `-m matrix`; a
slice of it runs by default.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins import capability_matrix as cm

#: the default run's slice: a derived encoder, QLoRA on a decoder, decoder classification,
#: seq2seq, and two refusals (Conv1D layers; attention without key/value prefixes)
SLICE = [
    ("electra", "loha"),
    ("llama", "qlora"),
    ("llama-cls", "lora"),
    ("bart", "ia3"),
    ("gpt2", "loha"),
    ("deberta-v2", "prefix_tuning"),
]
ROWS = {row[0]: row for row in cm.ROWS}


@pytest.fixture(scope="module")
def kernel():
    return cm.kernel()


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny models of every family, built on first use."""

    class Lazy(dict):
        def __missing__(self, family: str) -> Path:
            from sdk.testing import build_tiny_family

            folder = build_tiny_family(tmp_path_factory.mktemp(f"tiny-{family}"), family)
            self[family] = folder
            return folder

    return Lazy()


def check_pair(kernel, family_dirs, row_name: str, technique: str, tmp_path: Path) -> None:
    row = ROWS[row_name]
    outcome = cm.run_case(kernel, row, technique, family_dirs, tmp_path / "adapter")
    if outcome.fits:
        assert outcome.changed, f"{row_name} x {technique}: one step changed no trained weight"
        assert outcome.max_difference is not None and outcome.max_difference < 1e-5, (
            f"{row_name} x {technique}: reloaded outputs differ by {outcome.max_difference}"
        )
    else:
        assert_refused_before_a_run(kernel, row, technique, family_dirs, outcome.reasons)


def assert_refused_before_a_run(kernel, row, technique, family_dirs, reasons) -> None:
    from engine.model_facts import derived_manifest
    from kernel.errors import IncompatibleError
    from kernel.recipe import PluginChoice, Recipe, resolve

    _name, model_id, family, task = row
    recipe = Recipe(
        dataset=PluginChoice(id=cm.DATASETS[task]),
        model=PluginChoice(id=model_id, params=cm.model_params(family, family_dirs)),
        technique=PluginChoice(id=technique),
    )
    with pytest.raises(IncompatibleError) as refused:
        resolve(recipe, kernel.snapshot, kernel.graph(), derive_facts=derived_manifest)
    assert any(reason in str(refused.value) for reason in reasons), (refused.value, reasons)


@pytest.mark.parametrize(("row_name", "technique"), SLICE, ids=[f"{r}-{t}" for r, t in SLICE])
def test_matrix_slice(kernel, family_dirs, row_name: str, technique: str, tmp_path: Path) -> None:
    check_pair(kernel, family_dirs, row_name, technique, tmp_path)


def test_slice_refusals_give_their_reasons(kernel, family_dirs) -> None:
    gpt2 = cm.run_case(kernel, ROWS["gpt2"], "loha", family_dirs, Path("unused"))
    assert gpt2.reasons == ["loha: adapts linear layers; model gpt2's layers are conv1d"]
    deberta = cm.run_case(kernel, ROWS["deberta-v2"], "prefix_tuning", family_dirs, Path("unused"))
    assert deberta.reasons == ["prefix_tuning: needs a model that provides 'past-key-values'"]


MATRIX = [(row[0], technique) for row in cm.ROWS for technique in cm.TECHNIQUES]


@pytest.mark.matrix
@pytest.mark.parametrize(("row_name", "technique"), MATRIX, ids=[f"{r}-{t}" for r, t in MATRIX])
def test_matrix(kernel, family_dirs, row_name: str, technique: str, tmp_path: Path) -> None:
    check_pair(kernel, family_dirs, row_name, technique, tmp_path)
