"""`plugin validate` on deliberately broken bundles: each planted problem is reported
with its file and field, and several problems come out together."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from sdk.validate import ERROR, WARNING, severity, validate_bundle
from tests.sdk.common import peftlab

KNOWN_ARCHITECTURES = {"bert", "distilbert", "roberta"}

GOOD_MODULE = """from sdk import Technique


class Echo(Technique):
    def apply(self, model, ctx):
        return model
"""


def good_manifest() -> dict[str, Any]:
    return {
        "id": "echo",
        "kind": "technique",
        "name": "Echo",
        "version": "1.0.0",
        "api": 1,
        "entry": "technique:Echo",
        "requires": {"tasks": ["sequence-classification"], "layers": ["linear"]},
        "params": {
            "r": {"type": "int", "default": 4, "min": 1, "max": 64},
            "targets": {
                "type": "multiselect",
                "default": "auto",
                "options_from": "model.attention_modules",
            },
        },
    }


@dataclass
class Case:
    """A change to the good bundle and the problems it must produce: (file, field, text)."""

    name: str
    expected: list[tuple[str, str, str]]
    manifest: dict[str, Any] = field(default_factory=dict)  # keys to set (None deletes)
    module: str | None = None
    manifest_text: str | None = None
    severity: str = ERROR


def params_with(**changes: dict[str, Any]) -> dict[str, Any]:
    params = good_manifest()["params"]
    for name, spec in changes.items():
        params[name] = {**params.get(name, {}), **spec}
    return params


CASES = [
    Case("missing field", [("plugin.yaml", "version", "Field required")], {"version": None}),
    Case("wrong type", [("plugin.yaml", "provides", "valid list")], {"provides": "adapter"}),
    Case("unknown field", [("plugin.yaml", "colour", "unknown field")], {"colour": "red"}),
    Case(
        "unknown task",
        [("plugin.yaml", "requires.tasks.0", "sequence-classification")],
        {"requires": {"tasks": ["translation"]}},
    ),
    Case("bad entry", [("plugin.yaml", "entry", "module:attribute")], {"entry": "technique"}),
    Case("entry outside the bundle", [("plugin.yaml", "entry", "outside")], {"entry": "../x:y"}),
    Case(
        "entry module missing", [("plugin.yaml", "entry", "not found")], {"entry": "nothere:Echo"}
    ),
    Case(
        "entry attribute missing",
        [("plugin.yaml", "entry", "no attribute 'Nope'")],
        {"entry": "technique:Nope"},
    ),
    Case(
        "syntax error in module",
        [("technique.py", "entry", "syntax error")],
        module="from sdk import Technique\n\nclass Echo(Technique)\n    pass\n",
    ),
    Case(
        "module raises on import",
        [("technique.py", "entry", "ZeroDivisionError")],
        module=GOOD_MODULE + "\nBROKEN = 1 / 0\n",
    ),
    Case(
        "missing dependency",
        [("technique.py", "entry", "package 'surely_not_installed_pkg'")],
        module="import surely_not_installed_pkg\n" + GOOD_MODULE,
    ),
    Case(
        "class not subclassing the base",
        [("technique.py", "entry", "must be a subclass of sdk.Technique")],
        module="class Echo:\n    def apply(self, model, ctx):\n        return model\n",
    ),
    Case(
        "base class of another kind",
        [("technique.py", "entry", "must be a subclass of sdk.Technique")],
        module="from sdk import DatasetProvider\n\nclass Echo(DatasetProvider):\n    def load(self, ctx):\n        return None\n",
    ),
    Case(
        "contract method missing",
        [("technique.py", "entry", "does not implement apply(self, model, ctx)")],
        module="from sdk import Technique\n\nclass Echo(Technique):\n    pass\n",
    ),
    Case(
        "contract method with the wrong arguments",
        [("technique.py", "entry", "Echo.apply(self, model) must accept")],
        module="from sdk import Technique\n\nclass Echo(Technique):\n    def apply(self, model):\n        return model\n",
    ),
    Case(
        "entry needs constructor arguments",
        [("technique.py", "entry", "constructible without arguments")],
        module=GOOD_MODULE + "\n    def __init__(self, size):\n        self.size = size\n",
    ),
    Case(
        "default out of bounds",
        [("plugin.yaml", "params.r", "default 500 is above the maximum 64")],
        {"params": params_with(r={"default": 500})},
    ),
    Case(
        "default of the wrong type",
        [("plugin.yaml", "params.r", "expected an integer")],
        {"params": params_with(r={"default": "eight"})},
    ),
    Case(
        "min above max",
        [("plugin.yaml", "params.r", "greater than max")],
        {"params": params_with(r={"min": 10, "max": 2})},
    ),
    Case(
        "choice without options",
        [("plugin.yaml", "params.mode", "needs `options`")],
        {"params": params_with(mode={"type": "choice", "default": "a"})},
    ),
    Case(
        "options_from names no model field",
        [("plugin.yaml", "params.targets.options_from", "model.attention_modules")],
        {"params": params_with(targets={"options_from": "model.attention_layers"})},
    ),
    Case(
        "unknown architecture",
        [("plugin.yaml", "requires.architectures", "'llama' is not provided")],
        {"requires": {"architectures": ["bert", "llama"]}},
        severity=WARNING,
    ),
    Case(
        "legacy architecture allow-list",
        [("plugin.yaml", "requires.architectures", "state the layer kinds")],
        {"requires": {"architectures": ["bert"]}},
        severity=WARNING,
    ),
    Case(
        "invalid package requirement",
        [("plugin.yaml", "requires.packages.0", "invalid requirement")],
        {"requires": {"packages": ["peft >>= 1"]}},
    ),
    Case(
        "model bundle without its section",
        [("plugin.yaml", "<root>", "needs a `model:` section")],
        {"kind": "model"},
    ),
    Case(
        "yaml syntax error",
        [("plugin.yaml", "", "not valid YAML")],
        manifest_text="id: [echo\nkind: technique\n",
    ),
    Case(
        "several problems at once",
        [
            ("plugin.yaml", "version", "Field required"),
            ("plugin.yaml", "colour", "unknown field"),
            ("plugin.yaml", "params.r", "above the maximum"),
            ("plugin.yaml", "requires.architectures", "'gpt-neo' is not provided"),
            ("technique.py", "entry", "does not implement apply"),
        ],
        {
            "version": None,
            "colour": "red",
            "params": params_with(r={"default": 100}),
            "requires": {"architectures": ["gpt-neo"]},
        },
        module="from sdk import Technique\n\nclass Echo(Technique):\n    pass\n",
    ),
]


def write_bundle(folder: Path, case: Case | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = good_manifest()
    for key, value in (case.manifest if case else {}).items():
        if value is None:
            manifest.pop(key)
        else:
            manifest[key] = value
    text = (
        case.manifest_text
        if case and case.manifest_text
        else yaml.safe_dump(manifest, sort_keys=False)
    )
    (folder / "plugin.yaml").write_text(text, encoding="utf-8")
    module = case.module if case and case.module is not None else GOOD_MODULE
    (folder / "technique.py").write_text(module, encoding="utf-8")
    return folder


def test_the_good_bundle_is_valid(tmp_path: Path) -> None:
    assert validate_bundle(write_bundle(tmp_path / "good"), architectures=KNOWN_ARCHITECTURES) == []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_planted_problem_is_reported_with_file_and_field(tmp_path: Path, case: Case) -> None:
    folder = write_bundle(tmp_path / "bundle", case)
    problems = validate_bundle(folder, architectures=KNOWN_ARCHITECTURES)
    rendered = "\n".join(f"{severity(p)}: {p}" for p in problems)
    for filename, field_name, text in case.expected:
        matching = [
            p
            for p in problems
            if p.path is not None
            and Path(p.path).name == filename
            and (p.field or "") == field_name
            and text in p.message
        ]
        assert matching, f"expected {filename} [{field_name}] '{text}' among:\n{rendered}"
        expected_severity = case.severity if case.severity == WARNING else ERROR
        assert severity(matching[0]) == (WARNING if "not provided" in text else expected_severity)
    assert len(problems) >= len(case.expected)
    if case.severity == WARNING:
        assert all(severity(p) == WARNING for p in problems), rendered


def test_manifest_problems_carry_the_line_of_their_field(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "several problems at once")
    folder = write_bundle(tmp_path / "bundle", case)
    text_lines = (folder / "plugin.yaml").read_text().splitlines()
    by_field = {p.field: p for p in validate_bundle(folder, architectures=KNOWN_ARCHITECTURES)}
    assert text_lines[by_field["colour"].line - 1].startswith("colour:")
    assert text_lines[by_field["params.r"].line - 1].strip().startswith("r:")
    assert by_field["entry"].line == 3  # the class statement in technique.py
    assert str(by_field["params.r"]).startswith(
        f"{folder / 'plugin.yaml'}:{by_field['params.r'].line} [params.r]"
    )


def test_a_fixed_bundle_validates_clean_and_leaves_no_modules_behind(tmp_path: Path) -> None:
    before = set(sys.modules)
    broken = next(c for c in CASES if c.name == "contract method missing")
    folder = write_bundle(tmp_path / "bundle", broken)
    assert validate_bundle(folder, architectures=KNOWN_ARCHITECTURES)
    (folder / "technique.py").write_text(GOOD_MODULE)
    assert validate_bundle(folder, architectures=KNOWN_ARCHITECTURES) == []
    # the same code in a second folder is imported from that folder, not from a cache
    twin = write_bundle(tmp_path / "twin", broken)
    assert validate_bundle(twin, architectures=KNOWN_ARCHITECTURES)
    assert not [m for m in set(sys.modules) - before if m.startswith("peftlab_bundles.")]


def test_manifest_only_check_skips_the_import(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "module raises on import")
    folder = write_bundle(tmp_path / "bundle", case)
    assert (
        validate_bundle(folder, import_entry_module=False, architectures=KNOWN_ARCHITECTURES) == []
    )


def test_not_a_folder_and_no_manifest(tmp_path: Path) -> None:
    assert "not a folder" in validate_bundle(tmp_path / "missing")[0].message
    (tmp_path / "empty").mkdir()
    assert "no plugin.yaml" in validate_bundle(tmp_path / "empty")[0].message


def test_the_cli_lists_every_problem_and_separates_warnings(
    tmp_path: Path, clean_env: dict
) -> None:
    several = write_bundle(
        tmp_path / "several", next(c for c in CASES if c.name == "several problems at once")
    )
    out = peftlab("plugin", "validate", str(several), env=clean_env)
    assert out.returncode == 1
    assert "4 problem(s)" in out.stderr  # errors counted; the warning is listed beside them
    for fragment in (
        "[version]",
        "[colour]",
        "[params.r]",
        "warning:",
        "[requires.architectures]",
        "technique.py:3 [entry]",
    ):
        assert fragment in out.stderr, out.stderr

    only_warning = write_bundle(
        tmp_path / "warn", next(c for c in CASES if c.name == "unknown architecture")
    )
    lenient = peftlab("plugins", "validate", str(only_warning), env=clean_env)
    assert lenient.returncode == 0 and "ok:" in lenient.stdout and "llama" in lenient.stderr
    strict = peftlab("plugins", "validate", "--strict", str(only_warning), env=clean_env)
    assert strict.returncode == 1


def test_architectures_of_plugin_dirs_count(tmp_path: Path, clean_env: dict) -> None:
    only_warning = write_bundle(
        tmp_path / "warn", next(c for c in CASES if c.name == "unknown architecture")
    )
    model = tmp_path / "models" / "llama"
    model.mkdir(parents=True)
    (model / "plugin.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "tiny-llama",
                "kind": "model",
                "name": "Tiny Llama",
                "version": "0.1.0",
                "api": 1,
                "entry": "model:Llama",
                "model": {"architecture": "llama", "tasks": ["causal-lm"]},
            }
        )
    )
    (model / "model.py").write_text(
        "from sdk import ModelProvider\n\nclass Llama(ModelProvider):\n    def load(self, ctx):\n        return None\n"
    )
    out = peftlab(
        "--plugins-dir",
        str(tmp_path / "models"),
        "plugin",
        "validate",
        "--strict",
        str(only_warning),
        env=clean_env,
    )
    # llama is now provided; what is left is the legacy allow-list's own warning
    assert "'llama' is not provided" not in out.stdout + out.stderr
    assert "legacy allow-list" in out.stdout + out.stderr
