"""sdk.tokenize: a split is tokenized once, then read back from the cache, for any run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sdk.data import load_labelled_files
from sdk.tokenize import tokenize_cached
from tests.conftest import minilm_dir

ROTTEN = Path("/work/shared/datasets/rotten_tomatoes")


class CountingTokenizer:
    """The real tokenizer, counting the texts it is asked to tokenize."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.texts = 0

    def __call__(self, texts: list[str], **kwargs: Any) -> Any:
        self.texts += len(texts)
        return self._tokenizer(texts, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PEFTLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir())


def rotten_tomatoes(tmp_path: Path) -> Any:
    """The rotten tomatoes split a run of the rotten_tomatoes bundle loads (800 rows of it)."""
    if not (ROTTEN / "train.csv").is_file():
        pytest.skip("the shared rotten tomatoes files are not on this machine")
    return load_labelled_files(
        ROTTEN / "train.csv", ROTTEN / "validation.csv", {"train_samples": 800}, seed=42
    )


def test_three_runs_on_rotten_tomatoes_tokenize_the_training_split_once(
    tmp_path: Path, cache: Path, tokenizer: Any
) -> None:
    """Each run of a comparison loads its data afresh and tokenizes; only the first one works."""
    counting = CountingTokenizer(tokenizer)
    results = []
    for _technique in ("lora", "ia3", "full"):
        splits = rotten_tomatoes(tmp_path)  # loaded again, as each run's process does
        results.append(tokenize_cached(splits.train, counting, 64))
    # the first call tokenizes the 800 rows, plus one text probing the tokenizer's columns
    assert counting.texts == 800 + 1
    assert [len(r) for r in results] == [800, 800, 800]
    assert list(results[2]["input_ids"][:5]) == list(results[0]["input_ids"][:5])
    assert len(list((cache / "tokenized").glob("*.arrow"))) == 1


def test_the_columns_match_the_tokenizer_and_carry_lengths(cache: Path, tokenizer: Any) -> None:
    import datasets

    data = datasets.Dataset.from_dict({"text": ["a good film", "dull"], "label": [1, 0]})
    encoded = tokenize_cached(data, tokenizer, 16)
    assert set(encoded.column_names) == {
        "label", "input_ids", "token_type_ids", "attention_mask", "length"
    }  # fmt: skip
    assert encoded["input_ids"][0] == tokenizer("a good film")["input_ids"]
    assert list(encoded["length"]) == [len(ids) for ids in encoded["input_ids"]]


def test_another_max_length_or_other_data_is_tokenized_anew(cache: Path, tokenizer: Any) -> None:
    import datasets

    counting = CountingTokenizer(tokenizer)
    data = datasets.Dataset.from_dict(
        {"text": ["a long enough sentence here"] * 4, "label": [1] * 4}
    )
    short = tokenize_cached(data, counting, 4)
    long = tokenize_cached(data, counting, 32)
    other = datasets.Dataset.from_dict({"text": ["something else"] * 4, "label": [0] * 4})
    tokenize_cached(other, counting, 32)
    assert counting.texts == 3 * (4 + 1)  # three misses: four rows and one probe each
    assert max(short["length"]) == 4 and max(long["length"]) > 4
    assert len(list((cache / "tokenized").glob("*.arrow"))) == 3


def test_a_tokenizer_with_another_vocabulary_is_another_key(cache: Path, tokenizer: Any) -> None:
    from sdk.tokenize import tokenizer_fingerprint

    tokenizer("warm up the truncation state", truncation=True, max_length=3)
    before = tokenizer_fingerprint(tokenizer)
    tokenizer("and again", truncation=True, max_length=50)
    assert tokenizer_fingerprint(tokenizer) == before  # the last call's settings do not count
    other = type(tokenizer).from_pretrained(minilm_dir(), do_lower_case=False)
    assert tokenizer_fingerprint(other) != before


def test_the_length_column_reads_as_one_list_for_the_length_grouped_sampler(
    cache: Path, tokenizer: Any
) -> None:
    """The Trainer's sampler indexes `dataset["length"]` once per row: it must be a list."""
    import datasets
    from transformers.trainer_pt_utils import LengthGroupedSampler

    texts = [" ".join(["word"] * (1 + i % 7)) for i in range(70)]
    data = datasets.Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(70)]})
    encoded = tokenize_cached(data, tokenizer, 16).remove_columns(["token_type_ids"])
    lengths = encoded["length"]  # what Trainer._get_train_sampler passes on
    assert isinstance(lengths, list)
    assert lengths == [len(row["input_ids"]) for row in encoded]
    order = list(LengthGroupedSampler(8, lengths=lengths))
    assert sorted(order) == list(range(70))
