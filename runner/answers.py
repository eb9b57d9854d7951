"""What the API's answers mean: a Generation, an asset path, or the ApiError an answer says.

Pure functions of an answer's status, headers and bytes (the HTTP itself is client.py's),
written for every shape the API is known to send: the success record with `temporaryUrl`
inside or beside it, the relay's "busy" 400 that hides a provider's refusal in `details`,
insufficient credits as a 200, Cloudflare pages, bodies that are not JSON. The key is cut out
of every answer before anything reads it (Redactor), and whatever the parser does not foresee
is the caller's to turn into an invalid_response.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from fastjsonschema import JsonSchemaException

from runner import schemas
from runner.errors import ApiError

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


# Where an aiRecord may say what it cost. The provider's page documents none; relays and newer
# versions of the API have been seen with these. A figure found here wins over a declared price.
COST_FIELDS = ("credits", "creditsUsed", "creditsConsumed", "cost")


def cost_of(ai_record: dict[str, Any]) -> float | None:
    """What the answer says this generation cost, if it says so with a plain non-negative number."""
    for name in COST_FIELDS:
        value = ai_record.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e12:
            return float(value)
    return None


def parse_asset_path(status: int, headers: Any, body: bytes, redactor: Redactor = NO_REDACTION) -> str:
    """The asset path an answer of POST /api/assets gives (fileContent.path, or asset.key)."""
    answer = _json_answer(status, headers, body, redactor)
    content, asset = answer.get("fileContent"), answer.get("asset")
    path = (content.get("path") if isinstance(content, dict) else None) or (asset.get("key") if isinstance(asset, dict) else None)
    if not isinstance(path, str) or not path or len(path) > 1000:
        raise ApiError("invalid_response", "the Asset API answered without fileContent.path", status=status, retryable=True)
    return path
