"""A whole run against the emulator over real sockets: images, records, concurrency, resume."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from pytest_aiohttp import AiohttpServer

from runner import schemas
from runner.emulator import pictures
from tests.conftest import FAST, REPO, Api, Cli, EmulatorProcesses, manifest_text, records, run_text, write


async def test_every_job_succeeds_with_real_images_and_valid_records(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(max_side=None))
    summary, stop = await run_text(manifest_text(6), tmp_path / "run", url, concurrency=3)
    assert not stop.requested
    assert summary["jobs"] == {
        "total": 6, "done": 6, "pending": 0, "done_before": 0,
        "submitted": 6, "succeeded": 6, "failed": 0, "fetched_again": 0, "recovered": 0, "held_back": 0,
    }  # fmt: skip
    lines = records(tmp_path / "run")
    assert len(lines) == 6
    validator = schemas.validator("record")
    for line in lines:
        assert list(validator.iter_errors(line)) == []
        assert line["status"] == "success" and line["error"] is None
        (name,) = line["files"]
        with Image.open(tmp_path / "run" / name) as image:
            assert image.format == "WEBP"
            assert image.size == pictures.size_of(line["request"]["promptObject"]) == (448, 560)
        assert line["aiRecord"]["aiRecordDetail"]["promptObject"] == line["request"]["promptObject"]
    assert server.stats.as_dict()["generations"] == 6


async def test_peak_in_flight_equals_the_concurrency_limit(api: Api, tmp_path: Path) -> None:
    server, url = await api(FAST.with_(latency=(0.03, 0.06)))
    await run_text(manifest_text(40), tmp_path / "run", url, concurrency=5)
    assert server.stats.peak_in_flight == 5
    assert len(records(tmp_path / "run")) == 40


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


def test_no_key_and_a_real_base_url_exits_2_and_says_what_to_do(cli: Cli, tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.yaml", manifest_text(2))
    result = cli("run", str(manifest))
    assert result.code == 2
    assert "ONEMIN_API_KEY is not set" in result.err
    assert "--emulator" in result.err
    assert not (tmp_path / "output").exists()


def test_an_unreachable_base_url_is_a_clear_message(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEMIN_API_KEY", "k")
    manifest = write(tmp_path / "m.yaml", manifest_text(2))
    result = cli("run", str(manifest), "--base-url", "http://127.0.0.1:9", "--max-attempts", "1", "--no-progress")
    assert result.code == 1
    assert "cannot connect to http://127.0.0.1:9" in result.err
    assert "Traceback" not in result.err
    assert all(line["error"]["kind"] == "network" for line in records(tmp_path / "output" / "t"))


def test_run_with_the_built_in_emulator_through_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "flux-batch"
    done = subprocess.run(
        [str(script), "run", str(REPO / "manifests" / "example.yaml"), "--emulator", "--out", "out"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "example: 8 of 8 jobs done (8 this run, 0 failed" in done.stdout
    assert "images in out/images" in done.stdout
    assert len(list((tmp_path / "out" / "images").rglob("*.webp"))) == 8
    status = subprocess.run([str(script), "status", "out"], capture_output=True, text=True, cwd=tmp_path)
    assert status.returncode == 0
    assert "out: 8 jobs: 8 done, 0 failed, 0 pending" in status.stdout
    # No terminal: no bar; one line at the start, and a quick run needs no other.
    assert [line.split("] ")[1] for line in done.stderr.splitlines()] == ["starting: 8 jobs to run"]


def test_the_emulator_command_serves_on_loopback(emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--credits", "3")
    assert served.url.startswith("http://127.0.0.1:")
    assert served.stats()["requests"] == {}


def test_status_of_something_that_is_not_a_run_dir(cli: Cli, tmp_path: Path) -> None:
    result = cli("status", str(tmp_path))
    assert result.code == 2
    assert "is not a run directory" in result.err


async def test_a_large_image_downloads_whole_and_the_cap_holds(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import os

    import aiohttp

    from runner import client as client_module
    from runner.client import Client
    from runner.errors import ApiError

    noise = Image.frombytes("RGB", (1024, 1024), os.urandom(1024 * 1024 * 3))
    noise.save(tmp_path / "noise.png")
    original = (tmp_path / "noise.png").read_bytes()
    assert len(original) > 3_000_000  # many network reads, not one
    _, url = await api()
    async with aiohttp.ClientSession() as session:
        client = Client(session, url, "emulator-key", request_timeout=30)
        asset = await client.upload("noise.png", original, "image/png")
        picture = await client.download(f"{client.asset_base}/{asset}")
        monkeypatch.setattr(client_module, "MAX_IMAGE_BYTES", 1_000_000)
        with pytest.raises(ApiError, match=f"offers {len(original)} bytes, over the 1000000-byte cap"):
            await client.download(f"{client.asset_base}/{asset}")
    assert picture.extension == "png"
    assert hashlib.sha256(picture.data).digest() == hashlib.sha256(original).digest()


def test_an_unusable_run_dir_is_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    in_the_way = write(tmp_path / "a-file", "not a directory")
    result = cli("run", str(REPO / "manifests" / "example.yaml"), "--emulator", "--out", str(in_the_way))
    assert result.code == 2
    assert f"flux-batch: cannot use {in_the_way} as a run directory: File exists" in result.err
    assert "Traceback" not in result.err


async def test_an_image_sent_without_a_length_is_read_whole_and_the_cap_holds(
    aiohttp_server: AiohttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import aiohttp
    from aiohttp import web

    from runner import client as client_module
    from runner.client import Client
    from runner.errors import ApiError

    Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3)).save(tmp_path / "noise.png")
    original = (tmp_path / "noise.png").read_bytes()

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()  # no Content-Length: the body ends when the chunks do
        await response.prepare(request)
        for start in range(0, len(original), 16384):
            await response.write(original[start : start + 16384])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/image", chunked)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        client = Client(session, str(server.make_url("")), "emulator-key", request_timeout=30)
        picture = await client.download(str(server.make_url("/image")))
        monkeypatch.setattr(client_module, "MAX_IMAGE_BYTES", 100_000)
        with pytest.raises(ApiError, match="answer larger than 100000 bytes"):
            await client.download(str(server.make_url("/image")))
    assert picture.data == original and picture.extension == "png"
