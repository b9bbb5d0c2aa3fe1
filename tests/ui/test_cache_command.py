"""`peftlab cache show` and `peftlab cache clear` on a cache with real files in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sdk.data import load_labelled_files


@pytest.fixture
def filled_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PEFTLAB_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f"review {i},{i % 2}\n" for i in range(40)))
    load_labelled_files(data, None, {})
    return tmp_path / "cache"


def peftlab(*args: str):
    from ui.cli import cli

    return CliRunner().invoke(cli, list(args))


def test_show_lists_the_parts_and_their_sizes(filled_cache: Path) -> None:
    done = peftlab("cache", "show", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    parts = {p["part"]: p for p in report["parts"]}
    assert report["root"] == str(filled_cache)
    on_disk = sum(p.stat().st_size for p in (filled_cache / "datasets").rglob("*") if p.is_file())
    assert parts["datasets"]["bytes"] == on_disk > 0
    assert parts["tokenized"]["files"] == 0
    assert "datasets" in peftlab("cache", "show").output


def test_clear_deletes_only_the_chosen_part(filled_cache: Path) -> None:
    (filled_cache / "tokenized").mkdir()
    (filled_cache / "tokenized" / "x.arrow").write_bytes(b"1234")
    done = peftlab("cache", "clear", "--part", "tokenized", "--yes")
    assert done.exit_code == 0, done.output
    assert "4 B freed" in done.output
    assert not (filled_cache / "tokenized").exists() and (filled_cache / "datasets").exists()
    assert peftlab("cache", "clear").exit_code != 0  # asks first; no answer aborts
    assert (filled_cache / "datasets").exists()
    assert peftlab("cache", "clear", "--yes").exit_code == 0
    assert not (filled_cache / "datasets").exists()
