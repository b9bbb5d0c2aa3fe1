"""Safety: safe loaders only, the app listens locally, uploads stay in their folder,
plugin code comes only from configured places and says where it came from."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.reliability.builders import REPO_ROOT, technique_bundle

SOURCE_DIRS = ("kernel", "sdk", "plugins", "ui", "examples", "bench", "manifests", "tests")
SKIP_PARTS = {".git", "__pycache__", "runs", "build", "dist", ".venv", "node_modules"}


def python_files() -> list[Path]:
    files = []
    for top in SOURCE_DIRS:
        for path in (REPO_ROOT / top).rglob("*.py"):
            if not SKIP_PARTS & set(path.relative_to(REPO_ROOT).parts):
                files.append(path)
    return sorted(files)


def calls(path: Path) -> list[tuple[str, ast.Call]]:
    """(dotted name of the callee, call) for every call in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found.append((ast.unparse(node.func), node))
    return found


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO_ROOT)}:{node.lineno}"


def test_the_scan_sees_the_code() -> None:
    files = python_files()
    assert len(files) > 50
    assert REPO_ROOT / "kernel" / "manifest.py" in files


SAFE_YAML_LOADERS = {"yaml.SafeLoader", "yaml.CSafeLoader", "SafeLoader", "CSafeLoader"}
UNSAFE_CALLS = {
    "yaml.unsafe_load",
    "yaml.full_load",
    "yaml.unsafe_load_all",
    "yaml.full_load_all",
    "pickle.load",
    "pickle.loads",
    "cPickle.load",
    "dill.load",
    "dill.loads",
    "joblib.load",
    "torch.load",
    "numpy.load",
    "np.load",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
}


def safe_loader_classes(path: Path) -> set[str]:
    """Loader classes a file defines on top of the safe loader (kernel.manifest.UniqueKeyLoader)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(base) in SAFE_YAML_LOADERS for base in node.bases)
    }


def test_no_unsafe_deserialisation_anywhere() -> None:
    """YAML through the safe loader only; no pickle-based loading of files a user points at
    (the libraries' own checkpoint and adapter loading stays inside the libraries)."""
    problems = []
    for path in python_files():
        safe_loaders = SAFE_YAML_LOADERS | safe_loader_classes(path)
        for name, node in calls(path):
            if name in UNSAFE_CALLS:
                problems.append(f"{where(path, node)}: {name}()")
            elif name in ("yaml.load", "yaml.load_all"):
                loader = [ast.unparse(k.value) for k in node.keywords if k.arg == "Loader"]
                if len(node.args) > 1:
                    loader.append(ast.unparse(node.args[1]))
                if not loader or loader[0] not in safe_loaders:
                    problems.append(f"{where(path, node)}: {name}() without SafeLoader")
    assert problems == []


def test_the_unsafe_call_check_catches_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import yaml, pickle, torch\n"
        "yaml.load(open('x'))\n"
        "yaml.load(open('x'), Loader=yaml.Loader)\n"
        "yaml.load(open('x'), Loader=yaml.SafeLoader)\n"
        "class Strict(yaml.SafeLoader): pass\n"
        "class Loose(yaml.Loader): pass\n"
        "pickle.load(open('x', 'rb'))\n"
        "torch.load('x')\n"
        "text = 'yaml.load(in a string)'\n"
    )
    names = [name for name, _node in calls(bad)]
    assert names.count("yaml.load") == 3 and "pickle.load" in names and "torch.load" in names
    assert "yaml.load(in a string)" not in " ".join(names)
    assert safe_loader_classes(bad) == {"Strict"}


# Tokenizers are JSON/text files; peft's PeftModel.from_pretrained reads
# adapter_model.safetensors first and any other format with torch's weights-only loader.
NOT_WEIGHTS = re.compile(r"(Tokenizer|PeftModel|Config)\b")


def test_model_weights_are_loaded_from_safetensors_only() -> None:
    problems = []
    checked = 0
    for path in python_files():
        if path.is_relative_to(REPO_ROOT / "tests"):
            continue  # tests build tiny models in tmp folders
        source = path.read_text(encoding="utf-8")
        for name, node in calls(path):
            if not name.endswith(".from_pretrained") or NOT_WEIGHTS.search(name):
                continue
            checked += 1
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords if k.arg}
            splatted = any(k.arg is None for k in node.keywords)
            if keywords.get("use_safetensors") == "True":
                continue
            if splatted and re.search(r"""["']use_safetensors["']\s*:\s*True""", source):
                continue  # passed in a kwargs dict built in the same file
            problems.append(f"{where(path, node)}: {name}() without use_safetensors=True")
    assert checked >= 2  # sdk.hf's loader and the full fine-tuning reload, at least
    assert problems == []


def test_sdk_hf_asks_for_safetensors() -> None:
    source = (REPO_ROOT / "sdk" / "hf.py").read_text(encoding="utf-8")
    assert '"use_safetensors": True' in source


# the app listens on this machine only, unless asked --------------------------------------


def test_the_app_binds_to_localhost_unless_host_is_given() -> None:
    app = pytest.importorskip("ui.commands.app")
    from ui.context import CliState

    (host,) = [p for p in app.ui_command.params if p.name == "host"]
    assert host.default == "127.0.0.1"

    def address(command: list[str]) -> str:
        return command[command.index("--server.address") + 1]

    assert address(app.streamlit_command(CliState(), host.default, 8501)) == "127.0.0.1"
    assert address(app.streamlit_command(CliState(), "0.0.0.0", 8501)) == "0.0.0.0"


# uploads --------------------------------------------------------------------------------

DATA_PAGE = REPO_ROOT / "ui" / "views" / "data.py"


def upload_functions() -> dict[str, object]:
    """sanitize_name and target_path, where the Datasets page and the HTTP service store uploads."""
    from engine import uploads

    return {"sanitize_name": uploads.sanitize_name, "target_path": uploads.target_path}


NASTY_NAMES = [
    "../../etc/passwd",
    "a/b.csv",
    "..",
    ".",
    "",
    "CON",
    ".bashrc",
    "/etc/cron.d/job.csv",
    "C:\\Users\\me\\evil.csv",
    "..\\..\\evil.csv",
    "données été.csv",
    "日本語.csv",
    "name\x00.csv",
    "x" * 5000 + ".csv",
    "  spaced  name .csv",
    "-rf.csv",
]


@pytest.mark.parametrize("name", NASTY_NAMES, ids=[repr(n)[:30] for n in NASTY_NAMES])
def test_an_uploaded_name_becomes_a_plain_file_in_the_data_folder(
    tmp_path: Path, name: str
) -> None:
    functions = upload_functions()
    stem = functions["sanitize_name"](name)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,59}", stem), stem
    folder = tmp_path / "data" / "datasets"
    folder.mkdir(parents=True)
    target = functions["target_path"](folder, name, ".csv")
    assert target.parent == folder.resolve()
    assert target.name == f"{stem}.csv" and not target.exists()
    target.write_bytes(b"text,label\n")  # what the page does with it
    assert [p.resolve() for p in tmp_path.rglob("*") if p.is_file()] == [target]


def test_an_upload_never_overwrites_a_saved_dataset(tmp_path: Path) -> None:
    functions = upload_functions()
    first = functions["target_path"](tmp_path, "reviews.csv", ".csv")
    first.write_bytes(b"keep me")
    second = functions["target_path"](tmp_path, "../reviews.csv", ".csv")
    assert second.name == "reviews-2.csv" and first.read_bytes() == b"keep me"


def test_specific_names() -> None:
    sanitize = upload_functions()["sanitize_name"]
    assert sanitize("../../etc/passwd") == "passwd"
    assert sanitize("a/b.csv") == "b"
    assert sanitize("..") == sanitize("") == sanitize(".bashrc") == "dataset"
    assert sanitize("données.csv") == "donn-es"
    assert len(sanitize("y" * 5000)) == 60


# where plugin code comes from ---------------------------------------------------------------

ECHO = "from sdk import Technique\n\n\nclass T(Technique):\n    def apply(self, model, ctx):\n        return model\n"


def test_plugin_code_only_from_configured_folders_and_the_list_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.cli import cli

    configured = tmp_path / "configured"
    technique_bundle(configured, "mine", ECHO)
    # a bundle in the working directory, next to the configured folder and one level up from it:
    # none of these places is a plugin folder, so none of this code may load
    technique_bundle(tmp_path / "elsewhere", "stray", "raise SystemExit('must not run')\n")
    technique_bundle(tmp_path, "loose", "raise SystemExit('must not run')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PEFTLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PEFTLAB_PLUGIN_PATH", raising=False)

    args = ["--no-entry-points", "--plugins-dir", str(configured), "plugins", "list"]
    listed = CliRunner().invoke(cli, [*args, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["id"]: row for row in json.loads(listed.output)}
    assert "stray" not in rows and "loose" not in rows
    assert rows["mine"]["origin"] == "path"
    assert rows["mine"]["path"] == str((configured / "mine").resolve())
    assert rows["lora"]["origin"] == "builtin"
    assert {row["origin"] for row in rows.values()} == {"path", "builtin"}

    table = CliRunner().invoke(cli, args)
    header = next(line for line in table.output.splitlines() if " origin " in line)
    assert header.index(" id ") < header.index(" origin ") < header.index(" path ")


def test_readme_states_the_trust_model() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Trust model", 1)[1].split("\n## ", 1)[0]
    for phrase in (
        "A plugin is code: it runs with your rights",
        "only from the folders listed above and from installed",
        "shows where each plugin came from",
        "safe loader",
        "safetensors",
        "127.0.0.1",
    ):
        assert phrase in " ".join(section.split()), phrase
