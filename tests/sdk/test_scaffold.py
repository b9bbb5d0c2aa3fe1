"""`peftlab plugin new`: every kind comes out valid, lint-clean and able to train one step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sdk.scaffold import Names, ScaffoldError, new_bundle
from sdk.testing import smoke_train
from sdk.validate import validate_bundle
from tests.sdk.common import REPO_ROOT, needs_engine
from ui.cli import cli

KINDS = ("technique", "model", "dataset", "trainer")
MODULES = {
    "technique": "technique.py",
    "model": "model.py",
    "dataset": "dataset.py",
    "trainer": "trainer.py",
}


@pytest.mark.parametrize("kind", KINDS)
def test_new_bundle_is_complete_and_valid(tmp_path: Path, kind: str) -> None:
    folder = new_bundle(kind, f"my-{kind}", tmp_path)
    assert folder == tmp_path / f"my-{kind}"
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"plugin.yaml", MODULES[kind], f"test_my_{kind}.py", "README.md"} <= names
    if kind == "dataset":
        assert {"data/train.csv", "data/validation.csv"} <= names
    assert not any("{{" in (folder / n).read_text() for n in names), "a placeholder was left"
    manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
    assert manifest["id"] == f"my-{kind}" and manifest["kind"] == kind
    assert manifest["params"], "the example declares params"
    for name, spec in manifest["params"].items():
        assert spec.get("help"), f"param {name} has no help text"
        if spec["type"] in ("int", "float"):
            assert "min" in spec and "max" in spec, f"param {name} has no range"
    assert validate_bundle(folder) == []


def test_generated_python_passes_ruff(tmp_path: Path) -> None:
    for kind in KINDS:
        new_bundle(kind, f"lint-{kind}", tmp_path)
    config = str(REPO_ROOT / "pyproject.toml")
    for command in (["check"], ["format", "--check"]):
        out = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--config", config, str(tmp_path)],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stdout + out.stderr


def test_names_become_identifiers() -> None:
    assert Names("my-tech_2", "technique").class_name == "MyTech2"
    assert Names("2bit", "technique").class_name == "Technique2bit"
    assert Names("my-tech", "technique").module_name == "my_tech"
    assert Names("my-tech", "technique").title == "My Tech"


@pytest.mark.parametrize(
    ("kind", "name", "fragment"),
    [
        ("widget", "x", "unknown kind 'widget'; choose one of: technique, model, dataset, trainer"),
        ("technique", "My.Tech", "cannot be a plugin name"),
        ("technique", "../escape", "cannot be a plugin name"),
        ("technique", "", "cannot be a plugin name"),
    ],
)
def test_refuses_bad_requests(tmp_path: Path, kind: str, name: str, fragment: str) -> None:
    with pytest.raises(ScaffoldError, match=None) as caught:
        new_bundle(kind, name, tmp_path)
    assert fragment in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_folder_in_use_but_fills_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match="not empty"):
        new_bundle("technique", "taken", tmp_path)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("")
    with pytest.raises(ScaffoldError, match="not a folder"):
        new_bundle("technique", "file", tmp_path)
    (tmp_path / "empty").mkdir()
    assert (new_bundle("technique", "empty", tmp_path) / "plugin.yaml").is_file()


@pytest.mark.parametrize("group", ["plugin", "plugins"])
def test_cli_new_under_both_group_names(tmp_path: Path, group: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, [group, "new", "dataset", "reviews", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "created dataset bundle 'reviews'" in result.output
    assert f"peftlab plugin validate {tmp_path / 'reviews'}" in result.output
    again = runner.invoke(cli, [group, "new", "dataset", "reviews", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "will not overwrite" in again.output
    bad = runner.invoke(cli, [group, "new", "gadget", "x", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown kind 'gadget'" in bad.output


def test_cli_new_defaults_to_the_current_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path) as here:
        result = runner.invoke(cli, ["plugin", "new", "model", "encoder"])
        assert result.exit_code == 0, result.output
        assert (Path(here) / "encoder" / "model.py").is_file()


@needs_engine
@pytest.mark.parametrize("kind", ["model", "dataset", "trainer"])
def test_generated_bundle_trains_one_step(
    tmp_path: Path, kind: str, tiny_model_dir: Path, tiny_dataset_dir: Path
) -> None:
    # (the technique goes through the author's path in test_author_guide.py)
    folder = new_bundle(kind, f"smoke-{kind}", tmp_path / "bundles")
    result = smoke_train(
        folder, model_dir=tiny_model_dir, dataset_dir=tiny_dataset_dir, runs_dir=tmp_path / "runs"
    )
    assert result.status["state"] == "completed"
    assert result.results["global_step"] == 1
    assert result.recipe[kind]["id"] == f"smoke-{kind}"
    assert 0.0 <= result.results["accuracy"] <= 1.0
    assert any("loss" in row for row in result.metrics)
