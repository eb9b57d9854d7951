"""Trust at the boundary between the emulator and a real API, and re-runs that do what the user
means: emulator pictures never pass for paid ones, uploads belong to their endpoint, a refusal
stays refused, a paid image is fetched in the invocation that paid for it, and every run says
what it does."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.events import Event
from runner.pacing import RetryPolicy
from tests.conftest import (
    FAST,
    REPO,
    Api,
    Cli,
    EmulatorProcesses,
    manifest_text,
    records,
    run_module,
    run_text,
    start_run,
    wait_for_lines,
    write,
)
from tests.hostile import Hostile

EXAMPLE = REPO / "manifests" / "example.yaml"


def flux_batch(cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`flux-batch ARGV` as a user types it, with `env` on top of a clean environment."""
    environment = {k: v for k, v in os.environ.items() if k not in ("ONEMIN_API_KEY", "ONEMIN_BASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "runner", *argv], capture_output=True, text=True, cwd=cwd, timeout=120, env={**environment, **env}
    )


# -- 1. a run dir belongs to one kind of endpoint ------------------------------------------------


def test_the_readme_flow_pays_for_real_images_the_second_time(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    first = flux_batch(tmp_path, "run", str(EXAMPLE), "--emulator")  # `make run` without a key
    assert first.returncode == 0, first.stderr
    assert "images in output/emulator/example/images" in first.stdout
    assert "these images come from the emulator: placeholders, not paid results" in first.stdout
    real = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--keys", "sk-the-users-own-key")
    # `export ONEMIN_API_KEY=...; make run`, the "real" API being a second emulator process here.
    second = flux_batch(tmp_path, "run", str(EXAMPLE), ONEMIN_API_KEY="sk-the-users-own-key", ONEMIN_BASE_URL=real.url)
    assert second.returncode == 0, second.stderr
    assert "example: 8 of 8 jobs done (8 this run" in second.stdout
    assert real.stats()["generations"] == 8  # nothing was taken for done from the first run
    assert len(records(tmp_path / "output" / "example")) == 8
    assert len(records(tmp_path / "output" / "emulator" / "example")) == 8


def test_a_run_dir_of_emulator_images_is_refused_for_a_real_api_and_back(tmp_path: Path, hostile: Hostile) -> None:
    made = flux_batch(tmp_path, "run", str(EXAMPLE), "--emulator", "--out", "mine")
    assert made.returncode == 0, made.stderr
    before = {p: p.read_bytes() for p in (tmp_path / "mine").rglob("*") if p.is_file() and p.name != ".lock"}
    refused = flux_batch(tmp_path, "run", str(EXAMPLE), "--out", "mine", ONEMIN_API_KEY="sk-real")
    assert refused.returncode == 2
    assert (
        "mine holds images made by the emulator (placeholders, not paid results), so it cannot take images from" in refused.stderr
    )
    assert "https://api.1min.ai" in refused.stderr and "Run into another directory, e.g. --out mine-api" in refused.stderr
    after = {p: p.read_bytes() for p in (tmp_path / "mine").rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before  # refused before anything was written, let alone sent

    real = flux_batch(tmp_path, "run", str(EXAMPLE), "--out", "paid", "--base-url", hostile.url, ONEMIN_API_KEY="sk-real")
    assert real.returncode == 0, real.stderr
    back = flux_batch(tmp_path, "run", str(EXAMPLE), "--out", "paid", "--emulator")
    assert back.returncode == 2
    assert f"paid holds paid images from {hostile.url}; the emulator's placeholder pictures cannot join them" in back.stderr
    status = flux_batch(tmp_path, "status", "paid")
    assert f"images from {hostile.url}" in status.stdout


def test_an_emulator_answering_for_a_real_run_dir_stops_the_run_and_records_nothing(
    tmp_path: Path, hostile: Hostile, emulator_process: EmulatorProcesses
) -> None:
    manifest = write(tmp_path / "m.yaml", manifest_text(6))
    assert flux_batch(tmp_path, "run", str(manifest), "--base-url", hostile.url, "--max-jobs", "2").returncode == 3
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    mixed = flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url, "--no-progress")
    assert mixed.returncode == 2, mixed.stderr
    assert f"{served.url} answers as the emulator, but output/t holds images from {hostile.url}" in mixed.stderr
    assert len(records(tmp_path / "output" / "t")) == 2


def test_moving_between_two_real_endpoints_is_allowed_and_remembered(tmp_path: Path, hostile: Hostile) -> None:
    from tests.hostile import Hostile

    relay = Hostile().start()
    try:
        manifest = write(tmp_path / "m.yaml", manifest_text(4))
        assert flux_batch(tmp_path, "run", str(manifest), "--base-url", hostile.url, "--max-jobs", "2").returncode == 3
        moved = flux_batch(tmp_path, "run", str(manifest), "--base-url", relay.url)
        assert moved.returncode == 0, moved.stderr
        endpoint = json.loads((tmp_path / "output" / "t" / "endpoint.json").read_text())
        assert endpoint == {"emulated": False, "base_urls": [hostile.url, relay.url]}
        assert json.loads((tmp_path / "output" / "t" / "summary.json").read_text())["emulated"] is False
    finally:
        relay.stop()


# -- 2. uploads are per endpoint --------------------------------------------------------------


def test_uploads_belong_to_their_endpoint_and_a_lost_one_is_uploaded_again_once(
    tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "sketch.png").write_bytes((REPO / "manifests" / "inputs" / "cottage-sketch.png").read_bytes())

    def manifest(strengths: str) -> Path:
        return write(
            tmp_path / "m.yaml",
            "version: 1\nname: i2i\ndefaults: {megapixels: 0.25, image_prompt: inputs/sketch.png}\n"
            f"prompts:\n  - {{id: a, prompt: watercolour}}\nsweep:\n  prompt_strength: {strengths}\nseeds: [1]\n",
        )

    one = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    two = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    assert flux_batch(tmp_path, "run", str(manifest("[0.3]")), "--base-url", one.url).returncode == 0
    moved = flux_batch(tmp_path, "run", str(manifest("[0.3, 0.6]")), "--base-url", two.url)
    assert moved.returncode == 0, moved.stderr
    assert (one.stats()["uploads"], two.stats()["uploads"]) == (1, 1)  # the picture went to the new endpoint too
    assets = json.loads((tmp_path / "output" / "i2i" / "assets.json").read_text())
    assert set(assets["endpoints"]) == {one.url, two.url}

    # The endpoint lost the upload it holds a record of: it says it cannot load it.
    assets["endpoints"][two.url] = {token: "development/assets/long-gone.png" for token in assets["endpoints"][two.url]}
    (tmp_path / "output" / "i2i" / "assets.json").write_text(json.dumps(assets))
    healed = flux_batch(tmp_path, "run", str(manifest("[0.3, 0.6, 0.9]")), "--base-url", two.url)
    assert healed.returncode == 0, healed.stderr
    assert two.stats()["uploads"] == 2
    assert all(line["status"] == "success" for line in records(tmp_path / "output" / "i2i"))


# -- 3. refused for good stays refused ----------------------------------------------------------


def test_a_refusal_is_not_sent_again_by_a_plain_rerun_only_with_retry_failed(
    tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--refuse", "0.4", "--seed", "5")
    manifest = write(tmp_path / "m.yaml", manifest_text(12))
    first = flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url)
    assert first.returncode == 1
    refused = sum(1 for line in records(tmp_path / "output" / "t") if line["status"] == "failed")
    assert 0 < refused < 12
    sent = served.stats()["requests"]["features"]

    again = flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url)
    assert again.returncode == 1
    assert served.stats()["requests"]["features"] == sent  # a nightly cron job sends none of them again
    assert (
        f"{refused} job{'s' if refused > 1 else ''} failed for good earlier" in again.stderr
        and "--retry-failed sends them" in again.stderr
    )
    status = flux_batch(tmp_path, "status", "output/t")
    assert f"{refused} failed for good: a plain re-run leaves them; --retry-failed sends them again" in status.stdout
    plan = flux_batch(tmp_path, "plan", str(manifest))
    assert f"{12 - refused} done, {refused} failed for good (not sent again without --retry-failed), 0 to run" in plan.stdout
    plan = flux_batch(tmp_path, "plan", str(manifest), "--retry-failed")
    assert f"{refused} failed for good (sent again), {refused} to run" in plan.stdout

    retried = flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url, "--retry-failed")
    assert served.stats()["requests"]["features"] == sent + refused
    assert retried.returncode in (0, 1)


async def test_retryable_failures_are_taken_up_by_every_rerun(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(server_error=1.0))
    summary, _ = await run_text(manifest_text(4), tmp_path / "run", url, max_attempts=2)
    assert summary["jobs"]["failed"] == 4
    assert all(line["error"]["retryable"] for line in records(tmp_path / "run"))
    server.knobs = server.knobs.with_(server_error=0.0)
    summary, _ = await run_text(manifest_text(4), tmp_path / "run", url)
    assert summary["jobs"]["submitted"] == 4 and summary["jobs"]["done"] == 4


# -- 4. a paid image is fetched in the invocation that paid for it -------------------------------


@pytest.mark.parametrize("seed", range(10))
async def test_a_storm_of_faults_still_finishes_every_job_in_one_invocation(api: Api, tmp_path: Path, seed: int) -> None:
    server, url = await api(FAST.with_(download_fail=0.25, server_error=0.1, seed=seed))
    policy = RetryPolicy(max_attempts=6, base_delay=0.005, max_delay=0.02)
    summary, stop = await run_text(manifest_text(40), tmp_path / "run", url, policy=policy, concurrency=8)
    assert not stop.requested
    assert summary["jobs"]["done"] == 40 and summary["jobs"]["failed"] == 0, summary["failure_examples"]
    stats = server.stats.as_dict()
    assert stats["generations"] == 40 and stats["generated_twice"] == []
    assert summary["download_retries"] > 0


async def test_an_image_that_cannot_be_fetched_now_gets_one_more_pass_at_the_end(api: Api, tmp_path: Path) -> None:
    # Two tries at each of two URLs fail (4 in all), then the host recovers: by the end of the run.
    server, url = await api(FAST.with_(download_fail_first=4))
    policy = RetryPolicy(max_attempts=2, base_delay=0.005, max_delay=0.02)
    summary, _ = await run_text(manifest_text(3), tmp_path / "run", url, policy=policy)
    assert summary["jobs"]["succeeded"] == 3 and summary["jobs"]["failed"] == 0
    lines = records(tmp_path / "run")
    # Each paid image was recorded with its aiRecord at once, then fetched on the last pass.
    assert [line["status"] for line in lines].count("failed") == 3
    assert [line["status"] for line in lines].count("success") == 3
    assert server.stats.as_dict()["generations"] == 3


async def test_a_download_honours_the_hosts_retry_after(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(download_fail_first=1, download_retry_after=0.4))
    policy = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=5)
    events: list[Event] = []
    summary, _ = await run_text(manifest_text(1), tmp_path / "run", url, policy=policy, events=events)
    assert summary["jobs"]["succeeded"] == 1 and summary["download_retries"] == 1
    (retry,) = [event for event in events if event.kind == "retry"]
    assert retry.message == "download" and retry.wait == 0.4  # the host's Retry-After, over a backoff of at most 1 ms


# -- 5. say what happens ------------------------------------------------------------------------------


def test_a_resumed_run_says_what_it_resumes_and_a_rerun_with_nothing_to_do_keeps_the_figures(
    tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(10))
    assert flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url, "--max-jobs", "4").returncode == 3
    resumed = flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url)
    assert resumed.returncode == 0
    assert "resuming: 4 of 10 done, 6 to run" in resumed.stderr
    summary = (tmp_path / "output" / "t" / "summary.json").read_text()
    idle = flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url)
    assert idle.returncode == 0
    assert "t: nothing to do: 10 of 10 jobs done (last run " in idle.stdout
    assert (tmp_path / "output" / "t" / "summary.json").read_text() == summary
    status = flux_batch(tmp_path, "status", "output/t")
    assert "last run: " in status.stdout and ": 6 succeeded, 0 failed" in status.stdout
    assert len((tmp_path / "output" / "t" / "summary.history.jsonl").read_text().splitlines()) == 2


def test_status_says_when_a_run_is_live_in_the_run_dir(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.3,0.4", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(12, concurrency=1))
    run = start_run(manifest, served.url)
    try:
        wait_for_lines(tmp_path / "output" / "t", 1)
        live = flux_batch(tmp_path, "status", "output/t", "--json")
        assert json.loads(live.stdout)["live"].startswith(f"flux-batch pid {run.pid}, started ")
        assert f"live: flux-batch pid {run.pid}" in flux_batch(tmp_path, "status", "output/t").stdout
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=30)
    assert json.loads(flux_batch(tmp_path, "status", "output/t", "--json").stdout)["live"] is None


def test_output_cut_by_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    assert run_module(tmp_path, "run", str(EXAMPLE), "--emulator", "--out", "run", "--no-report").returncode == 0
    for _ in range(4):
        piped = subprocess.run(
            f"'{sys.executable}' -m runner status --json run | head -1", shell=True, capture_output=True, text=True, cwd=tmp_path
        )
        assert piped.stdout == "{\n"
        assert piped.stderr == "", piped.stderr


def test_one_is_singular(cli: Cli, tmp_path: Path) -> None:
    result = cli("validate", str(write(tmp_path / "m.yaml", manifest_text(1))))
    assert result.out.endswith(": ok, 1 job from 1 prompt\n")


def test_a_signal_during_the_report_leaves_the_runs_exit_code(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    # Large pictures make the report's thumbnails take a while; the signal arrives meanwhile.
    served = emulator_process("--latency", "0.001,0.002")
    manifest = write(tmp_path / "m.yaml", manifest_text(60, concurrency=16).replace("megapixels: 0.25", "megapixels: 2"))
    run = start_run(manifest, served.url)
    summary = tmp_path / "output" / "t" / "summary.json"
    deadline = time.monotonic() + 60
    while not summary.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err  # every job succeeded: that is the run's result
    assert "60 of 60 jobs done" in out
    assert "SIGTERM received after the run: the rest of its report was skipped" in err


# -- 6. help that teaches ----------------------------------------------------------------------------


def test_every_command_explains_itself_and_each_of_its_arguments() -> None:
    from runner.cli_args import parser as make_parser

    parser = make_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    verbs: dict[str, argparse.ArgumentParser] = subparsers.choices
    assert set(verbs) == {"validate", "plan", "run", "report", "status", "emulator"}
    for name, verb in verbs.items():
        assert verb.description and len(verb.description) > 60, name
        for action in verb._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    knobs = " ".join(verbs["emulator"].format_help().split())
    assert "seconds a generation takes, drawn uniformly from MIN,MAX" in knobs
    assert "probability (0-1) of a 500 with a JSON body" in knobs


# -- 7. the report tells the whole setting -----------------------------------------------------------


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


def test_the_readme_cites_nothing_outside_the_repository() -> None:
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "SPEC.md" not in readme
    for target in re.findall(r"\]\((?!https?://|#)([^)]+)\)", readme):
        assert (REPO / target).exists(), target
