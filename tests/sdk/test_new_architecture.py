"""docs/sdk.md's worked example of a model for a new architecture: ELECTRA from a local folder.

No built-in bundle names ELECTRA; the bundle in examples/electra-model states its
facts, and the built-in techniques fit it and train on it with no edit to them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.testing import build_tiny_family, check_bundle
from tests.plugins import capability_matrix as cm
from tests.sdk.common import EXAMPLES, peftlab

BUNDLE = EXAMPLES / "electra-model"
NAMED = ["lora", "ia3", "loha", "lokr", "vera", "adalora", "prompt_tuning", "full"]
DEFAULT_RUN = {"loha", "prompt_tuning"}  # the rest with -m matrix


def test_the_bundle_is_valid() -> None:
    check_bundle(BUNDLE, strict=True)


def test_graph_lists_the_builtin_techniques_as_fitting(clean_env: dict[str, str]) -> None:
    shown = peftlab("--plugins-dir", str(BUNDLE), "graph", "--format", "json", env=clean_env)
    assert shown.returncode == 0, shown.stderr
    edges = {
        e["source"]: e for e in json.loads(shown.stdout)["edges"] if e["target"] == "model/electra"
    }
    techniques = {s.split("/", 1)[1]: e for s, e in edges.items() if s.startswith("technique/")}
    for technique in NAMED + ["qlora", "adapter", "head_only", "p_tuning", "prefix_tuning"]:
        assert techniques[technique]["ok"], (technique, techniques[technique]["reasons"])


@pytest.fixture(scope="module")
def electra_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {"electra": build_tiny_family(tmp_path_factory.mktemp("electra"), "electra")}


@pytest.mark.parametrize(
    "technique",
    [t if t in DEFAULT_RUN else pytest.param(t, marks=pytest.mark.matrix) for t in NAMED],
)
def test_trains_with_the_builtin_technique_unchanged(
    technique: str, electra_dir: dict[str, Path], tmp_path: Path
) -> None:
    kernel = cm.kernel(BUNDLE)
    row = ("electra-bundle", "electra", "electra", "sequence-classification")
    outcome = cm.run_case(kernel, row, technique, electra_dir, tmp_path / "adapter")
    assert outcome.fits and outcome.changed, outcome
    assert outcome.max_difference is not None and outcome.max_difference < 1e-5
