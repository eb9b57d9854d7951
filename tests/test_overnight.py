"""Unattended runs: orders, caps, deadlines, estimates, status, logs and the finish hook."""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.events import Event
from runner.manifest import loads
from runner.plan import make_plan
from runner.progress import Progress
from runner.settings import deadline_at
from tests.conftest import Cli, EmulatorProcesses, manifest_text, records, run_cli, write

GRID = (
    "version: 1\nname: grid\nprompts:\n  - {id: a, prompt: 'one {x}', vars: {x: [p, q]}}\n"
    "  - {id: b, prompt: 'two'}\n  - {id: c, prompt: 'three'}\n"
    "sweep:\n  guidance: [1, 2, 3]\n  num_inference_steps: [10, 20]\nzip:\n  output_quality: [50, 60]\n  go_fast: [true, false]\n"
    "seeds: [5, 6]\n"
)


@pytest.mark.parametrize("order", ["interleave", "shuffle"])
def test_every_order_yields_each_job_exactly_once(order: str) -> None:
    plan = make_plan(loads(GRID))
    reference = [job.as_dict() for job in plan.jobs()]
    reordered = [job.as_dict() for job in plan.jobs(order)]
    assert len(reordered) == plan.total == 96
    key = lambda job: job["job_id"]  # noqa: E731
    assert sorted(reordered, key=key) == sorted(reference, key=key)
    assert [j["job_id"] for j in reordered] != [j["job_id"] for j in reference]


def test_job_at_computes_the_manifest_order() -> None:
    plan = make_plan(loads(GRID))
    listed = [job.as_dict() for job in plan.jobs()]
    computed = [plan.job_at(p, k).as_dict() for p in range(len(plan.prompts)) for k in range(plan.count(plan.prompts[p]))]
    assert computed == listed


def test_interleave_takes_prompts_in_turn_and_spreads_over_the_grid() -> None:
    plan = make_plan(loads(GRID))
    first = list(plan.jobs("interleave"))[:12]
    assert [job.prompt_id for job in first[:6]] == ["a", "b", "c", "a", "b", "c"]
    b_jobs = [job for job in first if job.prompt_id == "b"]
    assert len({job.axes["guidance"] for job in b_jobs}) == 3  # 4 jobs of b already cover every guidance


def test_shuffle_is_deterministic() -> None:
    plan = make_plan(loads(GRID))
    assert [j.job_id for j in plan.jobs("shuffle")] == [j.job_id for j in plan.jobs("shuffle")]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    seeds=st.integers(1, 3),
    order=st.sampled_from(["interleave", "shuffle"]),
)
def test_orders_are_permutations(sizes: list[int], seeds: int, order: str) -> None:
    prompts = "".join(f"  - {{id: p{i}, prompt: 'p{i} {{v}}', vars: {{v: {list(range(n))}}}}}\n" for i, n in enumerate(sizes))
    plan = make_plan(loads(f"version: 1\nname: t\nprompts:\n{prompts}sweep: {{guidance: [1, 2]}}\nrepeats: {seeds}\n"))
    assert sorted(j.job_id for j in plan.jobs(order)) == sorted(plan.job_ids())


def test_deadlines_are_durations_or_the_next_clock_time() -> None:
    now = datetime(2026, 11, 23, 22, 15).astimezone()
    assert deadline_at("8h", now) == now + timedelta(hours=8)
    assert deadline_at("1h30m", now) == now + timedelta(minutes=90)
    assert deadline_at("45s", now) == now + timedelta(seconds=45)
    assert deadline_at("06:30", now) == (now + timedelta(days=1)).replace(hour=6, minute=30)
    assert deadline_at("23:00", now) == now.replace(hour=23, minute=0)


def test_progress_without_a_terminal_stays_small() -> None:
    fake = {"now": 0.0}
    stream = io.StringIO()
    progress = Progress(stream=stream, clock=lambda: fake["now"])
    progress(Event("planned", count=10_000, total=10_000))
    for n in range(10_000):
        fake["now"] = n * 0.01  # 10,000 jobs over 100 seconds
        progress(Event("done"))
    lines = stream.getvalue().splitlines()
    assert 10 <= len(lines) <= 11  # one at the start, then one every 10 s
    assert "\r" not in stream.getvalue()
    assert lines[0].split("] ")[1] == "starting: 10,000 jobs to run"
    assert lines[1].split("] ")[1].startswith("1,001/10,000 done, 0 failed, 0 retries")


def test_a_resumed_run_says_what_it_resumes_and_counts_from_there() -> None:
    fake = {"now": 0.0}
    stream = io.StringIO()
    progress = Progress(stream=stream, clock=lambda: fake["now"])
    progress(Event("planned", count=56, done=44, total=100))
    for n in range(56):
        fake["now"] = n * 0.5
        progress(Event("done"))
    lines = [line.split("] ")[1] for line in stream.getvalue().splitlines()]
    assert lines[0] == "resuming: 44 of 100 done, 56 to run"
    assert lines[1].startswith("65/100 done")  # 21 finished in the first 10 s, on top of 44
    assert not any(line.startswith("starting") for line in lines)


# -- the command line against an emulator process ---------------------------------------------


def test_max_credits_caps_the_spend_of_one_invocation(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(10, credits_per_image=2.5))
    result = run_cli(cli, manifest, served.url, "--max-credits", "10")
    assert result.code == 3
    assert "4 new jobs submitted, the --max-credits cap of 10 at 2.5 an image" in result.err
    assert served.stats()["generations"] == 4
    status = json.loads(cli("status", str(tmp_path / "output" / "t"), "--json").out)
    assert status["stopped"] == "max_credits"  # the cap that stopped it, not --max-jobs
    plan = cli("plan", str(manifest))
    assert "4 done, 6 to run" in plan.out
    assert "about 15 credits at 2.5 an image" in plan.out
    assert "the median of 4 images made here" in plan.out


def test_max_credits_needs_the_price_of_an_image(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    manifest = write(tmp_path / "m.yaml", manifest_text(3))
    result = cli("run", str(manifest), "--base-url", "http://127.0.0.1:9", "--max-credits", "5")
    assert result.code == 2
    assert "--max-credits needs the price of an image" in result.err


def test_status_plan_log_and_history_of_a_partial_run(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--refuse", "0.3", "--seed", "3")
    manifest = write(tmp_path / "m.yaml", manifest_text(12))
    first = run_cli(cli, manifest, served.url, "--max-jobs", "8")
    assert first.code == 3
    run_dir = tmp_path / "output" / "t"
    failed = sum(1 for line in records(run_dir) if line["status"] == "failed")
    assert 0 < failed < 8
    status = cli("status", str(run_dir), "--json")
    counts = json.loads(status.out)
    assert (counts["total"], counts["done"], counts["failed"], counts["pending"]) == (12, 8 - failed, failed, 4)
    assert counts["failed_by_kind"] == {"validation": failed}
    assert counts["last_run"]["stopped"]["reason"] == "max_jobs"
    human = cli("status", str(run_dir))
    assert f"12 jobs: {8 - failed} done, {failed} failed (validation {failed}), 4 pending" in human.out
    assert f"  {failed} x validation: the provider refused the request (422): NSFW content detected" in human.out
    assert counts["failures"][0]["jobs"] == failed and counts["failures"][0]["kind"] == "validation"
    second = run_cli(cli, manifest, served.url)
    assert second.code in (0, 1)
    history = (run_dir / "summary.history.jsonl").read_text().splitlines()
    assert len(history) == 2
    log = (run_dir / "run.log").read_text()
    assert "FAILED p/" in log and "validation: the provider refused the request (422)" in log
    assert "STOP: 8 new jobs submitted, the --max-jobs cap" in log
    assert log.count("finished with exit code") == 2


def test_on_finish_runs_with_the_summary_path_and_without_the_key(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEMIN_API_KEY", "emulator-key")
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(3))
    hook = write(
        tmp_path / "hook.py",
        "import json, os, sys\n"
        "summary = json.load(open(sys.argv[1]))\n"
        "open('hook.out', 'w').write(json.dumps([sys.argv[1], os.environ['FLUX_BATCH_EXIT_CODE'],"
        " 'ONEMIN_API_KEY' in os.environ, summary['jobs']['succeeded']]))\n",
    )
    result = run_cli(cli, manifest, served.url, "--on-finish", f"{sys.executable} {hook}")
    assert result.code == 0
    path, code, key_seen, succeeded = json.loads((tmp_path / "hook.out").read_text())
    assert path == str(Path("output") / "t" / "summary.json")
    assert (code, key_seen, succeeded) == ("0", False, 3)


def test_plan_warns_before_a_very_large_grid(cli: Cli, tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "big.yaml",
        "version: 1\nname: big\nprompts:\n  - {id: a, prompt: x}\nsweep:\n"
        f"  guidance: {list(range(50))}\n  num_inference_steps: {list(range(1, 51))}\nrepeats: 5\n"
        "run: {credits_per_image: 1.5}\n",
    )
    result = cli("plan", str(manifest))
    assert result.code == 0
    assert "warning: " in result.err and "makes 12,500 jobs and about 18,750 credits" in result.err


def test_a_deadline_stops_the_run_with_exit_3(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    import time

    served = emulator_process("--latency", "0.3,0.3", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(40, concurrency=2))
    started = time.monotonic()
    result = run_cli(cli, manifest, served.url, "--deadline", "1s")
    assert result.code == 3
    assert time.monotonic() - started < 3
    assert "stopped early: the deadline has passed. Run the same command again to resume." in result.err
    assert 4 <= len(records(tmp_path / "output" / "t")) <= 10


def test_on_a_terminal_progress_is_a_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress(stream=stream)
    progress(Event("planned", count=3, done=2, total=5))
    for _ in range(3):
        progress(Event("done"))
    progress.close()
    drawn = stream.getvalue()
    assert "2/5" in drawn and "5/5" in drawn and "img" in drawn and "\r" in drawn  # the bar starts at what was done
