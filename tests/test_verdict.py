"""`flux-batch verdict` (runner/verdict.py) through the CLI, over ratings written as the review
page writes them: known vote tables, ties only, superseded votes, scores by axis, three arms,
raters' agreement, and a 2,000-image run dir against the clock."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from runner.stats import wilson
from tests.bench.fixtures import manifest as bench_manifest
from tests.bench.fixtures import write_records
from tests.conftest import Cli, records, write
from tests.support import REPO

AB = REPO / "manifests" / "ab-prompt-test.yaml"


def _judged(run_dir: Path, lines: list[dict[str, Any]]) -> None:
    with open(run_dir / "ratings.jsonl", "a", encoding="utf-8") as out:
        for n, line in enumerate(lines):
            out.write(json.dumps({"at": f"2026-12-04T07:{n // 60:02d}:{n % 60:02d}.000Z", **line}) + "\n")


def _pairs(run_dir: Path) -> list[tuple[str, str]]:
    """(plain job, styled job) of each setting of the A/B run."""
    by_setting: dict[str, dict[str, str]] = {}
    for line in records(run_dir):
        by_setting.setdefault(json.dumps(line["axes"], sort_keys=True), {})[line["prompt_id"]] = line["job_id"]
    return [(jobs["plain"], jobs["styled"]) for jobs in by_setting.values()]


@pytest.fixture
def ab_run(cli: Cli, tmp_path: Path) -> Path:
    assert cli("run", str(AB), "--emulator", "--out", str(tmp_path / "ab"), "--no-progress", "--no-report").code == 0
    return tmp_path / "ab"


def test_a_known_vote_table_and_a_superseded_vote(cli: Cli, ab_run: Path) -> None:
    outcomes = ["styled"] * 30 + ["plain"] * 10 + ["tie"] * 5
    pairs = _pairs(ab_run)
    votes = []
    for n, outcome in enumerate(outcomes):  # 5 raters x 9 pairs: 45 standing votes
        plain, styled = pairs[n % 9]
        winner = {"plain": "a", "styled": "b", "tie": "tie"}[outcome]
        votes.append({"kind": "pair", "a": plain, "b": styled, "winner": winner, "rater": f"r{n // 9}"})
    _judged(ab_run, votes)
    result = cli("verdict", str(ab_run), "--json")
    assert result.code == 0, result.err
    pair = json.loads(result.out)["pairs"]
    low, high = wilson(10, 40)
    assert pair == [{"a": "plain", "b": "styled", "wins": 10, "losses": 30, "ties": 5, "win_rate": 0.25,
                     "ci95": [round(low, 4), round(high, 4)], "p_value": 0.002221}]  # fmt: skip
    words = cli("verdict", str(ab_run)).out
    assert "styled wins 30 of 40 decided votes against plain (75%, 95% CI 60-86%, p = 0.002), 5 ties" in words
    assert words.startswith("45 judgments by r0, r1, r2, r3, r4\n")

    # r0 changes its mind on its first pair (styled won it), naming the jobs the other way round.
    plain, styled = pairs[0]
    _judged(ab_run, [{"kind": "pair", "a": styled, "b": plain, "winner": "b", "rater": "r0", "at": "2026-12-05T08:00:00.000Z"}])
    again = json.loads(cli("verdict", str(ab_run), "--json").out)
    assert (again["judgments"], again["pairs"][0]["wins"], again["pairs"][0]["losses"]) == (45, 11, 29)


def test_ties_only_and_too_few_votes(cli: Cli, ab_run: Path) -> None:
    _judged(ab_run, [{"kind": "pair", "a": p, "b": s, "winner": "tie", "rater": "ann"} for p, s in _pairs(ab_run)])
    tied = json.loads(cli("verdict", str(ab_run), "--json").out)["pairs"][0]
    assert (tied["wins"], tied["losses"], tied["ties"], tied["win_rate"], tied["ci95"], tied["p_value"]) == (
        0,
        0,
        9,
        None,
        [0, 1],
        1,
    )
    assert "plain vs styled: no decided votes yet (9 ties)" in cli("verdict", str(ab_run)).out

    few = [{"kind": "pair", "a": p, "b": s, "winner": "b", "rater": "bob"} for p, s in _pairs(ab_run)[:3]]
    _judged(ab_run, few)
    words = cli("verdict", str(ab_run)).out
    assert (
        "plain vs styled: too few votes to tell: styled wins 3 of 3 decided votes (100%, 95% CI 44-100%, p = 0.250), 9 ties"
        in words
    )
    assert "need about 191 more for a 10-point difference" in words


def test_no_judgments_and_damaged_lines(cli: Cli, ab_run: Path) -> None:
    assert "no judgments yet: `flux-batch review RUN_DIR` opens a page" in cli("verdict", str(ab_run)).out
    (ab_run / "ratings.jsonl").write_text(
        '{"kind": "pair", "a": "x"\nnot json\n{"kind": "score", "job_id": "a", "score": 9, "rater": "x", "at": "y"}\n'
    )
    assert json.loads(cli("verdict", str(ab_run), "--json").out)["judgments"] == 0


def test_mean_score_by_swept_value_with_its_t_interval(cli: Cli, tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "s.yaml",
        "version: 1\nname: s\ndefaults: {megapixels: 0.25}\nprompts:\n  - {id: p, prompt: a heron}\n"
        "sweep:\n  guidance: [2, 3.5, 5]\nseeds: [1, 2, 3]\n",
    )
    assert cli("run", str(manifest), "--emulator", "--no-progress", "--no-report").code == 0
    run_dir = tmp_path / "output" / "emulator" / "s"
    given = {2: [1, 2, 2, 1, 3, 2], 3.5: [4, 5, 4, 3, 4, 5], 5: [3, 4, 3, 3, 2, 4]}
    scores = []
    for guidance, values in given.items():
        jobs = [line["job_id"] for line in records(run_dir) if line["axes"]["guidance"] == guidance]
        for n, value in enumerate(values):  # two raters score each of the three images
            scores.append({"kind": "score", "job_id": jobs[n % 3], "score": value, "rater": "ann" if n < 3 else "bob"})
    _judged(run_dir, scores)
    axis = json.loads(cli("verdict", str(run_dir), "--json").out)["axes"]["guidance"]
    assert [row["value"] for row in axis] == [2, 3.5, 5] and all(row["n"] == 6 for row in axis)
    for row in axis:
        values = given[row["value"]]
        half = 2.5706 * statistics.stdev(values) / math.sqrt(6)  # t(0.975, 5 degrees of freedom)
        assert row["mean"] == pytest.approx(statistics.mean(values), abs=1e-4)
        assert row["ci95"] == pytest.approx([statistics.mean(values) - half, statistics.mean(values) + half], abs=1e-3)
    assert "mean score by guidance: 2 → 1.83 (n 6, 95% CI 1.0-2.6); 3.5 → 4.17" in cli("verdict", str(run_dir)).out


def test_three_arms_are_ranked_and_raters_compared(cli: Cli, tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "three.yaml",
        "version: 1\nname: three\ndefaults: {megapixels: 0.25}\nprompts:\n"
        "  - {id: one, prompt: 'a {thing}', vars: {thing: [mug, watch]}}\n"
        "  - {id: two, prompt: 'a photo of a {thing}', vars: {thing: [mug, watch]}}\n"
        "  - {id: three, prompt: 'a studio photo of a {thing}', vars: {thing: [mug, watch]}}\n"
        "seeds: [1, 2, 3]\n",
    )
    assert cli("run", str(manifest), "--emulator", "--no-progress", "--no-report").code == 0
    run_dir = tmp_path / "output" / "emulator" / "three"
    jobs: dict[str, dict[str, str]] = {}
    for line in records(run_dir):
        jobs.setdefault(json.dumps(line["axes"], sort_keys=True), {})[line["prompt_id"]] = line["job_id"]
    votes = []
    for rater in ("ann", "bob"):
        for setting in jobs.values():  # three beats two beats one, every time
            for better, worse in (("three", "two"), ("two", "one"), ("three", "one")):
                votes.append({"kind": "pair", "a": setting[worse], "b": setting[better], "winner": "b", "rater": rater})
    _judged(run_dir, votes)
    verdict = json.loads(cli("verdict", str(run_dir), "--json", "--by-rater").out)
    ranking = verdict["ranking"]
    assert [row["arm"] for row in ranking] == ["three", "two", "one"]
    assert ranking[0]["strength"] > 0.5 > ranking[2]["strength"]
    assert all(row["ci95"][0] < row["strength"] < row["ci95"][1] for row in ranking)
    assert verdict["agreement"] == [
        {
            "raters": ["ann", "bob"],
            "pairs": 18,
            "agree": 18,
            "agreement": 1.0,
            "kappa": 1.0,
            "scores": 0,
            "mean_score_difference": None,
        }
    ]
    words = cli("verdict", str(run_dir), "--by-rater").out
    assert "ranking (the chance to beat an average arm, 95% CI):\n  1. three " in words
    assert "ann and bob: agree on 18 of 18 pairs both judged (100%, Cohen's kappa 1.00)" in words


def test_cohens_kappa_of_a_known_table(cli: Cli, ab_run: Path) -> None:
    pairs = [tuple(sorted(pair)) for pair in _pairs(ab_run)]
    ann = "aaaaabbbb"  # the first (by job id) or the second image of each pair wins
    bob = "aaaabbbaa"
    votes = [{"kind": "pair", "a": a, "b": b, "winner": w, "rater": "ann"} for (a, b), w in zip(pairs, ann, strict=True)]
    votes += [{"kind": "pair", "a": a, "b": b, "winner": w, "rater": "bob"} for (a, b), w in zip(pairs, bob, strict=True)]
    _judged(ab_run, votes)
    row = json.loads(cli("verdict", str(ab_run), "--json", "--by-rater").out)["agreement"][0]
    # Observed 6/9; expected by chance 5/9·6/9 + 4/9·3/9 = 42/81; kappa = (54 − 42)/(81 − 42) = 12/39.
    assert (row["pairs"], row["agree"], row["kappa"]) == (9, 6, round(12 / 39, 4))


def test_a_2000_image_run_dir_opens_in_review_in_2_s_and_its_verdict_in_1_s(tmp_path: Path) -> None:
    source = bench_manifest(tmp_path / "big.yaml", seeds=1)  # 4 arms x 500 settings
    run_dir = tmp_path / "big"
    write_records(source, run_dir, done=lambda index: True)
    (run_dir / "manifest.yaml").write_text(source.read_text())
    lines = records(run_dir)
    by_setting: dict[str, list[str]] = {}
    for line in lines:
        by_setting.setdefault(json.dumps(line["axes"], sort_keys=True), []).append(line["job_id"])
    votes: list[dict[str, Any]] = [
        {"kind": "pair", "a": jobs[0], "b": jobs[1], "winner": "ab"[n % 2], "rater": "ann"}
        for n, jobs in enumerate(by_setting.values())
    ]
    votes += [
        {"kind": "score", "job_id": line["job_id"], "score": 1 + n % 5, "rater": "ann"} for n, line in enumerate(lines[:1000])
    ]
    _judged(run_dir, votes)

    started = time.perf_counter()
    verdict = subprocess.run([sys.executable, "-m", "runner", "verdict", str(run_dir), "--json"], capture_output=True, text=True)
    verdict_seconds = time.perf_counter() - started
    assert verdict.returncode == 0, verdict.stderr
    assert json.loads(verdict.stdout)["judgments"] == 1500
    assert verdict_seconds < 1.0, f"verdict took {verdict_seconds:.2f} s"

    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "runner", "review", str(run_dir), "--no-open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        with urllib.request.urlopen(url, timeout=10) as page:
            assert b"review-token" in page.read()
        with urllib.request.urlopen(url + "api/pair", timeout=10) as answer:
            assert json.loads(answer.read())["pair"] is not None
        opened = time.perf_counter() - started
    finally:
        server.terminate()
        server.communicate(timeout=20)
    assert opened < 2.0, f"review took {opened:.2f} s to show its first pair"
