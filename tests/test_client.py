"""The HTTP (runner/client.py): no redirect takes the key along, answers and images are read whole
and capped, a server that floods gets cut off."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image
from pytest_aiohttp import AiohttpServer

from runner.client import asset_base_for
from runner.errors import ApiError
from tests.conftest import (
    Api,
    Cli,
    manifest_text,
    records,
    run_cli,
    write,
)
from tests.hostile import Hostile, ai_record, png
from tests.support import SECRET, peak_memory


def test_public_assets_of_the_real_api_are_on_its_cdn() -> None:
    assert asset_base_for("https://api.1min.ai") == "https://asset.1min.ai"
    assert asset_base_for("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/asset"


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
    argv = [
        sys.executable,
        "-m",
        "runner",
        "run",
        str(manifest),
        "--base-url",
        hostile.url,
        "--no-progress",
        "--max-attempts",
        "2",
    ]
    code, err, peak = peak_memory(argv, tmp_path)
    assert code == 1, err
    assert "answer larger than 2097152 bytes" in err
    assert peak < 150 * 1024, f"{peak} KB"  # two floods of 300 MB were not held


def test_an_unreachable_base_url_is_a_clear_message(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEMIN_API_KEY", "k")
    manifest = write(tmp_path / "m.yaml", manifest_text(2))
    result = cli("run", str(manifest), "--base-url", "http://127.0.0.1:9", "--max-attempts", "1", "--no-progress")
    assert result.code == 1
    assert "cannot connect to http://127.0.0.1:9" in result.err
    assert "Traceback" not in result.err
    assert all(line["error"]["kind"] == "network" for line in records(tmp_path / "output" / "t"))


async def test_a_large_image_downloads_whole_and_the_cap_holds(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    import aiohttp

    from runner import client as client_module
    from runner.client import Client

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


async def test_an_image_sent_without_a_length_is_read_whole_and_the_cap_holds(
    aiohttp_server: AiohttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    import aiohttp
    from aiohttp import web

    from runner import client as client_module
    from runner.client import Client

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
