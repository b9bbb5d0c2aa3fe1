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
