"""All HTTP lives here: one generation, one poll, one download, one upload, each a result or an
ApiError.

Every aiohttp outcome is turned into a typed `ApiError` in this module and nowhere else, so
the worker pool reasons about kinds ("timeout", "credits", ...), not sockets; what an answer's
bytes mean is runner/answers.py's. Every byte that comes back is hostile until checked:

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import aiohttp
from yarl import URL

from runner.answers import Generation, Redactor, image_extension, parse_asset_path, parse_generation, parse_retry_after
from runner.budget import MemoryBudget
from runner.errors import ApiError, StopReason

T = TypeVar("T")

PUBLIC_ASSET_URL = "https://asset.1min.ai"
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_ANSWER_BYTES = 2 * 1024 * 1024  # an aiRecord is a few kilobytes


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes
    extension: str
    held: int  # bytes reserved in the pool's MemoryBudget, to release once written


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
        self.on_policy: Callable[[str], None] | None = None  # told each RateLimit-Policy the API states

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
        return self._read(parse_asset_path, status, headers, body)

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
                policy = response.headers.get("RateLimit-Policy")
                if policy is not None and self.on_policy is not None:
                    self.on_policy(policy)
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


def _describe_network_error(exc: aiohttp.ClientError, url: str) -> str:
    where = urlsplit(url)
    target = f"{where.scheme}://{where.netloc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {target}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{target} closed the connection without an answer"
    return f"{type(exc).__name__} talking to {target}: {str(exc)[:200]}"
