"""The report at scale, and a run of 100,000 jobs.

- `report` of a run dir of 100,000 jobs (90,000 done), the first time (every thumbnail to make:
  the fixture's images are 1-pixel WebPs, so this measures the walk and the per-picture work,
  not decoding photographs) and again (every thumbnail there);
- how long headless Chromium takes from opening that report to its first grid's first picture,
  and to redraw the grid on another axis (skipped without Chromium and chromedriver);
- the peak memory of `run` over 100,000 jobs against the emulator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.bench_plan import measure
from tests.bench.fixtures import manifest, write_records


def run() -> list[tuple[str, str, str, bool]]:
    cli = [sys.executable, "-m", "runner"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source = manifest(Path(tmp) / "m.yaml", seeds=50)
        run_dir = Path(tmp) / "run"
        write_records(source, run_dir, done=lambda index: index % 10 != 9)
        shutil.copy(source, run_dir / "manifest.yaml")
        first, first_mem = measure([*cli, "report", str(run_dir)])
        again, again_mem = measure([*cli, "report", str(run_dir)])
        target = "< 15 s, < 300 MB"
        rows.append(
            (
                "report, 100,000 jobs, making 90,000 thumbnails",
                f"{first:.1f} s, {first_mem:.0f} MB",
                target,
                first < 15 and first_mem < 300,
            )
        )
        rows.append(
            (
                "report, 100,000 jobs, thumbnails made",
                f"{again:.1f} s, {again_mem:.0f} MB",
                target,
                again < 15 and again_mem < 300,
            )
        )
        rows += _in_chromium(run_dir / "report.html")
        rows.append(_lean_run(Path(tmp), cli))
    return rows


def _in_chromium(report: Path) -> list[tuple[str, str, str, bool]]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        return [("report in Chromium, 100,000 jobs", "skipped: no chromium/chromedriver", "", True)]
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.support import CHROMIUM_FLAGS

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, "--window-size=1400,1200", f"--user-data-dir={report.parent / 'profile'}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        started = time.perf_counter()
        browser.get(f"file://{report.resolve()}")
        WebDriverWait(browser, 30, poll_frequency=0.01).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "#prompt-arm0 table.grid td.cell img")
        )
        painted = time.perf_counter() - started
        section = browser.find_element(By.ID, "prompt-arm0")
        started = time.perf_counter()
        Select(section.find_element(By.CSS_SELECTOR, "select[data-role=cols]")).select_by_visible_text("seed")
        WebDriverWait(browser, 30, poll_frequency=0.01).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "#prompt-arm0 table.grid").get_attribute("data-cols") == "seed"
        )
        redrawn = time.perf_counter() - started
    finally:
        browser.quit()
    return [
        ("report in Chromium, 100,000 jobs: first grid", f"{painted:.2f} s", "< 2 s", painted < 2),
        ("report in Chromium: grid on another axis", f"{redrawn:.2f} s", "< 0.5 s", redrawn < 0.5),
    ]


def _lean_run(tmp: Path, cli: list[str]) -> tuple[str, str, str, bool]:
    source = manifest(tmp / "lean.yaml", seeds=50)
    emulator = subprocess.Popen(
        [*cli, "emulator", "--port", "0", "--latency", "0.001,0.002", "--max-side", "16"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().split(" listening on ")[1].split()[0]
        argv = [*cli, "run", str(source), "--base-url", url, "--out", str(tmp / "lean"), "--concurrency", "64"]
        os.environ["ONEMIN_API_KEY"] = "emulator-key"
        wall, peak = measure([*argv, "--no-progress", "--no-report"])
    finally:
        os.environ.pop("ONEMIN_API_KEY", None)
        emulator.terminate()
        emulator.wait()
        if emulator.stdout:
            emulator.stdout.close()
    return ("run, 100,000 jobs: peak memory", f"{peak:.0f} MB ({wall:.0f} s)", "< 120 MB", peak < 120)


if __name__ == "__main__":
    for row in run():
        print(row)
