"""The typed results record (sdk.records): what results.json holds, and old files still parse."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from sdk.records import GenerationResults, RunResults, parse_results

GENERATION_ONLY = set(GenerationResults.model_fields) - set(RunResults.model_fields)


def test_a_classification_record_lists_no_generation_figures_and_gpu_only_when_there_was_one():
    record = RunResults(accuracy=0.75, label_names=["neg", "pos"], global_step=4)
    keys = set(record.to_json_dict())
    assert not keys & GENERATION_ONLY
    assert "gpu" not in keys and {"accuracy", "baseline_accuracy", "eval_loss"} <= keys
    assert record.model_copy(update={"gpu": "H200"}).to_json_dict()["gpu"] == "H200"


def test_an_older_results_file_with_fewer_and_unknown_keys_still_parses_and_keeps_them():
    old = {"accuracy": 0.8, "technique": "lora", "legacy_score": 3, "label_names": ["a", "b"]}
    record = parse_results(json.loads(json.dumps(old)))
    assert type(record) is RunResults
    assert (record.accuracy, record.technique, record.label_names) == (0.8, "lora", ["a", "b"])
    assert record.trainable_params is None
    assert record.to_json_dict()["legacy_score"] == 3


def test_a_generation_run_parses_as_a_generation_record_and_keeps_an_infinite_perplexity():
    written = json.dumps({"task": "causal-lm", "rougeL": 0.25, "perplexity": math.inf})
    record = parse_results(json.loads(written))
    assert isinstance(record, GenerationResults)
    assert record.rougeL == 0.25 and record.accuracy is None
    assert math.isinf(record.to_json_dict()["perplexity"])
    assert GENERATION_ONLY <= set(record.to_json_dict())


def test_a_wrong_type_is_refused_with_the_field_named():
    with pytest.raises(ValidationError, match="global_step"):
        RunResults.model_validate({"global_step": "many"})


def test_the_contracts_document_lists_exactly_the_record_fields():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "CONTRACTS.md").read_text()
    section = text.split("## results.json keys", 1)[1].split("\n## ", 1)[0]
    every, added = section.split("Every run", 1)[1].split("Generation runs add", 1)

    def names(part: str) -> list[str]:
        return re.findall(r"`(\w+)`", part.split(":\n", 1)[1])

    assert names(every) == list(RunResults.model_fields)
    assert names(added) == sorted(GENERATION_ONLY, key=list(GenerationResults.model_fields).index)


def test_class_names_given_as_numbers_are_recorded_as_text():
    assert RunResults(label_names=[0, 1]).label_names == ["0", "1"]
