"""Shared fixtures: tiny encoder models and a tiny labelled dataset, built once per session.

The tiny models (2 layers, hidden 32, 2 heads, intermediate 64; sdk.testing builds them) use the
vocabulary of the embedded all-MiniLM-L6-v2 tokenizer, so nothing is downloaded
and a training step takes milliseconds. Each is saved with save_pretrained
(safetensors) together with its tokenizer, exactly like a real model folder.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from sdk.testing import tiny_model_config, tiny_vocab_dir  # noqa: F401 - shared with tests

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_ARCHS = ("bert", "distilbert", "roberta")

# no test may reach the hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Arrow and tokenized-data caches of this test run, never the user's own
os.environ.setdefault("PEFTLAB_CACHE_DIR", tempfile.mkdtemp(prefix="peftlab-test-cache-"))


def minilm_dir() -> Path:
    return tiny_vocab_dir()


def save_tiny_model(arch: str, folder: Path) -> Path:
    """A seeded, randomly initialised encoder (no task head) and the MiniLM tokenizer in `folder`."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    torch.manual_seed(0)
    model = AutoModel.from_config(tiny_model_config(arch, len(tokenizer)))
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def save_quantizable_bert(folder: Path) -> Path:
    """A seeded 1-layer BERT encoder wide enough for bitsandbytes' 4-bit CPU kernels (blocks of
    64 values: hidden 64, intermediate 128) and the MiniLM tokenizer in `folder`."""
    import torch
    from transformers import AutoModel, AutoTokenizer, BertConfig

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=64)  # fmt: skip
    AutoModel.from_config(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{architecture: folder} for bert, distilbert and roberta tiny models."""
    return {
        arch: save_tiny_model(arch, tmp_path_factory.mktemp(f"tiny-{arch}")) for arch in TINY_ARCHS
    }


POSITIVE = [
    "a warm, funny and moving film",
    "works perfectly and feels well made",
    "I loved every minute of it",
    "great sound and the battery lasts for days",
    "clever writing and a superb cast",
    "arrived early and does exactly what it promises",
    "a delight from start to finish",
    "comfortable, sturdy and good value",
    "the best thing I bought this year",
    "beautifully shot with a lovely score",
    "the kids adore it and so do I",
    "smart, tense and very entertaining",
]
NEGATIVE = [
    "dull, slow and far too long",
    "it broke on the second day",
    "a waste of money and time",
    "the jokes fall flat and the plot drags",
    "cheap plastic that cracked at once",
    "support never answered my emails",
    "wooden acting and a silly ending",
    "it stopped working within a week",
    "noisy, flimsy and overpriced",
    "I walked out halfway through",
    "the strap snapped and the zipper jammed",
    "predictable, preachy and boring",
]


def write_rows(
    path: Path, rows: list[tuple[str, Any]], header: tuple[str, str] = ("text", "label")
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def tiny_csv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.csv (16 rows), validation.csv and test.csv (4 rows each): text, label (1 = positive)."""
    folder = tmp_path_factory.mktemp("tiny-csv")
    pos = [(t, 1) for t in POSITIVE]
    neg = [(t, 0) for t in NEGATIVE]
    train = [row for pair in zip(pos[:8], neg[:8], strict=True) for row in pair]
    write_rows(folder / "train.csv", train)
    write_rows(folder / "validation.csv", pos[8:10] + neg[8:10])
    write_rows(folder / "test.csv", pos[10:] + neg[10:])
    return folder


@pytest.fixture(name="kernel", scope="module")
def builtin_kernel() -> Any:
    """A kernel that knows only the built-in bundles: no entry points, no plugin path from the
    environment, no user plugin folder (a test module may define its own `kernel` instead)."""
    from kernel import Kernel, KernelConfig

    k = Kernel(
        KernelConfig(use_entry_points=False, use_env_path=False, user_dir=Path("/nonexistent"))
    )
    k.discover()
    return k
