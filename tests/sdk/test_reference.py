"""docs/sdk.md's generated parts match the manifest models and the files they quote."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.manifest import (
    DatasetFacts,
    Manifest,
    ModelFacts,
    ParamSpec,
    Requirements,
    WeightsSource,
)
from sdk.reference import BEGIN, DOC_FILE, END, main, render_reference, update_document


def test_docs_sdk_md_is_up_to_date() -> None:
    text = DOC_FILE.read_text(encoding="utf-8")
    assert update_document(text) == text, (
        "docs/sdk.md is stale: run python -m sdk.reference --write"
    )


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    stale = tmp_path / "sdk.md"
    stale.write_text(DOC_FILE.read_text(encoding="utf-8").replace("| `id` |", "| `identifier` |"))
    assert main(["--check", "--file", str(stale)]) == 1
    assert main(["--write", "--file", str(stale)]) == 0
    assert main(["--check", "--file", str(stale)]) == 0
    assert "out of date" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("model", "prefix"),
    [
        (Manifest, ""),
        (Requirements, "requires."),
        (ParamSpec, "params.NAME."),
        (ModelFacts, "model."),
        (WeightsSource, "model.weights."),
        (DatasetFacts, "dataset."),
    ],
)
def test_every_field_is_documented(model: type, prefix: str) -> None:
    reference = render_reference()
    for name, info in model.model_fields.items():
        assert f"| `{prefix}{name}` |" in reference
        assert info.description or name in ("requires", "params", "weights"), (
            f"{model.__name__}.{name} has no description for the reference"
        )


def test_the_document_keeps_its_markers() -> None:
    text = DOC_FILE.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "BEGIN INCLUDE examples/peftlab-bitfit/peftlab_bitfit/bundle/technique.py" in text
    assert "BEGIN INCLUDE scaffold:model:" in text
    assert "BEGIN INCLUDE examples/folder-bundle/dataset.py" in text
