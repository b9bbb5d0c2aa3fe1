"""The capability graph: edges from manifests, reasons for every missing edge."""

from __future__ import annotations

import sys
from pathlib import Path

from kernel.capabilities import missing_package
from tests.kernel.bundles import technique_manifest, write_bundle


def test_builtin_graph_offers_lora_and_full_on_minilm(make_kernel) -> None:
    graph = make_kernel(builtin=True).graph()
    options = graph.options("technique", {"model": "minilm", "dataset": "demo"})
    assert options["lora"] == [] and options["full"] == []
    assert (
        graph.check(
            {"dataset": "demo", "model": "minilm", "technique": "lora", "trainer": "hf_trainer"}
        )
        == []
    )


def test_reasons_for_incompatible_pairs(make_kernel, tmp_path: Path) -> None:
    write_bundle(
        tmp_path, "bert_only", technique_manifest("bert_only", requires={"architectures": ["bert"]})
    )
    write_bundle(
        tmp_path,
        "gen_only",
        technique_manifest("gen_only", requires={"tasks": ["causal-lm"]}),
    )
    write_bundle(
        tmp_path,
        "needs_pkg",
        technique_manifest("needs_pkg", requires={"packages": ["surely-not-installed-pkg>=1"]}),
    )
    write_bundle(
        tmp_path,
        "needs_quant",
        technique_manifest("needs_quant", requires={"provides": ["teleport"]}),
    )
    graph = make_kernel(tmp_path, builtin=True).graph()
    options = graph.options("technique", {"model": "distilbert", "dataset": "demo"})
    assert options["bert_only"] == ["bert_only: architecture distilbert not supported"]
    assert "gen_only: task sequence-classification not supported" in options["gen_only"]
    assert any("surely-not-installed-pkg>=1 (not installed)" in r for r in options["needs_pkg"])
    assert options["needs_quant"] == ["needs_quant: needs a model that provides 'teleport'"]
    assert options["lora"] == []
    text = graph.to_text()
    assert "not with model/distilbert: bert_only: architecture distilbert not supported" in text
    dot = graph.to_dot()
    assert (
        '"technique/lora" -- "model/minilm"' in dot or '"model/minilm" -- "technique/lora"' in dot
    )


def test_missing_package_checks_versions_without_importing() -> None:
    assert missing_package("pyyaml>=1") is None
    assert "installed:" in missing_package("pyyaml<1")
    assert "not installed" in missing_package("surely-not-installed-pkg")
    before = set(sys.modules)
    missing_package("scikit-learn>=1")
    assert "sklearn" not in set(sys.modules) - before


def _model(bundle_id: str, **facts: object) -> dict:
    section = {"architecture": bundle_id, "tasks": ["sequence-classification"], **facts}
    return technique_manifest(
        bundle_id, kind="model", entry="technique:Echo", requires={}, params={}, model=section
    )


def test_reasons_speak_in_facts_layers_features_exclusions(make_kernel, tmp_path: Path) -> None:
    write_bundle(tmp_path, "convnet", _model("convnet", layer_kinds=["conv1d"]))
    write_bundle(tmp_path, "plain", _model("plain"))  # layer_kinds default: linear
    linear_only = {"tasks": ["sequence-classification"], "layers": ["linear"]}
    write_bundle(tmp_path, "lin", technique_manifest("lin", requires=linear_only))
    excluded = {"excludes": [{"architecture": "plain", "reason": "Plain has no heads."}]}
    write_bundle(tmp_path, "picky", technique_manifest("picky", requires=excluded))
    write_bundle(tmp_path, "any", technique_manifest("any", requires={}))
    graph = make_kernel(tmp_path).graph()
    assert graph.check({"model": "convnet", "technique": "lin"}) == [
        "lin: adapts linear layers; model convnet's layers are conv1d"
    ]
    assert graph.check({"model": "plain", "technique": "lin"}) == []
    assert graph.check({"model": "plain", "technique": "picky"}) == [
        "picky: excluded for architecture plain: Plain has no heads."
    ]
    assert graph.check({"model": "convnet", "technique": "picky"}) == []
    assert graph.check({"model": "convnet", "technique": "any"}) == []


def test_legacy_allow_list_still_honoured(make_kernel, tmp_path: Path) -> None:
    write_bundle(tmp_path, "plain", _model("plain"))
    write_bundle(tmp_path, "old", technique_manifest("old"))  # architectures: [bert]
    graph = make_kernel(tmp_path).graph()
    assert graph.check({"model": "plain", "technique": "old"}) == [
        "old: architecture plain not supported"
    ]


def test_builtin_techniques_name_no_architecture(make_kernel) -> None:
    snapshot = make_kernel(builtin=True).snapshot
    for bundle in snapshot.of_kind("technique"):
        assert bundle.manifest.requires.architectures == [], bundle.manifest.id
    graph = make_kernel(builtin=True).graph()
    assert graph.check({"model": "gpt2", "technique": "loha"}) == [
        "loha: adapts linear layers; model gpt2's layers are conv1d"
    ]


def test_derived_facts_are_checked_before_a_run_exists(make_kernel, tmp_path: Path) -> None:
    """A model whose facts are derived fits by its assumed facts, then is checked with the
    derived ones the caller supplies; the kernel itself derives nothing."""
    from kernel.capabilities import with_facts
    from kernel.errors import IncompatibleError
    from kernel.recipe import PluginChoice, Recipe, resolve

    kernel = make_kernel(builtin=True)
    recipe = Recipe(
        dataset=PluginChoice(id="demo"),
        model=PluginChoice(id="hf", params={"name_or_path": "/some/gpt2"}),
        technique=PluginChoice(id="loha"),
    )
    seen: list[dict] = []

    def derive(bundle, params):
        seen.append(params)
        facts = {"architecture": "gpt2", "layer_kinds": ["conv1d"]}
        return with_facts(bundle.manifest, facts, ["quantizable"])

    assert resolve(recipe, kernel.snapshot, kernel.graph()).plugins["model"].bundle.key == (
        "model",
        "hf",
    )
    try:
        resolve(recipe, kernel.snapshot, kernel.graph(), derive_facts=derive)
    except IncompatibleError as exc:
        assert "loha: adapts linear layers; model hf (gpt2)'s layers are conv1d" in str(exc)
    else:
        raise AssertionError("loha on a Conv1D model was not refused")
    assert seen and seen[0]["name_or_path"] == "/some/gpt2"
