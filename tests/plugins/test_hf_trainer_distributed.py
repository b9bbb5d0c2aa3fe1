"""The hf_trainer's helpers for several processes and its evaluation measures, in one process."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

BUNDLE = Path(__file__).resolve().parents[2] / "plugins" / "trainers" / "hf_trainer"


def bundle_module(name: str):
    spec = importlib.util.spec_from_file_location(
        f"hf_trainer_{name}_under_test", BUNDLE / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


distributed = bundle_module("distributed")
measures = bundle_module("measures")


class TwoHeads(torch.nn.Module):
    """A classifier whose second head never takes part in the loss."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 2)
        self.spare = torch.nn.Linear(4, 2)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x, labels):
        logits = self.head(self.drop(self.body(x)))
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}


def test_probe_names_trainable_parameters_without_gradient_and_leaves_no_trace():
    torch.manual_seed(0)
    model = TwoHeads().eval()
    model.body.weight.requires_grad_(False)
    batch = {"x": torch.randn(3, 4), "labels": torch.tensor([0, 1, 1])}
    before = torch.random.get_rng_state()
    assert distributed.unused_trainable_parameters(model, batch) == ["spare.weight", "spare.bias"]
    assert torch.equal(torch.random.get_rng_state(), before)  # dropout masks as without the probe
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


def test_probe_finds_nothing_when_every_trainable_weight_is_used():
    model = TwoHeads()
    model.spare.requires_grad_(False)
    batch = {"x": torch.randn(2, 4), "labels": torch.tensor([0, 1])}
    assert distributed.unused_trainable_parameters(model, batch) == []


def test_without_a_process_group_the_largest_value_is_ones_own():
    assert distributed.max_across_ranks(123.5) == 123.5
    assert distributed.world() == (0, 1)


def fake_trainer(model: torch.nn.Module, rank_zero: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        model=model,
        accelerator=SimpleNamespace(get_state_dict=lambda m: m.state_dict()),
        is_world_process_zero=lambda: rank_zero,
    )


def test_gathered_weights_go_into_a_fresh_copy_on_rank_zero_only():
    torch.manual_seed(1)
    trained = TwoHeads()
    copy = distributed.gathered_model(fake_trainer(trained), TwoHeads)
    assert copy is not trained
    for (name, a), (_, b) in zip(
        trained.state_dict().items(), copy.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert distributed.gathered_model(fake_trainer(trained, rank_zero=False), TwoHeads) is None


def test_gathered_weights_that_do_not_fit_are_refused():
    class Other(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(4, 2)

    with pytest.raises(RuntimeError, match="do not fit"):
        distributed.gathered_model(fake_trainer(TwoHeads()), Other)


def test_evaluation_keeps_each_examples_class_and_loss():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, -1.0]])
    labels = torch.tensor([0, 1, 1])
    classes, losses = measures.logits_to_classes(logits, labels)
    assert classes.tolist() == [0, 1, 0]
    expected = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert torch.allclose(losses, expected)
    assert measures.logits_to_classes(logits, None).tolist() == [0, 1, 0]
    scores = measures.classification_metrics(
        SimpleNamespace(predictions=(classes.numpy(), losses.numpy()), label_ids=labels.numpy())
    )
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["examples"] == 3
    assert scores["loss"] == pytest.approx(float(expected.mean()))


def test_raw_logits_still_score_without_a_loss():
    scores = measures.classification_metrics(
        SimpleNamespace(predictions=np.array([[0.1, 0.9], [0.8, 0.2]]), label_ids=np.array([1, 1]))
    )
    assert scores["accuracy"] == 0.5 and "loss" not in scores


def test_macro_f1_agrees_with_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    for _ in range(200):
        size, classes = rng.integers(1, 30), rng.integers(1, 5)
        labels, predictions = rng.integers(0, classes, size), rng.integers(0, classes, size)
        expected = f1_score(labels, predictions, average="macro", zero_division=0)
        assert measures.macro_f1(labels, predictions) == pytest.approx(expected, abs=1e-12)
