"""The report: every image referenced, axes and arms labelled, nothing from the network, and it
really renders in a browser (headless Chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import REPO, EmulatorProcesses, records, run_module

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def page_data(report: Path) -> dict[str, Any]:
    text = report.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.DOTALL)
    assert match, "the report embeds its data"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("example")
    done = run_module(where, "run", str(REPO / "manifests" / "example.yaml"), "--emulator", "--out", "run")
    assert done.returncode == 0, done.stderr
    assert "report in run/report.html" in done.stdout
    return where / "run"


def test_the_report_references_every_image_and_labels_axes_and_arms(example_run: Path) -> None:
    report = example_run / "report.html"
    data = page_data(report)
    lines = records(example_run)
    shown = {job["image"] for prompt in data["prompts"] for job in prompt["jobs"] if job.get("image")}
    assert shown == {line["files"][0] for line in lines} and len(shown) == 8
    for prompt in data["prompts"]:
        assert [axis["name"] for axis in prompt["axes"]] == ["vehicle", "num_inference_steps", "seed"]
        for job in prompt["jobs"]:
            assert (example_run / job["thumb"]).is_file()
            with Image.open(example_run / job["thumb"]) as thumb:
                assert max(thumb.size) <= 320
    # The arms differ in more than their text (harbour sets guidance: 4): the page says so.
    guidance = {"field": "guidance", "values": {"city": "not set (the API's default, 3.5)", "harbour": "4"}}
    assert data["arms"] == [{"prompts": ["city", "harbour"], "differences": [guidance]}]
    fixed = {"aspect_ratio": "16:9", "megapixels": "0.25", "output_quality": "80"}
    assert [prompt["fixed"] for prompt in data["prompts"]] == [fixed, {**fixed, "guidance": "4"}]
    assert data["emulated"] is True
    assert data["counts"] == {"total": 8, "done": 8, "failed": 0, "pending": 0}
    assert data["summary"]["latency_s"]["p50"] > 0
    text = report.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=\"?(https?:)?//", text), "the report loads nothing from the network"
    assert "http://" not in text and "https://" not in text


def test_failed_and_pending_jobs_show_in_their_cells(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--refuse", "0.5", "--seed", "4")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\nname: mixed\nprompts:\n  - {id: a, prompt: 'a {x}', vars: {x: [1, 2, 3]}}\n"
        "  - {id: b, prompt: 'b {x}', vars: {x: [1, 2, 3]}}\nsweep:\n  guidance: [1, 2]\nzip:\n"
        "  output_quality: [50, 60]\n  go_fast: [true, false]\nseeds: [1]\n"
    )
    done = run_module(tmp_path, "run", str(manifest), "--base-url", served.url, "--max-jobs", "16", "--no-progress")
    assert done.returncode == 3, done.stderr
    data = page_data(tmp_path / "output" / "mixed" / "report.html")
    jobs = [job for prompt in data["prompts"] for job in prompt["jobs"]]
    states = {state: sum(1 for job in jobs if job["status"] == state) for state in ("success", "failed", "pending")}
    assert states["pending"] == 8 and states["failed"] > 0 and states["success"] > 0
    assert all(
        job["error"]["kind"] == "validation" and "refused" in job["error"]["message"] for job in jobs if job["status"] == "failed"
    )
    assert data["prompts"][0]["axes"][2] == {"name": "output_quality / go_fast", "values": ["50 / true", "60 / false"]}
    assert data["counts"]["failed"] == states["failed"]


def test_contact_sheets_are_drawn_per_prompt(example_run: Path, tmp_path: Path) -> None:
    done = run_module(tmp_path, "report", str(example_run), "--sheet")
    assert done.returncode == 0, done.stderr
    for prompt in ("city", "harbour"):
        with Image.open(example_run / "sheets" / f"{prompt}.png") as sheet:
            assert sheet.size == (150 + 2 * 200, 30 + 40 + 2 * 200)


def test_the_report_of_a_run_dir_with_no_records_says_pending(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(REPO / "manifests" / "example.yaml", run_dir / "manifest.yaml")
    done = run_module(tmp_path, "report", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert page_data(run_dir / "report.html")["counts"] == {"total": 8, "done": 0, "failed": 0, "pending": 8}


# -- in a real browser ---------------------------------------------------------------------------


def _apt_install(*packages: str) -> None:
    """Install Debian packages for the browser tests, or skip them saying why that failed."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"{' and '.join(packages)} not installed, and this user cannot install Debian packages")
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(
            step, capture_output=True, text=True, timeout=900, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        )
        if done.returncode != 0:
            pytest.skip(f"{' and '.join(packages)} could not be installed ({' '.join(step)}: {done.stderr.strip()[-300:]})")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium, installed by the test setup when it is missing."""
    found = shutil.which("chromium")
    if found:
        return found
    _apt_install("chromium", "chromium-driver")
    return shutil.which("chromium") or pytest.skip("Chromium was installed but is not on PATH")


def test_the_report_opens_from_disk_with_every_image_loaded(chromium: str, example_run: Path, tmp_path: Path) -> None:
    url = f"file://{(example_run / 'report.html').resolve()}?eager"
    profile = ["--user-data-dir=" + str(tmp_path / "profile"), "--virtual-time-budget=10000"]
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, *profile, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stderr[-2000:]
    total = re.search(r'data-images-total="(\d+)"', body.group(1))
    loaded = re.search(r'data-images-loaded="(\d+)"', body.group(1))
    assert total and loaded, body.group(0)
    assert int(total.group(1)) == 16  # 8 in the prompt grids, 8 again in the A/B table
    assert loaded.group(1) == total.group(1)
    assert "num_inference_steps" in dom.stdout and "A/B: city vs harbour" in dom.stdout

    screenshot = tmp_path / "report.png"
    shot = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, "--user-data-dir=" + str(tmp_path / "profile2"), "--virtual-time-budget=10000",
         "--window-size=1400,1300", f"--screenshot={screenshot}", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert screenshot.is_file(), shot.stderr[-2000:]
    with Image.open(screenshot) as picture:
        assert picture.size == (1400, 1300)
        assert len(picture.convert("RGB").getcolors(1 << 24) or []) > 1000  # a real page, not a blank one
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copy(screenshot, REPO / "tests" / "screenshots" / "report-example.png")


def test_an_img2img_report_shows_the_input_beside_its_outputs(tmp_path: Path) -> None:
    done = run_module(tmp_path, "run", str(REPO / "manifests" / "img2img.yaml"), "--emulator", "--out", "run")
    assert done.returncode == 0, done.stderr
    data = page_data(tmp_path / "run" / "report.html")
    for prompt in data["prompts"]:
        assert prompt["input"] and prompt["input"].startswith("thumbs/inputs/")
        assert (tmp_path / "run" / prompt["input"]).is_file()


def test_a_linked_view_picks_the_grid_axes(chromium: str, example_run: Path, tmp_path: Path) -> None:
    url = f"file://{(example_run / 'report.html').resolve()}?eager&cols=num_inference_steps&rows=vehicle"
    profile = ["--user-data-dir=" + str(tmp_path / "profile"), "--virtual-time-budget=10000"]
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, *profile, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    grids = re.findall(r'<table class="grid" data-cols="([^"]*)" data-rows="([^"]*)"', dom.stdout)
    assert grids[:2] == [("num_inference_steps", "vehicle")] * 2, dom.stderr[-1000:]
    first_grid = dom.stdout[dom.stdout.index('data-cols="num_inference_steps"') :]
    headers = re.findall(r"<th>([^<]*)</th>", first_grid[: first_grid.index("</tr>")])
    assert headers == ["20", "28"]


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[WebDriver]:
    """Headless Chromium driven through Debian's chromedriver (no download, no statistics)."""
    import tempfile

    if not shutil.which("chromedriver"):
        _apt_install("chromium-driver")
    if not shutil.which("chromedriver"):
        pytest.skip("chromium-driver was installed but chromedriver is not on PATH")
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="flux-batch-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1400,1200")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_the_page_states_the_settings_and_steps_through_pictures_by_key(browser: WebDriver, example_run: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(f"file://{(example_run / 'report.html').resolve()}?eager")
    fixed = [element.text for element in browser.find_elements(By.CSS_SELECTOR, "[data-role=fixed]")]
    assert fixed[0] == "Every image: aspect_ratio 16:9 · megapixels 0.25 · output_quality 80"
    assert fixed[1].endswith("· guidance 4")
    differences = browser.find_element(By.CSS_SELECTOR, "[data-role=differences]").text
    assert differences == "Besides the prompt, the arms differ in: guidance (city: not set (the API's default, 3.5), harbour: 4)"
    assert browser.find_elements(By.CSS_SELECTOR, "[data-emulated=true]")

    pictures = browser.find_elements(By.CSS_SELECTOR, "td.cell img[data-job]")
    order = [picture.get_attribute("data-job") for picture in pictures]
    pictures[0].click()

    def shown() -> str | None:
        return browser.find_element(By.ID, "box-img").get_attribute("data-job")

    assert shown() == order[0]
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)
    assert shown() == order[1]
    body.send_keys(Keys.ARROW_RIGHT)
    assert shown() == order[2]
    body.send_keys(Keys.ARROW_LEFT)
    assert shown() == order[1]
    body.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    assert shown() == order[-1]  # from the first, back to the last
    body.send_keys(Keys.ESCAPE)
    assert "open" not in (browser.find_element(By.ID, "box").get_attribute("class") or "")
