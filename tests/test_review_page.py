"""The review page (runner/review_page.html) in headless Chromium: blind votes by key, scores
by click, the verdict drawn; then ratings.jsonl and `verdict --json` say what was done."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.conftest import Cli, write
from tests.support import REPO
from tests.test_review import ReviewServer, ratings

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

THREE_ARMS = """\
version: 1
name: three-phrasings
defaults: {megapixels: 0.25, aspect_ratio: "1:1"}
prompts:
  - {id: plain, prompt: "a {thing} on a table", vars: {thing: [mug, watch]}}
  - {id: styled, prompt: "a {thing} on a table, soft window light", vars: {thing: [mug, watch]}}
  - {id: moody, prompt: "a {thing} on a table, low key, deep shadows", vars: {thing: [mug, watch]}}
seeds: [1, 2]
"""


def test_ten_votes_by_key_three_scores_by_click_and_the_verdict_drawn(browser: WebDriver, cli: Cli, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    manifest = write(tmp_path / "three.yaml", THREE_ARMS)
    assert cli("run", str(manifest), "--emulator", "--no-progress", "--no-report").code == 0
    run_dir = tmp_path / "output" / "emulator" / "three-phrasings"
    server = ReviewServer(tmp_path, str(run_dir), "--rater", "ann")
    wait = WebDriverWait(browser, 15)

    def body(name: str) -> Any:
        return browser.find_element(By.TAG_NAME, "body").get_attribute(f"data-{name}")

    try:
        browser.get(server.url)
        wait.until(lambda _: body("mode") == "pairs" and body("pair"))
        left, right = (browser.find_element(By.ID, side) for side in ("left", "right"))
        wait.until(lambda _: browser.execute_script("return arguments[0].naturalWidth && arguments[1].naturalWidth", left, right))
        assert browser.find_element(By.ID, "left-arm").text == ""  # blind until the vote
        page = browser.page_source
        assert "plain" not in page.split("<main>")[1].split("</main>")[0]  # no arm named on the page before a vote
        _screenshot(browser, tmp_path, "review-pairs.png")

        keys = [Keys.ARROW_LEFT, Keys.ARROW_RIGHT, Keys.ARROW_DOWN, Keys.ARROW_RIGHT, Keys.ARROW_LEFT] * 2
        shown = []
        for n, key in enumerate(keys, start=1):
            shown.append(body("pair"))
            browser.find_element(By.TAG_NAME, "body").send_keys(key)
            wait.until(_saved(body, n, idle=True))
        assert len(set(shown)) == 10  # a new pair after every vote

        browser.find_element(By.CSS_SELECTOR, 'nav button[data-mode="grid"]').click()
        wait.until(lambda _: body("images") == "12")
        cards = browser.find_elements(By.CSS_SELECTOR, ".card")
        for n, (card, score) in enumerate(zip(cards[:3], (5, 2, 4), strict=True), start=11):
            card.find_element(By.CSS_SELECTOR, f'button[data-score="{score}"]').click()
            wait.until(_saved(body, n))
        assert cards[0].find_element(By.CSS_SELECTOR, 'button[data-score="5"]').get_attribute("aria-pressed") == "true"

        browser.find_element(By.CSS_SELECTOR, 'nav button[data-mode="verdict"]').click()
        wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#verdict svg[data-chart=pairs]"))
        assert browser.find_elements(By.CSS_SELECTOR, "#verdict svg[data-chart=ranking]")
        assert "13 judgments by ann" in browser.find_element(By.ID, "verdict").text
        _screenshot(browser, tmp_path, "review-verdict.png")
    finally:
        server.close()

    lines = ratings(run_dir)
    assert [line["kind"] for line in lines] == ["pair"] * 10 + ["score"] * 3
    assert {line["rater"] for line in lines} == {"ann"}
    winners = [line["winner"] for line in lines[:10]]
    assert winners == ["a", "b", "tie", "b", "a"] * 2  # the key pressed, the side it names
    assert [line["score"] for line in lines[10:]] == [5, 2, 4]
    verdict = json.loads(cli("verdict", str(run_dir), "--json").out)
    assert verdict["judgments"] == 13
    assert sum(p["wins"] + p["losses"] + p["ties"] for p in verdict["pairs"]) == 10
    assert sum(p["ties"] for p in verdict["pairs"]) == 2
    assert len(verdict["ranking"]) == 3

    # The report shows the verdict too, and each scored image's mean score.
    assert cli("report", str(run_dir)).code == 0
    browser.get(f"file://{(run_dir / 'report.html').resolve()}")
    wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#verdict svg[data-chart=pairs]"))
    badges = {element.get_attribute("data-score") for element in browser.find_elements(By.CSS_SELECTOR, "td.cell .score")}
    assert badges == {"5", "2", "4"}
    assert "13 judgments by ann" in browser.find_element(By.ID, "verdict").text


def _saved(body: Callable[[str], Any], n: int, idle: bool = False) -> Callable[[Any], bool]:
    """The page has said saved `n` times (and, with `idle`, is ready for the next key)."""

    def done(_: Any) -> bool:
        return bool(body("saved") == str(n) and (not idle or body("busy") == "false"))

    return done


def _screenshot(browser: WebDriver, tmp_path: Path, name: str) -> None:
    browser.save_screenshot(str(tmp_path / name))
    assert (tmp_path / name).stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copy(tmp_path / name, REPO / "tests" / "screenshots" / name)
