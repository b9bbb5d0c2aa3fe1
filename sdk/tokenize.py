"""Tokenizing a split once: the result is kept on disk, keyed by the data, the tokenizer and max length.

A second run on the same data, or every run of a comparison, reads the tokenized
split back (memory-mapped Arrow) instead of tokenizing it again. The key is the
split's `datasets` fingerprint (stable when the split comes from files: it follows
the file's path, size and modification time and every transform after it), a
fingerprint of the tokenizer's full configuration, the max length and the columns.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sdk.data.cache import cache_dir, cache_root
from sdk.data.files import ROWS_PER_BATCH
from sdk.data.memory import release_free_heap, release_mapped_pages

log = logging.getLogger("peftlab.data")
#: bumped when what a cached file holds changes, so old files are not read as new ones
LAYOUT = 1


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of everything that decides the tokens: the backend's configuration, or the vocabulary.

    The truncation and padding state a fast tokenizer keeps from its last call is
    left out: it changes with every call, not with what the tokenizer produces.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        config = json.loads(backend.to_str())
        config.pop("truncation", None)
        config.pop("padding", None)
        text = json.dumps(config, sort_keys=True)
    else:
        text = json.dumps(sorted(tokenizer.get_vocab().items()))
    extra = [type(tokenizer).__name__, list(getattr(tokenizer, "model_input_names", []))]
    extra.append(getattr(tokenizer, "padding_side", None))
    return hashlib.sha256((text + json.dumps(extra)).encode()).hexdigest()


def cache_key(
    dataset: Any, tokenizer: Any, max_length: int, text_column: str, keep: Sequence[str]
) -> str:
    """The name of a tokenized split's cache file (without suffix)."""
    parts = [LAYOUT, dataset._fingerprint, tokenizer_fingerprint(tokenizer), max_length]
    parts += [text_column, sorted(keep)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def tokenize_cached(
    dataset: Any,
    tokenizer: Any,
    max_length: int,
    *,
    text_column: str = "text",
    keep: Sequence[str] = ("label",),
    num_proc: int | None = None,
) -> Any:
    """`input_ids`, `attention_mask` (and `token_type_ids` where the tokenizer makes them),
    `length` for length-grouped batches, and the `keep` columns; no padding (that waits for
    the batch). Read from the cache when this split was tokenized before."""

    key = cache_key(dataset, tokenizer, max_length, text_column, keep)
    path = cache_dir("tokenized") / f"{key}.arrow"
    if path.is_file():
        log.info("tokenized split read from the cache (%d rows): %s", len(dataset), path.name)
        return _split_class().from_file(str(path))
    drop = [c for c in dataset.column_names if c not in keep]
    encoded = dataset.map(
        encode_batch,
        batched=True,
        batch_size=ROWS_PER_BATCH // 10,
        writer_batch_size=ROWS_PER_BATCH,
        remove_columns=drop,
        features=_features(dataset, tokenizer, keep),
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length, "text_column": text_column},
        cache_file_name=str(path),
        load_from_cache_file=False,
        new_fingerprint=key,  # instead of hashing the tokenizer object, which is slow
        num_proc=num_proc,
        desc="tokenizing",
    )
    release_mapped_pages(cache_root())
    release_free_heap()  # the tokenizer threads' freed batches
    log.info("tokenized %d rows into the cache: %s", len(encoded), path.name)
    return _split_class().from_file(str(path))


def padded_batch(split: Any, indices: Iterable[int], collator: Any) -> dict[str, Any]:
    """Rows of a tokenized split padded into one batch by a collator, as a plain dict: what
    the Trainer feeds the model (the `length` column is the length-grouped samplers' only)."""
    rows = [{k: v for k, v in split[int(i)].items() if k != "length"} for i in indices]
    return dict(collator(rows))  # DataCollatorWithPadding renames label -> labels


@functools.cache
def _split_class() -> type:
    """`datasets.Dataset` whose `length` column reads as one list, in one Arrow call.

    In datasets 5.2 `dataset["length"]` is a lazy `Column` that formats one row per
    index; the Trainer's length-grouped sampler indexes it once per row (~0.3 ms a row
    on a busy 2-core CPU: minutes before the first step on 1M rows). Defined on first
    use, as datasets is imported only then.
    """
    import datasets

    class TokenizedSplit(datasets.Dataset):
        def __getitem__(self, key: Any) -> Any:
            if isinstance(key, str) and key == "length" and self._format_type is None:
                return self._getitem(key)  # the whole column, formatted once
            return super().__getitem__(key)

    return TokenizedSplit


def encode_batch(
    batch: dict[str, list[Any]], tokenizer: Any, max_length: int, text_column: str
) -> dict[str, Any]:
    release_mapped_pages(cache_root())  # the pages the previous batch touched
    encoded = tokenizer(batch[text_column], truncation=True, max_length=max_length)
    encoded = dict(encoded)
    encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
    return encoded


def _features(dataset: Any, tokenizer: Any, keep: Sequence[str]) -> Any:
    """Compact types: token ids fit int32, masks int8 (the collator makes int64 tensors)."""
    import datasets

    sample = tokenizer(["a"], truncation=True, max_length=8)
    small = {"attention_mask", "token_type_ids", "special_tokens_mask"}
    columns = {k: dataset.features[k] for k in keep if k in dataset.features}
    for name in sample.keys():
        kind = "int8" if name in small else "int32"
        columns[name] = datasets.List(datasets.Value(kind))
    columns["length"] = datasets.Value("int32")
    return datasets.Features(columns)
