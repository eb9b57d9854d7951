"""A hostile or unlucky world, through the CLI: servers of the project's own that redirect, echo
the key, stall, flood and bomb (tests/hostile.py); a real full file system; damaged run dirs.
Whatever happens, the key stays home, no answer crashes or stalls a run, and nothing is paid twice."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import (
    REPO,
    Api,
    Cli,
    EmulatorProcesses,
    manifest_text,
    records,
    run_cli,
    run_module,
    start_run,
    wait_for_lines,
    write,
)
from tests.hostile import Hostile, ai_record, bomb_png, png

SECRET = "sk-live-0123456789-NEVER-WRITE-ME"


def every_file(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def assert_no_key_in(*texts: str, root: Path | None = None) -> None:
    for text in texts:
        assert SECRET not in text
    for path in every_file(root) if root else []:
        assert SECRET.encode() not in path.read_bytes(), path


def writer_of(run_pid: int, timeout: float = 15) -> int:
    """The pid of a run's disk writer: its child running diskwriter.py."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if parent == run_pid and b"diskwriter.py" in command:
                return int(pid)
        time.sleep(0.02)
    raise AssertionError(f"no disk writer under pid {run_pid}")


# -- 1. the key never follows a redirect ---------------------------------------------------------


@pytest.mark.parametrize("status", [302, 307, 308])
def test_a_redirect_of_a_generation_never_takes_the_key_along(
    cli: Cli, tmp_path: Path, hostile: Hostile, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    elsewhere = Hostile().start()
    try:

        async def redirect(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": f"{elsewhere.url}/collect"})

        hostile.features = redirect
        monkeypatch.setenv("ONEMIN_API_KEY", SECRET)
        result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(4)), hostile.url)
        host = elsewhere.url.removeprefix("http://")
        assert result.code == 3, result.err
        assert f"answered HTTP {status}, a redirect to {host}; flux-batch never follows a redirect with the API key" in result.err
        assert elsewhere.seen == []  # neither the key nor the body went there
        assert records(tmp_path / "output" / "t") == []
        assert len(hostile.requests_to("/api/features")) <= 4  # those in flight when the first came back
    finally:
        elsewhere.stop()


def test_a_redirect_of_a_poll_or_an_upload_never_takes_the_key_along(
    cli: Cli, tmp_path: Path, hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = Hostile().start()
    try:
        running = ai_record({"prompt": "x"}, [], status="PROCESSING")

        async def processing(request: web.Request) -> web.StreamResponse:
            return web.json_response({"aiRecord": running})

        async def redirect(request: web.Request) -> web.StreamResponse:
            return web.Response(status=307, headers={"Location": f"{elsewhere.url}/collect"})

        hostile.features = processing
        hostile.routes["GET", f"/api/results/{running['uuid']}"] = redirect
        hostile.routes["POST", "/api/assets"] = redirect
        monkeypatch.setenv("ONEMIN_API_KEY", SECRET)
        polled = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(1)), hostile.url, "--async-mode")
        assert polled.code == 3 and "a redirect to" in polled.err
        # The generation was paid for: its aiRecord is kept, for the next run to poll.
        (line,) = records(tmp_path / "output" / "t")
        assert line["aiRecord"]["uuid"] == running["uuid"] and line["error"]["kind"] == "timeout"

        (tmp_path / "inputs").mkdir()
        (tmp_path / "inputs" / "a.png").write_bytes(png())
        text = "version: 1\nname: up\nprompts:\n  - {id: a, prompt: x, image_prompt: inputs/a.png}\n"
        uploaded = run_cli(cli, write(tmp_path / "up.yaml", text), hostile.url)
        assert uploaded.code == 3 and "POST /api/assets answered HTTP 307, a redirect to" in uploaded.err
        assert elsewhere.seen == []
    finally:
        elsewhere.stop()


# -- 2 and 3. Retry-After of any shape: read without crashing, capped, cut short ----------------


def test_a_retry_after_date_with_a_numeric_zone_is_read_and_honoured(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    asked: set[str] = set()

    async def once_too_many(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        key = json.dumps(body["promptObject"], sort_keys=True)
        if key not in asked:
            asked.add(key)
            headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 -0000"}  # in the past: go again now
            return web.json_response({"errorCode": "RATE_LIMIT", "message": "slow down"}, status=429, headers=headers)
        return await hostile.generate(request)

    hostile.features = once_too_many
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(6)), hostile.url, "--concurrency", "3")
    assert result.code == 0, result.err
    assert "6 of 6 jobs done (6 this run, 0 failed, 6 retries)" in result.out
    assert "Traceback" not in result.err


@pytest.mark.parametrize("retry_after", ["999999", "inf", "1e309", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_no_retry_after_outlives_the_deadline(cli: Cli, tmp_path: Path, hostile: Hostile, retry_after: str) -> None:
    async def always_later(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"errorCode": "RATE_LIMIT", "message": "later"}, status=429, headers={"Retry-After": retry_after}
        )

    hostile.features = always_later
    started = time.monotonic()
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(3)), hostile.url, "--deadline", "1s")
    assert time.monotonic() - started < 3
    assert result.code == 3 and "the deadline has passed" in result.err
    log = (tmp_path / "output" / "t" / "run.log").read_text()
    assert "waiting the cap of 120 s" in log and "the server asked to wait" in log


def test_sigterm_ends_a_long_retry_after_at_once(tmp_path: Path, hostile: Hostile) -> None:
    async def always_later(request: web.Request) -> web.StreamResponse:
        return web.json_response({"errorCode": "RATE_LIMIT", "message": "later"}, status=429, headers={"Retry-After": "999999"})

    hostile.features = always_later
    manifest = write(tmp_path / "m.yaml", manifest_text(3))
    run = start_run(manifest, hostile.url)
    log = tmp_path / "output" / "t" / "run.log"
    deadline = time.monotonic() + 15
    while "waiting the cap of 120 s" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.02)  # until the run is in its long wait
    signalled = time.monotonic()
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=10)
    assert run.returncode == 143, err
    assert time.monotonic() - signalled < 3
    assert "To resume: flux-batch run" in err


# -- 4. a full disk, a dead writer -----------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 600 KB file system (tmpfs), mounted for the test; skipped where that is not allowed."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_stops_the_run_with_exit_3_and_a_clean_run_dir(
    cli: Cli, small_disk: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "600")
    manifest = write(small_disk.parent / "m.yaml", manifest_text(60, concurrency=4).replace("megapixels: 0.25", "megapixels: 1"))
    run_dir = small_disk / "run"
    result = run_cli(cli, manifest, served.url, "--out", str(run_dir), "--no-report")
    assert result.code == 3, result.err
    assert f"the disk holding {run_dir} is full (No space left on device" in result.err
    assert "Free some space, then run the same command again to resume." in result.err
    assert "Traceback" not in result.err
    assert not [p for p in every_file(run_dir) if ".partial-" in p.name]
    lines = records(run_dir)
    assert 0 < len(lines) < 60
    for line in lines:  # every line that made it names a whole image
        assert (run_dir / line["files"][0]).stat().st_size > 0
    log = (run_dir / "run.log").read_text()
    assert "STOP: the disk holding" in log


def test_a_writer_that_dies_is_named_as_such_not_as_a_full_disk(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.2,0.3", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(40, concurrency=2))
    run = start_run(manifest, served.url)
    writer = writer_of(run.pid)
    wait_for_lines(tmp_path / "output" / "t", 2)  # it has written: the run counts on it
    os.kill(writer, signal.SIGKILL)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 3, err
    assert "the run dir's writer process ended unexpectedly (killed by signal 9)" in err
    assert "disk" not in err.split("stopped early:")[1].split(".")[0]


# -- 5. a damaged records.jsonl, an image deleted: nothing paid again ----------------------------


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
    from tests.test_report import page_data

    assert page_data(run_dir / "report.html")["counts"] == {"total": 12, "done": 12, "failed": 0, "pending": 0}


# -- 7. memory the server drives -------------------------------------------------------------------


def test_an_answer_with_too_many_results_fails_the_job_without_fetching_them(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    async def thirty(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return web.json_response({"aiRecord": ai_record(body["promptObject"], [f"images/{n}.png" for n in range(30)])})

    hostile.features = thirty
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(2)), hostile.url)
    assert result.code == 1
    assert "the answer lists 30 results; flux-batch takes at most 8 a job" in result.err
    assert not [seen for seen in hostile.seen if seen.path.startswith("/asset/")]


def test_a_flood_of_an_answer_is_cut_off_at_the_cap_in_bounded_memory(tmp_path: Path, hostile: Hostile) -> None:
    async def flood(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"aiRecord": {"junk": "')
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(300):  # 300 MB, if anyone reads it all
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response

    hostile.features = flood
    manifest = write(tmp_path / "m.yaml", manifest_text(2, concurrency=2))
    child = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(manifest), "--base-url", hostile.url, "--no-progress", "--max-attempts", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, for its peak memory
    err = child.stderr.read().decode() if child.stderr else ""
    child.stderr.close() if child.stderr else None
    assert child.returncode == 1, err
    assert "answer larger than 2097152 bytes" in err
    assert usage.ru_maxrss < 150 * 1024, f"{usage.ru_maxrss} KB"  # two floods of 300 MB were not held


async def test_downloads_hold_no_more_than_the_memory_budget(hostile: Hostile) -> None:
    import asyncio

    import aiohttp

    from runner.budget import MemoryBudget
    from runner.client import Client

    hostile.image = b"\x89PNG\r\n\x1a\n" + b"\0" * (20 * 1024**2) + b"IEND\xaeB`\x82"  # 20 MB, whole as far as a check sees
    budget = MemoryBudget(limit=50 * 1024**2)
    async with aiohttp.ClientSession() as session:
        client = Client(session, hostile.url, "k", request_timeout=30, budget=budget)

        async def fetch(n: int) -> None:
            picture = await client.download(f"{hostile.url}/asset/{n}.png")
            await asyncio.sleep(0.05)  # held until written, as the pool does
            budget.release(picture.held)

        await asyncio.gather(*(fetch(n) for n in range(12)))
    assert budget.used == 0
    assert 40 * 1024**2 <= budget.peak <= 50 * 1024**2  # 12 x 20 MB asked for, at most 2 held at once


# -- 8. SIGHUP ---------------------------------------------------------------------------------------


def test_sighup_stops_like_sigterm_and_a_rerun_pays_nothing_twice(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.2,0.3", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(30, concurrency=4))
    argv = [sys.executable, "-m", "runner", "run", str(manifest), "--base-url", served.url, "--no-progress"]
    first = start_run(manifest, served.url)
    run_dir = tmp_path / "output" / "t"
    wait_for_lines(run_dir, 4)
    first.send_signal(signal.SIGHUP)
    first.communicate(timeout=30)
    assert first.returncode == 129
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == {"reason": "signal", "message": "SIGHUP received"}
    assert "SIGHUP received" in (run_dir / "run.log").read_text()
    second = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert second.returncode == 0, second.stderr
    assert served.stats()["generated_twice"] == []


# -- 9. decompression bombs -----------------------------------------------------------------------


def test_a_bomb_as_a_result_is_kept_but_never_decoded(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    hostile.image = bomb_png()
    hook = write(tmp_path / "hook.py", "import sys; open('hook.ran', 'w').write(sys.argv[1])\n")
    manifest = write(tmp_path / "m.yaml", manifest_text(2))
    result = run_cli(cli, manifest, hostile.url, "--on-finish", f"{sys.executable} {hook}")
    assert result.code == 0, result.err
    assert (tmp_path / "hook.ran").is_file()
    from tests.test_report import page_data

    jobs = page_data(tmp_path / "output" / "t" / "report.html")["prompts"][0]["jobs"]
    assert all(job["unviewable"] == "not shown: a picture of more than 50,000,000 pixels" for job in jobs)
    assert all("image" not in job for job in jobs)  # the page never hands the bomb to a browser
    again = cli("report", str(tmp_path / "output" / "t"))
    assert again.code == 0, again.err


def test_a_bomb_as_an_input_image_is_a_manifest_error(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "bomb.png").write_bytes(bomb_png())
    manifest = write(
        tmp_path / "m.yaml", "version: 1\nname: t\nprompts:\n  - {id: a, prompt: x, image_prompt: inputs/bomb.png}\n"
    )
    result = cli("validate", str(manifest))
    assert result.code == 2
    assert f"{manifest}:4: prompts[0].image_prompt: 'inputs/bomb.png' is a picture of more than 50,000,000 pixels" in result.err
    assert "Traceback" not in result.err


# -- 10. a manifest written by someone else ---------------------------------------------------------


def test_a_manifest_cannot_send_the_key_elsewhere_run_a_command_or_write_outside_output(
    cli: Cli, tmp_path: Path, hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEMIN_API_KEY", SECRET)
    host = hostile.url.removeprefix("http://")
    for block, said in [
        (f"  base_url: {hostile.url}\n", f"run.base_url sends the API key to {host}"),
        ("  on_finish: touch pwned\n", "run.on_finish runs the command 'touch pwned'"),
        ("  out: ../../elsewhere\n", "run.out writes to ../../elsewhere, outside output/"),
    ]:
        manifest = write(tmp_path / "m.yaml", manifest_text(2) + f"run:\n{block}")
        result = cli("run", str(manifest), "--no-progress")
        assert result.code == 2, result.err
        assert said in result.err and "add --trust-manifest" in result.err
        plan = cli("plan", str(manifest))
        assert plan.code == 0 and said in plan.err and "needs --trust-manifest" in plan.out
    assert hostile.seen == [] and not (tmp_path / "pwned").exists() and not (tmp_path.parent.parent / "elsewhere").exists()

    manifest = write(tmp_path / "m.yaml", manifest_text(2) + f"run:\n  base_url: {hostile.url}\n  on_finish: touch trusted\n")
    plan = cli("plan", str(manifest), "--trust-manifest")
    assert re.search(rf"^endpoint +{hostile.url}$", plan.out, re.M) and re.search(r"^on finish +touch trusted$", plan.out, re.M)
    trusted = cli("run", str(manifest), "--no-progress", "--trust-manifest")
    assert trusted.code == 0, trusted.err
    assert hostile.requests_to("/api/features") and (tmp_path / "trusted").exists()


# -- 11. a server that echoes the key ---------------------------------------------------------------


def test_a_key_echoed_back_is_written_and_printed_nowhere(
    cli: Cli, tmp_path: Path, hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in SECRET)  # the key spelled in JSON escapes

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen = request.headers["API-KEY"]
        if body["promptObject"]["guidance"] == 0:
            return web.json_response({"errorCode": "MISSING_REQUIRED_FIELDS", "message": f"bad key {seen}?"}, status=400)
        if body["promptObject"]["guidance"] == 0.1:
            return web.Response(
                text=json.dumps({"errorCode": "X", "message": "KEY"}).replace("KEY", escaped),
                status=422,
                content_type="application/json",
            )
        record = ai_record(body["promptObject"], [f"images/{seen}.png"], note=f"your key is {seen}")
        return web.json_response({"aiRecord": record, "temporaryUrl": f"{hostile.url}/asset/{seen}.png"})

    hostile.features = echo
    monkeypatch.setenv("ONEMIN_API_KEY", SECRET)
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(4)), hostile.url)
    assert result.code == 1
    assert_no_key_in(result.out, result.err, root=tmp_path / "output")
    lines = records(tmp_path / "output" / "t")
    assert any("<redacted>" in json.dumps(line) for line in lines)
    assert sum(line["status"] == "success" for line in lines) == 2

    hostile.image = png() + SECRET.encode()  # an image that carries the key is not saved
    result = cli("run", str(write(tmp_path / "n.yaml", manifest_text(4, name="n"))), "--base-url", hostile.url, "--no-progress")
    assert "holds the API key; it was not saved" in result.err
    assert_no_key_in(result.out, result.err, root=tmp_path / "output")


# -- 12. grids past the limit -------------------------------------------------------------------------


def test_a_grid_past_the_limit_is_refused_by_every_verb_unless_lifted(cli: Cli, tmp_path: Path) -> None:
    huge = REPO / "tests" / "bad_manifests" / "grid-too-large.yaml"
    started = time.monotonic()
    for verb in (["validate"], ["plan"], ["plan", "--json"], ["run", "--max-jobs", "3", "--emulator"]):
        result = cli(*verb, str(huge))
        assert result.code == 2 and "over the limit of 1,000,000 a manifest" in result.err, verb
    assert time.monotonic() - started < 5
    assert not (tmp_path / "output").exists()
    manifest = write(tmp_path / "m.yaml", manifest_text(12))
    assert cli("validate", str(manifest), "--max-grid", "11").code == 2
    assert cli("validate", str(manifest), "--max-grid", "12").code == 0


# -- 13. an input picture changed during the run ----------------------------------------------------


async def test_an_input_picture_changed_after_loading_is_not_sent_under_the_old_id(api: Api, tmp_path: Path) -> None:
    from runner.endpoint import Endpoint
    from runner.execute import run_plan
    from runner.manifest import loads
    from runner.plan import make_plan
    from runner.settings import RunSettings
    from runner.stop import Stop
    from runner.store import RunDir
    from tests.conftest import QUICK_RETRIES

    server, url = await api()
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "a.png").write_bytes(png(colour=(1, 2, 3)))
    text = "version: 1\nname: t\nprompts:\n  - {id: a, prompt: x, image_prompt: inputs/a.png}\nsweep: {guidance: [1, 2]}\n"
    plan = make_plan(loads(text, "m.yaml", tmp_path))
    (tmp_path / "inputs" / "a.png").write_bytes(png(colour=(9, 9, 9)))  # edited after the manifest was read
    with RunDir.open(tmp_path / "run", text, endpoint=Endpoint(url)) as run_dir:
        result = await run_plan(plan, run_dir, RunSettings(), url, "emulator-key", Stop(), policy=QUICK_RETRIES)
    assert server.stats.uploads == 0 and server.stats.requests["features"] == 0
    assert result.summary.failures_by_kind == {"validation": 2}
    assert all("changed on disk after the run started" in line["error"]["message"] for line in records(tmp_path / "run"))


# -- 14. the smaller ones -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["--request-timeout", "inf"],
        ["--deadline", "999999999999d"],
        ["--credits-per-image", "1e-320", "--max-credits", "1e308"],
        ["--requests-per-minute", "nan"],
    ],
    ids=["timeout-inf", "deadline-far", "credits-tiny", "rate-nan"],
)
def test_absurd_numbers_are_usage_errors_not_tracebacks(cli: Cli, tmp_path: Path, flags: list[str]) -> None:
    result = cli("run", str(write(tmp_path / "m.yaml", manifest_text(2))), "--emulator", *flags)
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert f"{flags[-2]}" in result.err  # the message names the flag at fault
    assert not (tmp_path / "output").exists()


def test_report_of_a_read_only_run_dir_is_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    done = run_module(tmp_path, "run", str(REPO / "manifests" / "example.yaml"), "--emulator", "--out", "run", "--no-report")
    assert done.returncode == 0, done.stderr
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(tmp_path / "run"), str(tmp_path / "run")], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here: {mounted.stderr.decode().strip()}")
    try:
        result = cli("report", str(tmp_path / "run"))
    finally:
        subprocess.run(["umount", str(tmp_path / "run")], check=False)
    assert result.code == 2
    assert f"flux-batch: cannot write the report in {tmp_path / 'run'}: Read-only file system" in result.err


def test_a_message_holding_script_markup_leaves_the_report_whole(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        message = "<!--<script>alert(1)</script> and </script><!--"
        return web.json_response({"errorCode": "BAD", "message": message}, status=400)

    hostile.features = refuse
    assert run_cli(cli, write(tmp_path / "m.yaml", manifest_text(2)), hostile.url).code == 1
    page = (tmp_path / "output" / "t" / "report.html").read_text()
    script = page.split('id="data">')[1].split("</script>")[0]
    assert "<" not in script  # no markup of any kind inside the data
    from tests.test_report import page_data

    jobs = page_data(tmp_path / "output" / "t" / "report.html")["prompts"][0]["jobs"]
    assert all("<!--<script>alert(1)</script>" in job["error"]["message"] for job in jobs)


def test_download_retries_are_written_to_run_log(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--download-fail-first", "1")
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(2)), served.url)
    assert result.code == 0, result.err
    log = (tmp_path / "output" / "t" / "run.log").read_text()
    retries = [line for line in log.splitlines() if " (download), in " in line]
    assert len(retries) == 2 and all(line.endswith(": download: HTTP 503 from the image host") for line in retries)


def test_the_writer_of_a_killed_run_holds_the_lock_until_it_is_done(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.05,0.1", "--max-side", "32")
    manifest = write(tmp_path / "m.yaml", manifest_text(40, concurrency=4))
    argv = [sys.executable, "-m", "runner", "run", str(manifest), "--base-url", served.url, "--no-progress"]
    first = start_run(manifest, served.url)
    run_dir = tmp_path / "output" / "t"
    wait_for_lines(run_dir, 3)
    writer = writer_of(first.pid)
    os.kill(writer, signal.SIGSTOP)  # a writer paused with frames still to commit
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)  # its pipes stay open while the paused writer, which shares stderr, lives
    second = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert second.returncode == 2 and "is being run by" in second.stderr
    os.kill(writer, signal.SIGCONT)
    first.communicate(timeout=10)  # the writer finished its frames and is gone: the pipes close
    third = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert third.returncode == 0, third.stderr
    successes = [line["job_id"] for line in records(run_dir) if line["status"] == "success"]
    assert len(successes) == len(set(successes)) == 40


def test_a_report_that_fails_changes_neither_the_exit_code_nor_the_hook(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    (tmp_path / "output" / "t" / "report.html").mkdir(parents=True)  # where the report must go
    hook = write(tmp_path / "hook.py", "import sys; open('hook.ran', 'w').write(sys.argv[1])\n")
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(2)), hostile.url, "--on-finish", f"{sys.executable} {hook}")
    assert result.code == 0, result.err
    assert "flux-batch: could not write the report (IsADirectoryError" in result.err
    assert "try `flux-batch report output/t`" in result.err
    assert (tmp_path / "hook.ran").is_file()
