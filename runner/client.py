"""All HTTP lives here: one generation, one download, one upload, each a result or an ApiError.

Every aiohttp, JSON and HTTP outcome is turned into a typed `ApiError` in this module and
nowhere else, so the worker pool reasons about kinds ("timeout", "credits", ...), not sockets.
Every byte that comes back is hostile until checked:

- a request that carries the key never follows a redirect: aiohttp would send the custom
  `API-KEY` header (and a 307's body) to wherever the server points; a redirect is an error
  that names the host it pointed at, and stops the run;
- answers are read up to MAX_ANSWER_BYTES, images up to MAX_IMAGE_BYTES each and within a
  memory budget the whole pool shares, results per job up to MAX_RESULTS_PER_JOB;
- the key is cut out of every answer before anything reads it, so a server that echoes it
  back gets it into no record, log line or message; an image that holds it is not saved;
- whatever the parser does not expect becomes ApiError("invalid_response"), never a crash.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import aiohttp
from fastjsonschema import JsonSchemaException
from yarl import URL

from runner import schemas
from runner.budget import MemoryBudget
from runner.errors import ApiError, StopReason

T = TypeVar("T")

PUBLIC_ASSET_URL = "https://asset.1min.ai"
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_ANSWER_BYTES = 2 * 1024 * 1024  # an aiRecord is a few kilobytes
MAX_RESULTS_PER_JOB = 8  # Flux Dev makes one image a request
EMULATOR_HEADER = "X-Flux-Batch-Emulator"  # the built-in emulator marks its answers with it
REDACTED = "<redacted>"
# Shorter "keys" are test values; cutting every "k" out of an answer would only break it.
MIN_REDACTED_KEY = 8
_CREDITS = re.compile(r"credit", re.IGNORECASE)
_URL = re.compile(r"https?://\S+")
_REQUEST_ID = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b|\b[0-9a-f]{24,}\b")


@dataclass(frozen=True, slots=True)
class Generation:
    """An answer: the aiRecord verbatim and, once finished, where its images are."""

    ai_record: dict[str, Any]
    results: tuple[str, ...]  # asset paths, as in resultObject; empty while still running
    temporary_url: str | None  # signed URL of results[0] only
    emulated: bool = False  # answered by flux-batch's own emulator

    @classmethod
    def from_ai_record(cls, record: dict[str, Any]) -> Generation:
        """A Generation from an aiRecord kept in a records line, to fetch or poll it again."""
        detail = record.get("aiRecordDetail")
        results = detail.get("resultObject") if isinstance(detail, dict) else None
        paths = tuple(r for r in results if isinstance(r, str)) if isinstance(results, list) else ()
        temporary = record.get("temporaryUrl")
        return cls(record, paths, temporary if isinstance(temporary, str) else None)

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
    held: int  # bytes reserved in the pool's MemoryBudget, to release once written


class Redactor:
    """Cuts the API key out of text and parsed JSON: what a server echoes never goes further."""

    def __init__(self, key: str) -> None:
        self._key = key if len(key) >= MIN_REDACTED_KEY else ""
        self._key_bytes = self._key.encode()

    def text(self, text: str) -> str:
        return text.replace(self._key, REDACTED) if self._key and self._key in text else text

    def found_in(self, data: bytes) -> bool:
        return bool(self._key_bytes) and self._key_bytes in data

    def data(self, value: Any) -> Any:
        """`value` (parsed JSON) with the key cut out of every string, keys of objects included."""
        if not self._key:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(item) for item in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        return value


NO_REDACTION = Redactor("")


def asset_base_for(base_url: str) -> str:
    """Where result paths are public: the real CDN for the real API, `<base>/asset` otherwise."""
    host = urlsplit(base_url).hostname or ""
    return PUBLIC_ASSET_URL if host == "1min.ai" or host.endswith(".1min.ai") else base_url.rstrip("/") + "/asset"


class Client:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        request_timeout: float,
        budget: MemoryBudget | None = None,
    ) -> None:
        self._session = session
        self.base_url = base_url
        self._base = base_url.rstrip("/")
        self._features = URL(f"{self._base}/api/features")  # parsed once, not per request
        self._headers = {"API-KEY": api_key}
        self._redactor = Redactor(api_key)
        self._generate_timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=30)
        self._download_timeout = aiohttp.ClientTimeout(total=min(request_timeout, 120), sock_connect=30)
        self.budget = budget or MemoryBudget()
        self.asset_base = asset_base_for(base_url)

    async def generate(self, request: dict[str, Any], asynchronous: bool = False) -> Generation:
        """POST one request. Synchronously the image exists when this returns; asynchronously
        the answer may still be running, to be `poll`ed."""
        body = {**request, "async": True} if asynchronous else request
        status, headers, raw = await self._exchange("POST", self._features, self._generate_timeout, json=body)
        return self._read(parse_generation, status, headers, raw, running_ok=asynchronous)

    async def poll(self, uuid: str) -> Generation:
        """Ask once how an asynchronous generation is doing. A poll is never charged."""
        url = f"{self._base}/api/results/{quote(uuid, safe='')}"
        status, headers, raw = await self._exchange("GET", url, self._download_timeout)
        return self._read(parse_generation, status, headers, raw, running_ok=True)

    def image_urls(self, generation: Generation, index: int) -> Iterator[str]:
        """Where result `index` can be fetched, best first: the signed URL, then the public one."""
        if index == 0 and generation.temporary_url:
            yield generation.temporary_url
        yield f"{self.asset_base}/{quote(generation.results[index])}"

    async def download(self, url: str) -> Picture:
        """Fetch one image and check that it is one; raise ApiError(kind="download") if not.

        No key goes with it, so a redirect (S3 may send one) is followed. The bytes are reserved
        in the pool's budget; whoever writes the picture releases `Picture.held`."""
        held = 0
        try:
            async with self._session.get(url, timeout=self._download_timeout, max_redirects=5) as response:
                if response.status != 200:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    raise ApiError(
                        "download",
                        f"HTTP {response.status} from the image host",
                        status=response.status,
                        retryable=True,
                        retry_after=retry_after,
                    )
                declared = response.content_length
                if declared is not None and declared > MAX_IMAGE_BYTES:
                    raise ApiError("download", f"the image host offers {declared} bytes, over the {MAX_IMAGE_BYTES}-byte cap")
                held = await self.budget.acquire(declared if declared is not None else MAX_IMAGE_BYTES)
                data = await _read_capped(response, MAX_IMAGE_BYTES, "download")
        except ApiError:
            self.budget.release(held)
            raise
        except TimeoutError as exc:
            self.budget.release(held)
            raise ApiError("download", f"no image within {self._download_timeout.total:g} s", retryable=True) from exc
        except aiohttp.ClientError as exc:
            self.budget.release(held)
            raise ApiError("download", _describe_network_error(exc, url), retryable=True) from exc
        except BaseException:
            self.budget.release(held)
            raise
        if held > len(data):  # the host did not say how much: give back what was not used
            self.budget.release(held - len(data))
            held = len(data)
        try:
            if self._redactor.found_in(data):
                raise ApiError("download", "the image host sent a file that holds the API key; it was not saved")
            return Picture(data, image_extension(data), held)
        except ApiError:
            self.budget.release(held)
            raise

    async def upload(self, name: str, data: bytes, content_type: str) -> str:
        """Send an image to the Asset API; return the asset path `image_prompt` takes."""
        form = aiohttp.FormData()
        # A file-like object, not bytes: aiohttp streams it instead of refusing a large body.
        form.add_field("asset", io.BytesIO(data), filename=name, content_type=content_type)
        status, headers, body = await self._exchange("POST", f"{self._base}/api/assets", self._download_timeout, data=form)

        def asset_path(status: int, headers: Any, body: bytes, redactor: Redactor) -> str:
            answer = _json_answer(status, headers, body, redactor)
            content, asset = answer.get("fileContent"), answer.get("asset")
            path = (content.get("path") if isinstance(content, dict) else None) or (
                asset.get("key") if isinstance(asset, dict) else None
            )
            if not isinstance(path, str) or not path or len(path) > 1000:
                raise ApiError(
                    "invalid_response", "the Asset API answered without fileContent.path", status=status, retryable=True
                )
            return path

        return self._read(asset_path, status, headers, body)

    def _read(self, parse: Callable[..., T], status: int, headers: Any, body: bytes, **options: Any) -> T:
        """`parse` an answer; anything it did not foresee in hostile bytes is a malformed answer."""
        try:
            return parse(status, headers, body, redactor=self._redactor, **options)
        except ApiError:
            raise
        except (RecursionError, MemoryError):
            raise ApiError("invalid_response", "an answer nested too deeply to read", status=status, retryable=True) from None
        except Exception as exc:
            message = f"an answer flux-batch could not read ({type(exc).__name__})"
            raise ApiError("invalid_response", message, status=status, retryable=True) from exc

    async def _exchange(
        self, method: str, url: str | URL, timeout: aiohttp.ClientTimeout, **kwargs: Any
    ) -> tuple[int, Any, bytes]:
        """One request that carries the key: never redirected, its answer read up to the cap."""
        try:
            async with self._session.request(
                method, url, timeout=timeout, headers=self._headers, allow_redirects=False, **kwargs
            ) as response:
                if 300 <= response.status < 400:
                    raise self._redirected(method, str(url), response)
                body = await _read_capped(response, MAX_ANSWER_BYTES, "invalid_response")
                return response.status, response.headers, body
        except TimeoutError as exc:
            seconds = timeout.total
            raise ApiError("timeout", f"no answer within {seconds:g} s" if seconds else "timed out", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise ApiError("network", self._redactor.text(_describe_network_error(exc, str(url))), retryable=True) from exc

    def _redirected(self, method: str, url: str, response: aiohttp.ClientResponse) -> ApiError:
        location = response.headers.get("Location", "")
        target = urlsplit(urljoin(url, location)).netloc if location else ""
        shown = self._redactor.text(target)[:200] or "an address it did not give"
        message = (
            f"{method} {urlsplit(url).path} answered HTTP {response.status}, a redirect to {shown}; "
            "flux-batch never follows a redirect with the API key"
        )
        return ApiError("http", message, status=response.status, stop=StopReason.REDIRECT)


async def _read_capped(response: aiohttp.ClientResponse, limit: int, kind: str) -> bytes:
    """The whole body, in as many reads as it takes, refused past `limit` bytes. A large API
    answer may be a proxy's hiccup (retried); a large image is the same each time (not)."""
    retryable = kind != "download"
    declared = response.content_length
    if declared is not None:
        if declared > limit:
            raise ApiError(kind, f"answer larger than {limit} bytes", status=response.status, retryable=retryable)
        return await response.read()  # all of the declared length, or a ClientPayloadError
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ApiError(kind, f"answer larger than {limit} bytes", status=response.status, retryable=retryable)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_generation(
    status: int, headers: Any, body: bytes, running_ok: bool = False, redactor: Redactor = NO_REDACTION
) -> Generation:
    """Turn an answer of POST /api/features into a Generation, or raise the right ApiError.

    `running_ok`: an asynchronous answer may be PROCESSING (or PENDING) rather than SUCCESS."""
    answer = _json_answer(status, headers, body, redactor)
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
    emulated = headers.get(EMULATOR_HEADER) == "1"
    if record["status"] == "FAILURE":
        raise ApiError("http", f"the API reports the generation failed: {_clean(str(detail.get('error', '')))}", status=status)
    if record["status"] != "SUCCESS":
        if running_ok:
            return Generation(record, (), None, emulated)
        raise ApiError("invalid_response", f"unexpected status {record['status']}", status=status, retryable=True)
    results = tuple(detail["resultObject"])
    if len(results) > MAX_RESULTS_PER_JOB:
        message = f"the answer lists {len(results)} results; flux-batch takes at most {MAX_RESULTS_PER_JOB} a job"
        raise ApiError("invalid_response", message, status=status)
    temporary = record.get("temporaryUrl") or answer.get("temporaryUrl")
    return Generation(record, results, temporary if isinstance(temporary, str) else None, emulated)


def _json_answer(status: int, headers: Any, body: bytes, redactor: Redactor = NO_REDACTION) -> dict[str, Any]:
    """The answer as JSON if it is a success; otherwise the ApiError its status and body say.
    The key is cut out first: from the raw text, and, where JSON escapes could spell it
    another way, from every parsed string."""
    text = redactor.text(body.decode("utf-8", errors="replace"))
    try:
        answer = json.loads(text)
    except (ValueError, RecursionError):
        answer = None
    if "\\" in text:
        answer = redactor.data(answer)
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
    """Retry-After in seconds, from a number of seconds or an HTTP date; None if unreadable.

    Whatever a server sends is read without raising: a date with a numeric zone of -0000 (which
    Python reads as "no zone") is UTC, and `inf` or a date in year 9999 are read as they are,
    for the retry policy to cap."""
    if not value:
        return None
    value = value.strip()[:100]
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return None if seconds != seconds else max(0.0, seconds)  # NaN waits for nothing
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


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
