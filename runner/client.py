"""All HTTP lives here: one generation, one download, one upload, each a result or an ApiError.

Every aiohttp, JSON and HTTP outcome is turned into a typed `ApiError` in this module and
nowhere else, so the worker pool reasons about kinds ("timeout", "credits", ...), not sockets.
The API key travels in one header and is never part of a message.
"""

from __future__ import annotations

import io
import json
import mimetypes
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from fastjsonschema import JsonSchemaException
from yarl import URL

from runner import schemas
from runner.errors import ApiError

PUBLIC_ASSET_URL = "https://asset.1min.ai"
MAX_IMAGE_BYTES = 64 * 1024 * 1024
_CREDITS = re.compile(r"credit", re.IGNORECASE)
_URL = re.compile(r"https?://\S+")
_REQUEST_ID = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b|\b[0-9a-f]{24,}\b")


@dataclass(frozen=True, slots=True)
class Generation:
    """An answer: the aiRecord verbatim and, once finished, where its images are."""

    ai_record: dict[str, Any]
    results: tuple[str, ...]  # asset paths, as in resultObject; empty while still running
    temporary_url: str | None  # signed URL of results[0] only

    @property
    def finished(self) -> bool:
        return self.ai_record.get("status") == "SUCCESS"

    @property
    def uuid(self) -> str:
        return str(self.ai_record.get("uuid", ""))


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes
    extension: str


def asset_base_for(base_url: str) -> str:
    """Where result paths are public: the real CDN for the real API, `<base>/asset` otherwise."""
    host = urlsplit(base_url).hostname or ""
    return PUBLIC_ASSET_URL if host == "1min.ai" or host.endswith(".1min.ai") else base_url.rstrip("/") + "/asset"


class Client:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: str, request_timeout: float) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._features = URL(f"{self._base}/api/features")  # parsed once, not per request
        self._headers = {"API-KEY": api_key}
        self._generate_timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=30)
        self._download_timeout = aiohttp.ClientTimeout(total=min(request_timeout, 120), sock_connect=30)
        self.asset_base = asset_base_for(base_url)

    async def generate(self, request: dict[str, Any], asynchronous: bool = False) -> Generation:
        """POST one request. Synchronously the image exists when this returns; asynchronously
        the answer may still be running, to be `poll`ed."""
        body = {**request, "async": True} if asynchronous else request
        status, headers, raw = await self._exchange(
            "POST", self._features, self._generate_timeout, json=body, headers=self._headers
        )
        return parse_generation(status, headers, raw, running_ok=asynchronous)

    async def poll(self, uuid: str) -> Generation:
        """Ask once how an asynchronous generation is doing. A poll is never charged."""
        status, headers, raw = await self._exchange(
            "GET", f"{self._base}/api/results/{quote(uuid)}", self._download_timeout, headers=self._headers
        )
        return parse_generation(status, headers, raw, running_ok=True)

    def image_urls(self, generation: Generation, index: int) -> Iterator[str]:
        """Where result `index` can be fetched, best first: the signed URL, then the public one."""
        if index == 0 and generation.temporary_url:
            yield generation.temporary_url
        yield f"{self.asset_base}/{quote(generation.results[index])}"

    async def download(self, url: str) -> Picture:
        """Fetch one image and check that it is one; raise ApiError(kind="download") if not."""
        try:
            status, _, body = await self._exchange("GET", url, self._download_timeout, limit=MAX_IMAGE_BYTES)
        except ApiError as exc:
            raise ApiError("download", exc.message, status=exc.status, retryable=True) from exc
        if status != 200:
            raise ApiError("download", f"HTTP {status} from the image host", status=status, retryable=True)
        return Picture(body, image_extension(body))

    async def upload(self, path: Path) -> str:
        """Send a local image to the Asset API; return the asset path `image_prompt` takes."""
        form = aiohttp.FormData()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # A file-like object, not bytes: aiohttp streams it instead of refusing a large body.
        form.add_field("asset", io.BytesIO(path.read_bytes()), filename=path.name, content_type=content_type)
        status, headers, body = await self._exchange(
            "POST", f"{self._base}/api/assets", self._download_timeout, data=form, headers=self._headers
        )
        answer = _json_answer(status, headers, body)
        asset_path = (answer.get("fileContent") or {}).get("path") or (answer.get("asset") or {}).get("key")
        if not isinstance(asset_path, str) or not asset_path:
            raise ApiError("invalid_response", "the Asset API answered without fileContent.path", status=status, retryable=True)
        return asset_path

    async def _exchange(
        self, method: str, url: str | URL, timeout: aiohttp.ClientTimeout, limit: int | None = None, **kwargs: Any
    ) -> tuple[int, Any, bytes]:
        try:
            async with self._session.request(method, url, timeout=timeout, **kwargs) as response:
                body = await response.read() if limit is None else await _read_capped(response, limit)
                return response.status, response.headers, body
        except TimeoutError as exc:
            seconds = timeout.total
            raise ApiError("timeout", f"no answer within {seconds:g} s" if seconds else "timed out", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise ApiError("network", _describe_network_error(exc, str(url)), retryable=True) from exc


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, in as many reads as it takes, refused past `limit` bytes."""
    declared = response.content_length
    if declared is not None:
        if declared > limit:
            raise ApiError("download", f"answer larger than {limit} bytes", status=response.status)
        return await response.read()  # all of the declared length, or a ClientPayloadError
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ApiError("download", f"answer larger than {limit} bytes", status=response.status)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_generation(status: int, headers: Any, body: bytes, running_ok: bool = False) -> Generation:
    """Turn an answer of POST /api/features into a Generation, or raise the right ApiError.

    `running_ok`: an asynchronous answer may be PROCESSING (or PENDING) rather than SUCCESS."""
    answer = _json_answer(status, headers, body)
    record = answer.get("aiRecord")
    detail = record.get("aiRecordDetail") if isinstance(record, dict) else None
    result = detail.get("resultObject") if isinstance(detail, dict) else None
    if isinstance(result, dict) and _CREDITS.search(f"{result.get('code', '')} {result.get('message', '')}"):
        raise ApiError("credits", f"the account is out of credits: {result.get('message') or result.get('code')}", status=status)
    try:
        schemas.compiled("ai-record")(answer)
    except JsonSchemaException as exc:
        message = f"malformed answer ({str(exc).removeprefix('data.')[:200]})"
        raise ApiError("invalid_response", message, status=status, retryable=True) from exc
    assert isinstance(record, dict) and isinstance(detail, dict)
    if record["status"] == "FAILURE":
        raise ApiError("http", f"the API reports the generation failed: {_clean(str(detail.get('error', '')))}", status=status)
    if record["status"] != "SUCCESS":
        if running_ok:
            return Generation(record, (), None)
        raise ApiError("invalid_response", f"unexpected status {record['status']}", status=status, retryable=True)
    temporary = record.get("temporaryUrl") or answer.get("temporaryUrl")
    return Generation(record, tuple(detail["resultObject"]), temporary if isinstance(temporary, str) else None)


def _json_answer(status: int, headers: Any, body: bytes) -> dict[str, Any]:
    """The answer as JSON if it is a success; otherwise the ApiError its status and body say."""
    text = body.decode("utf-8", errors="replace")
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if status >= 400 or status < 200:
        raise _error_for(status, headers, answer if isinstance(answer, dict) else None, text)
    if not isinstance(answer, dict):
        kind = "an HTML page" if "<html" in text[:500].lower() else "a body that is not JSON"
        raise ApiError("invalid_response", f"HTTP {status} with {kind}", status=status, retryable=True)
    return answer


def _error_for(status: int, headers: Any, answer: dict[str, Any] | None, text: str) -> ApiError:
    code = str(answer.get("errorCode", "")) if answer else ""
    message = _clean(str(answer.get("message", ""))) if answer else ""
    said = f"{code}: {message}" if code and message else code or message
    if answer is None:
        said = _html_title(text) or f"a non-JSON body of {len(text)} bytes"
    if status == 401:
        return ApiError("auth", f"the API key was refused (HTTP 401{': ' + said if said else ''})", status=status)
    if status in (402, 403) and _CREDITS.search(f"{code} {message}"):
        return ApiError("credits", f"the account is out of credits (HTTP {status}: {said})", status=status)
    if status == 429:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return ApiError("http", f"rate limited (HTTP 429: {said})", status=status, retryable=True, retry_after=retry_after)
    if status >= 500:
        return ApiError(
            "http",
            f"HTTP {status}: {said}",
            status=status,
            retryable=True,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if code == "EXTERNAL_API_RESPONSE_WITH_ERROR":
        return _provider_error(status, answer or {})
    kind = "validation" if code == "MISSING_REQUIRED_FIELDS" else "http"
    return ApiError(kind, f"HTTP {status} {said}{_field_details(answer)}", status=status)


def _provider_error(status: int, answer: dict[str, Any]) -> ApiError:
    """The relay's "busy" 400 hides the provider's real status and reason in `details`."""
    details: Any = answer.get("details")
    if isinstance(details, str):
        try:
            details = json.loads(details)
        except ValueError:
            details = {"response": {"data": {"detail": details}}}
    response = details.get("response") if isinstance(details, dict) else None
    provider_status = response.get("status") if isinstance(response, dict) else None
    data = response.get("data") if isinstance(response, dict) else None
    reason = data if not isinstance(data, dict) else data.get("detail") or data.get("message") or data.get("error") or data
    reason_text = _clean(reason if isinstance(reason, str) else json.dumps(reason))[:500] if reason else ""
    if not isinstance(provider_status, int) or provider_status == 429 or provider_status >= 500:
        shown = f" ({provider_status})" if isinstance(provider_status, int) else ""
        return ApiError(
            "http",
            f"the provider is busy{shown}{': ' + reason_text if reason_text else ''}",
            status=status,
            retryable=True,
        )
    return ApiError(
        "validation",
        f"the provider refused the request ({provider_status}){': ' + reason_text if reason_text else ''}",
        status=status,
    )


def _field_details(answer: dict[str, Any] | None) -> str:
    details: Any = answer.get("details") if answer else None
    if isinstance(details, str):
        try:
            details = json.loads(details)
        except ValueError:
            return f" ({_clean(details)[:200]})"
    if isinstance(details, list):
        parts = [f"{d.get('field')}: {d.get('message')}" for d in details if isinstance(d, dict)]
        return f" ({'; '.join(parts)})" if parts else ""
    return ""


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, from a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def image_extension(data: bytes) -> str:
    """The file extension of a whole image in `data`; ApiError(kind="download") if it is not one.

    A structural check, not a decode: the format's signature at the start, and its own length
    field or end marker at the end, which is what a truncated or substituted download breaks.
    It costs microseconds and no imports, where opening the image with Pillow costs far more
    per job and proves little more: Pillow does not verify WebP or JPEG data either.
    """
    for extension, signature, is_whole in _IMAGE_FORMATS:
        if data.startswith(signature):
            if not is_whole(data):
                raise ApiError("download", f"the downloaded {extension} image is cut short ({len(data)} bytes)", retryable=True)
            return extension
    raise ApiError("download", f"the downloaded file is not an image ({len(data)} bytes)", retryable=True)


def _whole_webp(data: bytes) -> bool:
    # RIFF header: "RIFF", then the size of everything after these 8 bytes, then "WEBP".
    return data[8:12] == b"WEBP" and len(data) >= 8 + int.from_bytes(data[4:8], "little")


_IMAGE_FORMATS: tuple[tuple[str, bytes, Callable[[bytes], bool]], ...] = (
    ("webp", b"RIFF", _whole_webp),
    ("png", b"\x89PNG\r\n\x1a\n", lambda data: b"IEND\xaeB`\x82" in data[-64:]),
    ("jpg", b"\xff\xd8\xff", lambda data: b"\xff\xd9" in data[-64:]),
    ("gif", b"GIF8", lambda data: data.rstrip(b"\0").endswith(b";")),
)


def _clean(text: str) -> str:
    """A message without the provider's internal URLs and request ids."""
    return re.sub(r"\s+", " ", _REQUEST_ID.sub("<id>", _URL.sub("<url>", text))).strip()


def _html_title(text: str) -> str:
    match = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    return f"an HTML page: {match.group(1).strip()[:120]}" if match else ""


def _describe_network_error(exc: aiohttp.ClientError, url: str) -> str:
    where = urlsplit(url)
    target = f"{where.scheme}://{where.netloc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {target}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{target} closed the connection without an answer"
    return f"{type(exc).__name__} talking to {target}: {str(exc)[:200]}"


__all__ = [
    "Client",
    "Generation",
    "Picture",
    "asset_base_for",
    "image_extension",
    "parse_generation",
    "parse_retry_after",
]
