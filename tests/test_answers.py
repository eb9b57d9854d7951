"""What the API's answers mean (runner/answers.py): every shape is read as a result or the right ApiError,
and the key is cut out of whatever a server echoes."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from runner import schemas
from runner.answers import image_extension, parse_generation, parse_retry_after
from runner.emulator.pictures import draw
from runner.errors import ApiError
from tests.conftest import (
    Cli,
    manifest_text,
    records,
    run_cli,
    write,
)
from tests.hostile import Hostile, ai_record, png
from tests.support import SECRET, assert_no_key_in

RECORD = {
    "uuid": "e4f5g6h7",
    "model": "black-forest-labs/flux-dev",
    "type": "IMAGE_GENERATOR",
    "status": "SUCCESS",
    "createdAt": "2025-01-15T10:50:00.000Z",
    "aiRecordDetail": {"promptObject": {"prompt": "x"}, "resultObject": ["development/images/a.webp", "b.webp"]},
}


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> ApiError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ApiError) as caught:
        parse_generation(status, headers or {}, raw)
    return caught.value


def test_success_with_temporary_url_inside_or_beside_the_record() -> None:
    inside = parse_generation(200, {}, json.dumps({"aiRecord": {**RECORD, "temporaryUrl": "https://s3/t"}}).encode())
    beside = parse_generation(200, {}, json.dumps({"aiRecord": RECORD, "temporaryUrl": "https://s3/t"}).encode())
    for generation in (inside, beside):
        assert generation.results == ("development/images/a.webp", "b.webp")
        assert generation.temporary_url == "https://s3/t"
    assert inside.ai_record["uuid"] == "e4f5g6h7"


def test_insufficient_credits_as_a_200() -> None:
    record = {**RECORD, "aiRecordDetail": {"resultObject": {"code": "INSUFFICIENT_CREDITS", "message": "Not enough"}}}
    error = answer(200, {"aiRecord": record})
    assert (error.kind, error.stops_run, error.retryable) == ("credits", True, False)


@pytest.mark.parametrize("status", [402, 403])
def test_insufficient_credits_as_a_4xx(status: int) -> None:
    error = answer(status, {"errorCode": "FORBIDDEN", "message": "You do not have enough credits"})
    assert error.kind == "credits" and error.status == status


def test_a_403_about_something_else_is_not_about_credits() -> None:
    error = answer(403, {"errorCode": "FORBIDDEN", "message": "Feature disabled for this team"})
    assert (error.kind, error.retryable) == ("http", False)


def test_bad_key() -> None:
    error = answer(401, {"errorCode": "UNAUTHORIZED", "message": "Invalid API key"})
    assert (error.kind, error.stops_run) == ("auth", True)


def test_rate_limit_with_retry_after() -> None:
    error = answer(429, {"errorCode": "RATE_LIMIT_EXCEEDED", "message": "slow down"}, {"Retry-After": "7"})
    assert (error.kind, error.retryable, error.retry_after) == ("http", True, 7.0)


def test_cloudflare_page() -> None:
    page = b"<!DOCTYPE html><html><head><title>api.1min.ai | 524: A timeout occurred</title></head></html>"
    error = answer(524, page)
    assert error.retryable and error.status == 524
    assert error.message == "HTTP 524: an HTML page: api.1min.ai | 524: A timeout occurred"


def test_non_json_and_malformed_200s_are_retryable() -> None:
    assert answer(200, b"<html>oops</html>").kind == "invalid_response"
    malformed = answer(200, {"aiRecord": {**RECORD, "aiRecordDetail": {"resultObject": []}}})
    assert (malformed.kind, malformed.retryable) == ("invalid_response", True)
    assert answer(200, {"something": "else"}).retryable


def test_busy_provider_with_a_5xx_or_nothing_inside_is_retryable() -> None:
    busy = "OpenAI service is a bit busy right now. Please try again shortly."
    for details in (json.dumps({"response": {"status": 503, "data": {"detail": "overloaded"}}}), None):
        body = {"errorCode": "EXTERNAL_API_RESPONSE_WITH_ERROR", "message": busy}
        if details:
            body["details"] = details
        error = answer(400, body)
        assert error.retryable and error.kind == "http"


def test_busy_provider_with_a_4xx_inside_fails_with_the_real_cause() -> None:
    details = {
        "response": {
            "status": 422,
            "data": {"detail": "prompt_strength must be <= 1 (request 9f86d081884c7d659a2feaa0c55ad015)"},
        },
        "request": {"url": "https://internal.example/v1/predictions/abc", "headers": {"Authorization": "Token r8_x"}},
    }
    error = answer(400, {"errorCode": "EXTERNAL_API_RESPONSE_WITH_ERROR", "message": "busy", "details": json.dumps(details)})
    assert (error.kind, error.retryable, error.status) == ("validation", False, 400)
    assert error.message == "the provider refused the request (422): prompt_strength must be <= 1 (request <id>)"


def test_missing_fields_lists_them() -> None:
    details = json.dumps([{"field": "promptObject.prompt", "message": "prompt is required"}])
    error = answer(400, {"errorCode": "MISSING_REQUIRED_FIELDS", "message": "Missing required fields", "details": details})
    assert error.kind == "validation" and not error.retryable
    assert "promptObject.prompt: prompt is required" in error.message


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 30


def test_images_are_checked_to_be_images_and_whole() -> None:
    data, _, _ = draw({"prompt": "x", "seed": 1}, 32)
    assert image_extension(data) == "webp"
    with pytest.raises(ApiError, match="not an image"):
        image_extension(b"<Error>AccessDenied</Error>")
    with pytest.raises(ApiError, match=rf"the downloaded webp image is cut short \({len(data) - 1} bytes\)"):
        image_extension(data[:-1])


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "GIF"])
def test_every_format_the_api_makes_is_known_whole_or_cut_short(kind: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (200, 40, 40)).save(buffer, kind)
    data = buffer.getvalue()
    extension = {"PNG": "png", "JPEG": "jpg", "GIF": "gif"}[kind]
    assert image_extension(data) == extension
    with pytest.raises(ApiError, match="cut short"):
        image_extension(data[: len(data) // 2])


ANSWERS = [
    {"aiRecord": RECORD},
    {"aiRecord": {**RECORD, "temporaryUrl": "https://s3/t"}, "temporaryUrl": "https://s3/t"},
    {"aiRecord": {**RECORD, "status": "PROCESSING", "aiRecordDetail": {"resultObject": []}}},
    {"aiRecord": {**RECORD, "aiRecordDetail": {"resultObject": []}}},
    {"aiRecord": {**RECORD, "aiRecordDetail": {"resultObject": [""]}}},
    {"aiRecord": {**RECORD, "aiRecordDetail": {}}},
    {"aiRecord": {**RECORD, "status": "DONE"}},
    {"aiRecord": {**RECORD, "uuid": ""}},
    {"aiRecord": {**RECORD, "temporaryUrl": 5}},
    {"aiRecord": "nope"},
    {"something": "else"},
    [],
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_the_compiled_answer_schema_agrees_with_jsonschema(answer: object) -> None:
    """Answers are checked by fastjsonschema for speed; it must judge as jsonschema does."""
    from fastjsonschema import JsonSchemaException

    reference = schemas.validator("ai-record").is_valid(answer)
    try:
        schemas.compiled("ai-record")(answer)
        fast = True
    except JsonSchemaException:
        fast = False
    assert fast == reference


def test_an_answer_with_too_many_results_fails_the_job_without_fetching_them(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    async def thirty(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return web.json_response({"aiRecord": ai_record(body["promptObject"], [f"images/{n}.png" for n in range(30)])})

    hostile.features = thirty
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(2)), hostile.url)
    assert result.code == 1
    assert "the answer lists 30 results; flux-batch takes at most 8 a job" in result.err
    assert not [seen for seen in hostile.seen if seen.path.startswith("/asset/")]


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
