"""A run of a plan into its run dir (runner/execute.py): resumes that pay only for what is missing,
damaged records, refusals held back."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import (
    FAST,
    Api,
    Cli,
    EmulatorProcesses,
    manifest_text,
    records,
    run_cli,
    run_text,
    write,
)
from tests.support import flux_batch


def test_damaged_lines_are_set_aside_and_their_images_recovered_not_paid_again(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(12, concurrency=1))
    assert run_cli(cli, manifest, served.url).code == 0
    run_dir = tmp_path / "output" / "t"
    path = run_dir / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    deleted = json.loads(lines[1])["files"][0]
    lines[4] = b"\0" * len(lines[4])  # line 5 NULed, its line end too: it runs into line 6
    lines[9] = lines[9][: len(lines[9]) // 2] + b"\n"  # line 10 cut short
    path.write_bytes(b"".join(lines))
    (run_dir / deleted).unlink()

    status = json.loads(cli("status", str(run_dir), "--json").out)
    assert status["damaged_lines"] == 2 and status["done"] == 10
    again = run_cli(cli, manifest, served.url)
    assert again.code == 0, again.err
    # Numbered as the file reads now: line 5 ran into line 6, so the cut one is line 9.
    assert "records.jsonl had 2 damaged line(s): line 5 (" in again.err and "NUL bytes), line 9 (" in again.err
    assert "12 of 12 jobs done" in again.out
    stats = served.stats()
    assert stats["generations"] == 12 and stats["generated_twice"] == []  # nothing paid twice
    assert (run_dir / deleted).is_file()  # fetched again from its aiRecord
    torn = (run_dir / "records.torn").read_text()
    assert "# line 5 of records.jsonl" in torn and "# line 9 of records.jsonl" in torn
    recovered = [line for line in records(run_dir) if line.get("recovered")]
    assert len(recovered) == 2
    after = json.loads(cli("status", str(run_dir), "--json").out)
    assert (after["done"], after["failed"], after["pending"], after["damaged_lines"]) == (12, 0, 0, 0)
    from tests.support import page_data

    assert page_data(run_dir / "report.html")["counts"] == {"total": 12, "done": 12, "failed": 0, "pending": 0}


async def test_a_rerun_of_a_finished_run_dir_sends_nothing(api: Api, tmp_path: Path) -> None:
    server, url = await api()
    await run_text(manifest_text(5), tmp_path / "run", url)
    requests_before = dict(server.stats.requests)
    last = (tmp_path / "run" / "summary.json").read_text()
    summary, _ = await run_text(manifest_text(5), tmp_path / "run", url)
    assert server.stats.requests == requests_before
    assert len(records(tmp_path / "run")) == 5
    # Nothing to do: the last run's figures stand, in summary.json and in what the run returns.
    assert (tmp_path / "run" / "summary.json").read_text() == last
    assert summary["jobs"]["submitted"] == 5 and summary["jobs"]["done"] == 5 and summary["jobs"]["pending"] == 0


async def test_an_edited_manifest_runs_only_what_is_new(api: Api, tmp_path: Path) -> None:
    server, url = await api()
    await run_text(manifest_text(4), tmp_path / "run", url)
    summary, _ = await run_text(manifest_text(6), tmp_path / "run", url)
    assert summary["jobs"]["submitted"] == 2
    assert server.stats.as_dict()["generations"] == 6


async def test_the_api_key_appears_in_no_file_of_the_run_dir(api: Api, tmp_path: Path) -> None:
    secret = "sk-live-DO-NOT-LEAK-4f9c2a"
    _, url = await api(FAST.with_(keys=frozenset({secret}), server_error=0.3, download_fail=0.2))
    await run_text(manifest_text(10), tmp_path / "run", url, key=secret)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


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
