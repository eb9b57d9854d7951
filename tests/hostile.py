"""A look-alike of the API that misbehaves on purpose: it redirects, echoes the key, stalls,
floods, bombs and lies, on a real loopback socket. No mocks: flux-batch talks to it as it would
to any server.

It is served from a thread with its own event loop, so a test can run the real CLI in-process
(which starts a loop of its own) or as a child process against it. Every request is recorded;
each route answers as an ordinary API (no emulator header: to flux-batch it is a real endpoint)
until a test replaces its handler.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from PIL import Image

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def png(width: int = 8, height: int = 8, colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A tiny PNG whose header claims an enormous picture: decoding it would take gigabytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def ai_record(prompt_object: dict[str, Any], results: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "model": "black-forest-labs/flux-dev",
        "type": "IMAGE_GENERATOR",
        "status": "SUCCESS",
        "createdAt": "2026-12-01T00:00:00.000Z",
        "aiRecordDetail": {"promptObject": prompt_object, "resultObject": results},
        **extra,
    }


class Hostile:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.image = png()
        self.features: Handler = self.generate
        self.routes: dict[tuple[str, str], Handler] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- what an ordinary API would answer ----------------------------------------------------

    async def generate(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read() or b"{}")
        record = ai_record(body.get("promptObject", {}), [f"images/{uuid.uuid4().hex}.png"])
        return web.json_response({"aiRecord": record})

    async def serve_image(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self.image, content_type="image/png")

    # -- plumbing ---------------------------------------------------------------------------

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.seen if seen.path == path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            self.seen.append(Seen(request.method, request.path, dict(request.headers), body))
        handler = self.routes.get((request.method, request.path))
        if handler is None and request.method == "POST" and request.path == "/api/features":
            handler = self.features
        if handler is None and request.path.startswith("/asset/"):
            handler = self.serve_image
        if handler is None:
            return web.json_response({"errorCode": "NOT_FOUND", "message": "no such route"}, status=404)
        return await handler(request)

    def start(self) -> Hostile:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(client_max_size=1024**2)
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = self._runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="hostile-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
