"""The report (runner/report.py): every image referenced, axes and arms labelled, nothing from the
network, nothing a server says can break it, and it really renders in a browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from PIL import Image

from tests.conftest import (
    Cli,
    EmulatorProcesses,
    manifest_text,
    records,
    run_cli,
    run_module,
    write,
)
from tests.hostile import Hostile, bomb_png

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
from tests.support import CHROMIUM_FLAGS, REPO, page_data


def test_a_bomb_as_a_result_is_kept_but_never_decoded(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    hostile.image = bomb_png()
    hook = write(tmp_path / "hook.py", "import sys; open('hook.ran', 'w').write(sys.argv[1])\n")
    manifest = write(tmp_path / "m.yaml", manifest_text(2))
    result = run_cli(cli, manifest, hostile.url, "--on-finish", f"{sys.executable} {hook}")
    assert result.code == 0, result.err
    assert (tmp_path / "hook.ran").is_file()
    from tests.support import page_data

    jobs = page_data(tmp_path / "output" / "t" / "report.html")["prompts"][0]["jobs"]
    assert all(job["unviewable"] == "not shown: a picture of more than 50,000,000 pixels" for job in jobs)
    assert all("image" not in job for job in jobs)  # the page never hands the bomb to a browser
    assert not list((tmp_path / "output" / "t" / "thumbs").rglob("*.webp"))  # nor the run's thumbnail process
    again = cli("report", str(tmp_path / "output" / "t"))
    assert again.code == 0, again.err


def test_a_message_holding_script_markup_leaves_the_report_whole(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        message = "<!--<script>alert(1)</script> and </script><!--"
        return web.json_response({"errorCode": "BAD", "message": message}, status=400)

    hostile.features = refuse
    assert run_cli(cli, write(tmp_path / "m.yaml", manifest_text(2)), hostile.url).code == 1
    page = (tmp_path / "output" / "t" / "report.html").read_text()
    script = page.split('id="data">')[1].split("</script>")[0]
    assert "<" not in script  # no markup of any kind inside the data
    from tests.support import page_data

    jobs = page_data(tmp_path / "output" / "t" / "report.html")["prompts"][0]["jobs"]
    assert all("<!--<script>alert(1)</script>" in job["error"]["message"] for job in jobs)


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
    addresses = text.replace('"http://www.w3.org/2000/svg"', "")  # SVG's namespace names, it loads nothing
    assert "http://" not in addresses and "https://" not in addresses


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


def test_the_contact_sheet_names_the_values_of_the_other_axes(tmp_path: Path) -> None:
    from PIL import Image

    three_axes = write(
        tmp_path / "m.yaml",
        "version: 1\nname: s\ndefaults: {megapixels: 0.25}\nprompts:\n  - {id: a, prompt: 'a {x}', vars: {x: [fox, owl]}}\n"
        "sweep:\n  guidance: [1, 2, 3]\nseeds: [1, 2]\n",
    )
    two_axes = write(
        tmp_path / "n.yaml", three_axes.read_text().replace("name: s", "name: n").replace("seeds: [1, 2]", "seeds: [1]")
    )
    for manifest in (three_axes, two_axes):
        done = run_module(tmp_path, "run", str(manifest), "--emulator", "--out", manifest.stem, "--no-report")
        assert done.returncode == 0, done.stderr
        assert run_module(tmp_path, "report", manifest.stem, "--sheet").returncode == 0

    def caption_ink(name: str) -> int:
        with Image.open(tmp_path / name / "sheets" / "a.png") as sheet:
            band = sheet.convert("L").crop((0, 25, 300, 37))  # below the title line
            return sum(band.histogram()[:200])  # dark pixels: text

    assert caption_ink("m") > 20  # "at seed = 1" under the title
    assert caption_ink("n") == 0  # two axes: rows and columns say it all


def test_a_report_of_20000_jobs_paints_at_once_loads_prompts_as_shown_and_changes_axes(
    browser: WebDriver, cli: Cli, tmp_path: Path
) -> None:
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.bench.fixtures import manifest, write_records

    source = manifest(tmp_path / "m.yaml", seeds=10)  # 4 arms x 5 x 10 x 10 x 10 seeds: 20,000 jobs
    run_dir = tmp_path / "run"
    write_records(source, run_dir, done=lambda index: index % 7 != 3)
    shutil.copy(source, run_dir / "manifest.yaml")
    assert cli("report", str(run_dir)).code == 0
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert len(page) < 200_000  # the jobs are in report-data/, not in the page
    assert sorted(p.name for p in (run_dir / "report-data").iterdir()) == ["p0.js", "p1.js", "p2.js", "p3.js"]

    started = time.perf_counter()
    browser.get(f"file://{(run_dir / 'report.html').resolve()}")
    first = "#prompt-arm0 table.grid td.cell img"
    WebDriverWait(browser, 10, poll_frequency=0.02).until(lambda b: b.find_elements(By.CSS_SELECTOR, first))
    painted = time.perf_counter() - started
    assert painted < 3, f"first grid after {painted:.2f} s"
    loaded = browser.execute_script("return DATA.prompts.map((p) => Boolean(p.jobs))")
    assert loaded[0] and not loaded[-1]  # the last prompt waits until it is scrolled to

    section = browser.find_element(By.ID, "prompt-arm0")
    grid = section.find_element(By.CSS_SELECTOR, "table.grid")
    assert (grid.get_attribute("data-cols"), grid.get_attribute("data-rows")) == ("guidance", "num_inference_steps")
    Select(section.find_element(By.CSS_SELECTOR, "select[data-role=cols]")).select_by_visible_text("seed")
    WebDriverWait(browser, 5).until(
        lambda b: b.find_element(By.CSS_SELECTOR, "#prompt-arm0 table.grid").get_attribute("data-cols") == "seed"
    )
    grid = section.find_element(By.CSS_SELECTOR, "table.grid")
    headers = [th.text for th in grid.find_elements(By.CSS_SELECTOR, "tr:first-child th")][1:]
    assert headers == browser.execute_script("return DATA.prompts[0].axes.find((a) => a.name === 'seed').values")
    cells = grid.find_elements(By.CSS_SELECTOR, "td.cell")
    assert len(cells) == 100  # seeds x steps, at the first subject and guidance
    pending = [cell for cell in cells if cell.text == "pending"]
    assert 0 < len(pending) < 100  # every 7th job has no record: shown as such, in its cell

    browser.execute_script("document.getElementById('arms-0').scrollIntoView()")
    rows = "#arms-0 table.grid tr"
    WebDriverWait(browser, 10).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, rows)) > 50)
    first_page = len(browser.find_elements(By.CSS_SELECTOR, rows))
    assert first_page < 5000 * 0.1  # 5,000 settings, drawn a page at a time
    browser.execute_script("document.querySelector('#arms-0 tr.more').scrollIntoView()")
    WebDriverWait(browser, 10).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, rows)) > first_page)
    assert all(browser.execute_script("return DATA.prompts.map((p) => Boolean(p.jobs))"))
