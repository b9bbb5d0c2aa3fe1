"""Fuzzing the manifest validator: whatever the input, only ManifestError comes out."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.errors import ManifestError
from kernel.manifest import load_manifest, manifest_errors
from tests.kernel.bundles import technique_manifest

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = list(technique_manifest()) + ["model", "dataset", "params", "provides", "paper"]


@st.composite
def mutated_manifests(draw) -> dict:
    """A valid manifest with some fields replaced, removed or added at random."""
    manifest = technique_manifest()
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        action = draw(st.sampled_from(["replace", "delete"]))
        if action == "delete":
            manifest.pop(field, None)
        else:
            manifest[field] = draw(values)
    if draw(st.booleans()):
        manifest["params"] = draw(st.dictionaries(st.text(max_size=8), values, max_size=3))
    return manifest


@settings(max_examples=300, deadline=None)
@given(st.one_of(mutated_manifests(), values))
def test_validator_only_reports_manifest_errors(data) -> None:
    problems = manifest_errors(data, Path("plugin.yaml"))
    assert all(isinstance(p, ManifestError) for p in problems)
    for problem in problems:
        assert problem.path == "plugin.yaml" and problem.message


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(mutated_manifests(), values, st.text(max_size=200)))
def test_load_manifest_raises_only_manifest_error(data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plugin.yaml"
        text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        try:
            manifest = load_manifest(path)
        except ManifestError as exc:
            assert exc.path == str(path)
        else:
            assert manifest.kind in ("technique", "model", "dataset", "trainer")
