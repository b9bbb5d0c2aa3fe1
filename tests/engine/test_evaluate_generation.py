"""engine.evaluate on generation runs: two LoRA runs of a tiny GPT-2 (one base, adapters
switched), BERTScore checked against a direct bert-score computation with the same model
and layer, and the trainer's own BERTScore, ROUGE and perplexity reproduced.
"""

from __future__ import annotations

import pytest

from engine.evaluate import DataSource, EvaluateOptions, evaluate_runs
from kernel import Kernel, KernelConfig
from sdk.scoring import DEFAULT_MINILM_LAYER, shipped_minilm
from tests.plugins.test_generation import FAST, execute, make_run, save_tiny_gpt2


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    kernel = Kernel(KernelConfig(use_entry_points=False, use_env_path=False))
    kernel.discover()
    model_dir = save_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))
    runs_dir = tmp_path_factory.mktemp("gen-runs")
    made = []
    for seed in (1, 2):
        run = make_run(kernel, runs_dir, "gpt2", model_dir, "lora", trainer={"seed": seed})
        execute(run)
        made.append(run)
    return made


def validation(run, limit: int = 0) -> DataSource:
    record = run.recipe()["dataset"]
    # one seed for every run: the bundle samples its validation rows with it
    return DataSource(dataset=record, split="validation", limit=limit, seed=1)


def test_bertscore_matches_bert_score_and_the_trainers_scores(runs):
    from bert_score import score

    first = runs[0]
    results = first.results()
    assert results["bertscore_model"] == str(shipped_minilm())
    assert results["bertscore_layer"] == DEFAULT_MINILM_LAYER
    assert results["bertscore_samples"] == FAST["rouge_samples"]

    rows = FAST["rouge_samples"]  # the rows the trainer scored
    got = evaluate_runs([first], validation(first, rows), EvaluateOptions(), write=False)[0]
    assert got.scorer == {"model": str(shipped_minilm()), "layer": DEFAULT_MINILM_LAYER}
    # bert-score scores an empty output 0 (and its own path for one fails on transformers 5)
    kept = [o for o in got.outputs if o.output.strip()]
    assert kept, "the tiny model generated nothing to score"
    assert all(o.bertscore_f1 == 0.0 for o in got.outputs if not o.output.strip())
    precision, recall, f1 = score(
        [o.output for o in kept],
        [o.reference for o in kept],
        model_type=str(shipped_minilm()),
        num_layers=DEFAULT_MINILM_LAYER,
    )
    share = len(kept) / len(got.outputs)
    assert got.metrics["bertscore_f1"] == pytest.approx(float(f1.mean()) * share, abs=1e-6)
    assert got.metrics["bertscore_precision"] == pytest.approx(
        float(precision.mean()) * share, abs=1e-6
    )
    assert got.metrics["bertscore_recall"] == pytest.approx(float(recall.mean()) * share, abs=1e-6)
    assert [o.bertscore_f1 for o in kept] == pytest.approx(f1.tolist(), abs=1e-6)
    # the same greedy generations as the trainer's evaluation: the same scores
    assert got.metrics["bertscore_f1"] == pytest.approx(results["bertscore_f1"], abs=1e-6)
    for key in ("rouge1", "rouge2", "rougeL"):
        assert got.metrics[key] == pytest.approx(results[key], abs=1e-6)
    assert got.intervals["bertscore_f1"].low <= got.metrics["bertscore_f1"]


def test_perplexity_of_the_whole_split_matches_the_trainers(runs):
    first = runs[0]
    got = evaluate_runs([first], validation(first), EvaluateOptions(bertscore=False), write=False)
    assert got[0].metrics["perplexity"] == pytest.approx(first.results()["perplexity"], rel=1e-4)
    assert got[0].scorer is None and "bertscore_f1" not in got[0].metrics
    assert 0.0 <= got[0].metrics["exact_match"] <= 1.0


def test_runs_on_one_base_share_it_and_score_as_alone(runs):
    options = EvaluateOptions(bertscore=False)
    together = evaluate_runs(runs, validation(runs[0]), options, write=False)
    assert [e.shared_base for e in together] == [True, True]
    for run, shared in zip(runs, together, strict=True):
        alone = evaluate_runs([run], validation(run), options, write=False)[0]
        assert alone.shared_base is False
        assert [o.output for o in shared.outputs] == [o.output for o in alone.outputs]
        assert shared.metrics["perplexity"] == pytest.approx(alone.metrics["perplexity"], rel=1e-6)
    # the two runs' adapters differ (another seed), so switching must have happened
    assert together[0].metrics["perplexity"] != together[1].metrics["perplexity"]
