"""A faithful emulator of the 1min.ai Flux Dev API, as it behaves in the wild, on loopback.

It answers in the live shapes, including the awkward ones: errors as {"errorCode", "message",
"details"?}, the busy-provider 400 that hides the provider's real status in `details`,
insufficient credits as a 200, a signed expiring `temporaryUrl` for the first result only, and
the Asset API. Latency, rate limits, faults and a credit budget are knobs (`Knobs`), so tests
and `make bench` meet every fault over a real socket. `/__stats` exposes counters for tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import random
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from runner import schemas
from runner.emulator import answers, pictures
from runner.emulator.knobs import Knobs
from runner.plan import MODEL
from runner.records import utc_timestamp


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)  # by endpoint
    statuses: Counter[int] = field(default_factory=Counter)  # of /api/features answers
    in_flight: int = 0
    peak_in_flight: int = 0
    generations: Counter[str] = field(default_factory=Counter)  # charged images per promptObject
    attempts: Counter[str] = field(default_factory=Counter)  # requests per promptObject
    uploads: int = 0
    downloads: int = 0
    download_tries: Counter[str] = field(default_factory=Counter)  # requests per image path
    let_through: int = 0  # generation requests the rate limit let through
    first_let_through: float | None = None  # time.monotonic() of the first and the last
    last_let_through: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "generations": sum(self.generations.values()),
            "generated_twice": sorted(k for k, n in self.generations.items() if n > 1),
            "generations_by_prompt_object": dict(self.generations),
            "distinct_prompt_objects": len(self.attempts),
            "uploads": self.uploads,
            "downloads": self.downloads,
            "let_through": self.let_through,
            "let_through_s": (self.last_let_through or 0.0) - (self.first_let_through or 0.0),
        }


def prompt_key(prompt_object: Any) -> str:
    return hashlib.sha256(json.dumps(prompt_object, sort_keys=True).encode()).hexdigest()[:16]


class Emulator:
    """The API's behaviour; `app` serves it. Knobs may be changed between requests."""

    def __init__(self, knobs: Knobs | None = None) -> None:
        self.knobs = knobs or Knobs()
        self.stats = Stats()
        self.files: dict[str, tuple[bytes, str]] = {}  # asset path -> (bytes, content type)
        self.records: dict[str, dict[str, Any]] = {}  # uuid -> aiRecord, for async mode
        self._dice = random.Random(self.knobs.seed)
        self._recent: deque[float] = deque()
        self._bucket = float(self.knobs.rate_burst or 0)
        self._bucket_at = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.app = web.Application(client_max_size=64 * 1024**2, middlewares=[answers.mark_as_emulated])
        self.app.router.add_post("/api/features", self._features)
        self.app.router.add_get("/api/results/{uuid}", self._result)
        self.app.router.add_post("/api/assets", self._upload)
        self.app.router.add_get("/asset/{path:.+}", self._public_asset)
        self.app.router.add_get("/signed/{path:.+}", self._signed_asset)
        self.app.router.add_get("/__stats", self._stats)
        self.app.on_cleanup.append(self._cancel_tasks)

    # -- generation -----------------------------------------------------------------------

    async def _features(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests["features"] += 1
        self.stats.in_flight += 1
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
        try:
            response = await self._generate(request)
        finally:
            self.stats.in_flight -= 1
        self.stats.statuses[response.status] += 1
        if self.knobs.rate_policy and self.knobs.requests_per_minute:
            response.headers["RateLimit-Policy"] = f"{self.knobs.requests_per_minute:g};w=60"
        return response

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        knobs = self.knobs
        if request.headers.get("API-KEY") not in knobs.keys:
            return answers.error(401, "UNAUTHORIZED", "Invalid API key")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return answers.error(400, "INVALID_JSON", "Request body must be JSON")
        if not isinstance(body, dict):
            return answers.error(400, "INVALID_JSON", "Request body must be a JSON object")
        if body.get("type") != "IMAGE_GENERATOR" or body.get("model") != MODEL:
            return answers.error(400, "UNSUPPORTED_MODEL", f"Model {body.get('model')!r} is not supported for this feature")
        prompt_object = body.get("promptObject")
        if not isinstance(prompt_object, dict) or not prompt_object.get("prompt"):
            details = [{"field": "promptObject.prompt", "message": "prompt is required"}]
            return answers.error(400, "MISSING_REQUIRED_FIELDS", "Missing required fields", json.dumps(details))
        key = prompt_key(prompt_object)
        self.stats.attempts[key] += 1
        wait = self._throttled()
        if wait is not None:
            return answers.error(429, "RATE_LIMIT_EXCEEDED", "Too many requests", headers={"Retry-After": f"{wait:g}"})
        fault = self._fault(key)
        if fault is not None:
            answer: web.StreamResponse = await fault
            return answer
        refusal = self._provider_refusal(prompt_object)
        if refusal is not None:
            await asyncio.sleep(self._dice.uniform(*knobs.latency))
            return refusal
        if self.knobs.credits is not None:
            # Charge now, before any await, so concurrent requests cannot overdraw the account.
            if self.knobs.credits <= 0:
                await asyncio.sleep(self._dice.uniform(*knobs.latency))
                return self._no_credits(prompt_object)
            self.knobs = self.knobs.with_(credits=self.knobs.credits - 1)
        origin = request.url.origin()
        if body.get("async") is True:
            record = self._record(prompt_object, [], status="PROCESSING")
            self.records[record["uuid"]] = record
            self._spawn(self._finish_later(record, origin))
            return web.json_response({"aiRecord": record})
        # Like the real service, a generation goes on when its client gives up: it is paid for.
        work = self._spawn(self._generate_after_latency(prompt_object, origin))
        record = await asyncio.shield(work)
        return web.json_response({"aiRecord": record})

    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _generate_after_latency(self, prompt_object: dict[str, Any], origin: Any) -> dict[str, Any]:
        await asyncio.sleep(self._dice.uniform(*self.knobs.latency))
        return await self._make_images(prompt_object, origin)

    def _throttled(self) -> float | None:
        """None if the rate limit lets this request through, else the Retry-After to answer."""
        limit = self.knobs.requests_per_minute
        now = time.monotonic()
        if limit is not None and self.knobs.rate_burst:
            rate = limit / 60
            self._bucket = min(float(self.knobs.rate_burst), self._bucket + (now - self._bucket_at) * rate)
            self._bucket_at = now
            if self._bucket < 1:
                return float(max(1, math.ceil((1 - self._bucket) / rate)))  # whole seconds, as servers say
            self._bucket -= 1
        elif limit is not None:
            window = self.knobs.rate_window
            while self._recent and self._recent[0] < now - window:
                self._recent.popleft()
            if len(self._recent) >= limit * window / 60:
                return self.knobs.retry_after
            self._recent.append(now)
        self.stats.let_through += 1
        self.stats.last_let_through = now
        if self.stats.first_let_through is None:
            self.stats.first_let_through = now
        return None

    def _fault(self, key: str) -> Any:
        """A coroutine answering with an injected fault, or None for a normal answer."""
        knobs, roll = self.knobs, self._dice.random
        if self.stats.attempts[key] <= knobs.fail_first or roll() < knobs.server_error:
            return answers.later(answers.error(500, "INTERNAL_SERVER_ERROR", "Internal server error"))
        if roll() < knobs.cloudflare:
            code = self._dice.choice([502, 503, 522, 524])
            return answers.later(web.Response(status=code, text=answers.cloudflare_page(code), content_type="text/html"))
        if roll() < knobs.drop:
            return answers.drop()
        if roll() < knobs.hang:
            return answers.hang()
        if roll() < knobs.non_json:
            return answers.later(web.Response(status=200, text="<html><body>upstream error</body></html>"))
        if roll() < knobs.busy:
            details = {"response": {"status": 503, "data": {"detail": "Service temporarily unavailable"}}}
            return answers.later(answers.busy(details))
        if roll() < knobs.refuse:
            return answers.later(answers.busy(answers.refusal("NSFW content detected in the prompt. Try a different prompt.")))
        return None

    def _provider_refusal(self, prompt_object: dict[str, Any]) -> web.Response | None:
        image = prompt_object.get("image_prompt")
        if image is not None and not (str(image).startswith(("http://", "https://")) or image in self.files):
            return answers.busy(answers.refusal(f"image_prompt: cannot load the input image {str(image)[:80]!r}"))
        errors = schemas.errors("prompt-object", prompt_object)
        if not errors:
            return None
        # The relay wraps the provider's refusal in its generic "busy" answer.
        first = errors[0]
        where = ".".join(map(str, first.absolute_path)) or "input"
        return answers.busy(answers.refusal(f"{where}: {first.message}"))

    def _no_credits(self, prompt_object: dict[str, Any]) -> web.Response:
        message = "Your account does not have enough credits to perform this action"
        if self.knobs.credits_answer == "402":
            return answers.error(402, "INSUFFICIENT_CREDITS", message)
        record = self._record(prompt_object, [], status="SUCCESS")
        record["aiRecordDetail"]["resultObject"] = {"code": "INSUFFICIENT_CREDITS", "message": message}
        return web.json_response({"aiRecord": record})

    async def _make_images(self, prompt_object: dict[str, Any], origin: Any) -> dict[str, Any]:
        source = self.files.get(str(prompt_object.get("image_prompt")), (None, ""))[0]
        data, content_type, extension = await asyncio.to_thread(pictures.draw, prompt_object, self.knobs.max_side, source)
        stamp = datetime.now(UTC).strftime("%Y_%m_%d_%H_%M_%S")
        path = f"development/images/{stamp}_{uuid.uuid4().hex[:12]}.{extension}"
        self.files[path] = (data, content_type)
        self.stats.generations[prompt_key(prompt_object)] += 1
        record = self._record(prompt_object, [path], status="SUCCESS")
        record["temporaryUrl"] = self._sign(origin, path)
        if self.knobs.cost is not None:
            record["creditsUsed"] = self.knobs.cost
        return record

    async def _finish_later(self, record: dict[str, Any], origin: Any) -> None:
        await asyncio.sleep(self._dice.uniform(*self.knobs.latency))
        finished = await self._make_images(record["aiRecordDetail"]["promptObject"], origin)
        finished["uuid"] = record["uuid"]
        self.records[record["uuid"]] = finished

    def _record(self, prompt_object: dict[str, Any], results: list[str], status: str) -> dict[str, Any]:
        return {
            "uuid": str(uuid.uuid4()),
            "userId": "emulator-user",
            "teamId": "emulator-team",
            "model": MODEL,
            "type": "IMAGE_GENERATOR",
            "status": status,
            "createdAt": utc_timestamp(),
            "aiRecordDetail": {"promptObject": prompt_object, "resultObject": results},
        }

    async def _result(self, request: web.Request) -> web.Response:
        self.stats.requests["results"] += 1
        if request.headers.get("API-KEY") not in self.knobs.keys:
            return answers.error(401, "UNAUTHORIZED", "Invalid API key")
        record = self.records.get(request.match_info["uuid"])
        if record is None:
            return answers.error(404, "NOT_FOUND", "Record not found")
        return web.json_response({"aiRecord": record})

    # -- assets ---------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        self.stats.requests["assets"] += 1
        if request.headers.get("API-KEY") not in self.knobs.keys:
            return answers.error(401, "UNAUTHORIZED", "Invalid API key")
        if self.stats.requests["assets"] <= self.knobs.upload_fail_first:
            return answers.error(503, "SERVICE_UNAVAILABLE", "Upload service unavailable")
        try:
            form = await request.post()
        except ValueError:
            return answers.error(400, "INVALID_FORM", "Expected multipart/form-data")
        upload = form.get("asset")
        if not isinstance(upload, web.FileField):
            details = [{"field": "asset", "message": "asset file is required"}]
            return answers.error(400, "MISSING_REQUIRED_FIELDS", "Missing required fields", json.dumps(details))
        data = upload.file.read()
        extension = (upload.filename or "upload.bin").rsplit(".", 1)[-1].lower()
        path = f"development/assets/{uuid.uuid4().hex}.{extension}"
        self.files[path] = (data, upload.content_type or "application/octet-stream")
        self.stats.uploads += 1
        asset = {"key": path, "name": upload.filename, "size": len(data), "mimeType": upload.content_type}
        return web.json_response({"asset": asset, "fileContent": {"path": path, "name": upload.filename}})

    async def _public_asset(self, request: web.Request) -> web.Response:
        self.stats.requests["public_asset"] += 1
        return self._serve(request.match_info["path"])

    async def _signed_asset(self, request: web.Request) -> web.Response:
        self.stats.requests["signed_asset"] += 1
        path = request.match_info["path"]
        expires = request.query.get("X-Amz-Expires-At", "0")
        signature = request.query.get("X-Amz-Signature", "")
        if not hmac.compare_digest(signature, answers.signature(path, expires)):
            return web.Response(status=403, text=answers.s3_error("SignatureDoesNotMatch"), content_type="application/xml")
        if float(expires) < time.time():
            return web.Response(
                status=403, text=answers.s3_error("AccessDenied", "Request has expired"), content_type="application/xml"
            )
        return self._serve(path)

    def _serve(self, path: str) -> web.Response:
        if path not in self.files:
            return web.Response(status=404, text=answers.s3_error("NoSuchKey"), content_type="application/xml")
        self.stats.download_tries[path] += 1
        if self.stats.download_tries[path] <= self.knobs.download_fail_first or self._dice.random() < self.knobs.download_fail:
            wait = self.knobs.download_retry_after
            headers = {"Retry-After": f"{wait:g}"} if wait is not None else None
            return web.Response(status=503, text=answers.s3_error("SlowDown"), content_type="application/xml", headers=headers)
        data, content_type = self.files[path]
        if self._dice.random() < self.knobs.download_truncate:
            return web.Response(body=data[: len(data) // 2], content_type=content_type)
        self.stats.downloads += 1
        return web.Response(body=data, content_type=content_type)

    def _sign(self, origin: Any, path: str) -> str:
        expires = f"{time.time() + self.knobs.temporary_url_ttl:.0f}"
        return f"{origin}/signed/{path}?X-Amz-Expires-At={expires}&X-Amz-Signature={answers.signature(path, expires)}"

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_dict())

    async def _cancel_tasks(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def start(knobs: Knobs | None = None, host: str = "127.0.0.1", port: int = 0) -> tuple[Emulator, web.AppRunner, str]:
    """Serve an emulator on loopback; returns it, its runner (to clean up) and its base URL."""
    emulator = Emulator(knobs)
    runner = web.AppRunner(emulator.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    # With port 0 the OS picks a free port; the runner lists the addresses it listens on.
    bound = runner.addresses[0][1] if runner.addresses else port
    return emulator, runner, f"http://{host}:{bound}"
