"""Contract of the adalora technique bundle, its step schedule and its rank-allocation callback."""

import pytest

from sdk.validate import validate_bundle


def test_bundle_validates(techniques_root):
    assert validate_bundle(techniques_root / "adalora") == []


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_contract(arch, make_setup, contract, tmp_path):
    contract(make_setup("adalora", arch, total_steps=100), tmp_path, peft_based=True)


def test_total_steps_come_from_the_context_or_the_param(make_setup):
    setup = make_setup("adalora", "bert", total_steps=40)
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    config = model.peft_config["default"]
    assert (config.total_step, config.tinit, config.tfinal) == (40, 4, 12)

    setup = make_setup("adalora", "bert", {"total_steps": 7}, total_steps=40)
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    assert model.peft_config["default"].total_step == 7


def test_without_total_steps_the_error_says_what_to_do(make_setup):
    setup = make_setup("adalora", "bert")
    with pytest.raises(ValueError, match="total_steps"):
        setup.technique.apply(setup.fresh_base(), setup.ctx)


def test_callback_prunes_ranks_to_the_budget(make_setup):
    """Driving the callback as the Trainer does shrinks the total rank to target_r per layer."""
    import torch
    from transformers import TrainerControl, TrainerState, TrainingArguments

    steps = 6
    setup = make_setup(
        "adalora",
        "bert",
        {"init_r": 4, "target_r": 2, "delta_t": 1, "warmup_fraction": 0.0, "final_fraction": 0.0},
        total_steps=steps,
    )
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    (callback,) = setup.technique.training_callbacks(model, setup.ctx)
    args = TrainingArguments(output_dir="unused", report_to=[])
    state, control = TrainerState(), TrainerControl()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for step in range(steps):
        state.global_step = step
        model(**setup.batch, labels=setup.labels).loss.backward()
        optimizer.step()
        callback.on_optimizer_step(args, state, control, model=model)
        optimizer.zero_grad()
    config = model.peft_config["default"]
    assert config.rank_pattern, "no rank pattern was recorded"
    kept = sum(sum(mask) for mask in config.rank_pattern.values())
    layers = len(config.rank_pattern)
    assert kept <= 2 * layers < 4 * layers


def test_the_penalty_is_added_in_training_only(make_setup, tmp_path):
    import json

    import torch

    setup = make_setup("adalora", "distilbert", {"orth_reg_weight": 0.5}, total_steps=10)
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    with torch.no_grad():
        task_loss = torch.nn.functional.cross_entropy(setup.logits(model), setup.labels)
        model.eval()
        eval_loss = model(**setup.batch, labels=setup.labels).loss
        model.train()
        torch.manual_seed(0)
        train_loss = model(**setup.batch, labels=setup.labels).loss
    torch.testing.assert_close(eval_loss, task_loss)
    assert train_loss > eval_loss + 0.01
    model.eval()
    setup.technique.save(model, tmp_path, setup.ctx)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["orth_reg_weight"] == 0.5
