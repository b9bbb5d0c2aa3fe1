"""The full fine-tuning baseline: everything trains, the whole model is saved and reloaded."""

import torch

from sdk import count_parameters
from sdk.validate import errors_only, validate_bundle


def test_bundle_validates(techniques_root):
    assert errors_only(validate_bundle(techniques_root / "full")) == []


def test_everything_trains_and_round_trips(make_setup, tmp_path):
    setup = make_setup("full", "distilbert")
    assert setup.technique.default_learning_rate == 5e-5
    base = setup.fresh_base()
    for param in base.parameters():
        param.requires_grad = False  # apply must switch everything back on
    model = setup.technique.apply(base, setup.ctx)
    trainable, total = count_parameters(model)
    assert trainable == total
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    model(**setup.batch, labels=setup.labels).loss.backward()
    optimizer.step()
    expected = setup.logits(model)
    setup.technique.save(model, tmp_path / "adapter", setup.ctx)
    assert (tmp_path / "adapter" / "model.safetensors").is_file()
    assert not list((tmp_path / "adapter").glob("*.bin"))
    reloaded = setup.technique.load(setup.fresh_base(), tmp_path / "adapter", setup.ctx)
    torch.testing.assert_close(setup.logits(reloaded), expected, atol=1e-5, rtol=1e-4)
