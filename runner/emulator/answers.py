"""The emulator's answers, in the shapes the live API and its hosts use: error bodies, the
relay's "busy" 400 around a provider's refusal, Cloudflare pages, S3's XML errors, a dropped
connection, a hang, and the signature of a temporaryUrl."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from typing import Any

from aiohttp import web

from runner.answers import EMULATOR_HEADER

_SIGNING_KEY = b"flux-batch-emulator"


@web.middleware
async def mark_as_emulated(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every answer says it came from the emulator: a run dir then knows its images are not paid ones."""
    response: web.StreamResponse = await handler(request)
    response.headers[EMULATOR_HEADER] = "1"
    return response


def error(
    status: int, code: str, message: str, details: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"errorCode": code, "message": message}
    if details is not None:
        body["details"] = details
    return web.json_response(body, status=status, headers=headers)


def busy(details: dict[str, Any]) -> web.Response:
    message = "OpenAI service is a bit busy right now. Please try again shortly."
    return error(400, "EXTERNAL_API_RESPONSE_WITH_ERROR", message, json.dumps(details))


def refusal(reason: str) -> dict[str, Any]:
    """`details` of a provider's 422, with the internal URL and request id the relay leaks."""
    request_id = uuid.uuid4().hex
    return {
        "response": {"status": 422, "data": {"detail": f"{reason} (request {request_id})"}},
        "request": {"url": f"https://api.provider.internal/v1/predictions/{request_id}", "method": "POST"},
    }


async def later(response: web.Response) -> web.Response:
    return response


async def drop() -> web.Response:
    # Raising CancelledError in a handler makes aiohttp close the connection without an answer.
    raise asyncio.CancelledError


async def hang() -> web.Response:
    await asyncio.sleep(3600)
    raise asyncio.CancelledError


def signature(path: str, expires: str) -> str:
    return hmac.new(_SIGNING_KEY, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()


def cloudflare_page(code: int) -> str:
    titles = {502: "Bad gateway", 503: "Service unavailable", 522: "Connection timed out", 524: "A timeout occurred"}
    return (
        f"<!DOCTYPE html><html><head><title>api.1min.ai | {code}: {titles[code]}</title></head>"
        f"<body><h1>Error {code}</h1><p>{titles[code]}</p><p>Cloudflare Ray ID: {uuid.uuid4().hex[:16]}</p>"
        "</body></html>"
    )


def s3_error(code: str, message: str = "") -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
