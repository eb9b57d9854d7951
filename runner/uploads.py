"""Local input images on their way to the Asset API: each picture uploaded once per endpoint,
the bytes sent checked against the hash its jobs are named by, and a picture the endpoint
says it cannot load uploaded again, once."""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner import inputs
from runner.client import Client
from runner.errors import ApiError
from runner.events import Outcome
from runner.pacing import Pacer
from runner.plan import Job
from runner.retry import Retrying
from runner.stop import Stop
from runner.store import RunDir

# What a provider says when an uploaded image_prompt cannot be used (an asset of another
# server, one that expired): the picture is uploaded again, once.
_ASSET_UNUSABLE = re.compile(r"(image_prompt|input image|asset).*(load|fetch|download|found|access|expired|invalid|read)", re.I)


class Uploads:
    def __init__(
        self,
        client: Client,
        run_dir: RunDir,
        pacer: Pacer,
        retrying: Retrying,
        stop: Stop,
        outcome: Outcome,
        local_images: Mapping[str, Path],
    ) -> None:
        self._client = client
        self._run_dir = run_dir
        self._pacer = pacer
        self._retrying = retrying
        self._stop = stop
        self._outcome = outcome
        self._local_images = local_images  # image_prompt token -> the file it stands for
        self._locks: dict[str, asyncio.Lock] = {}
        self._uploaded_again: set[str] = set()  # pictures uploaded again this invocation
        self._changed: dict[str, ApiError] = {}  # pictures changed on disk since the manifest was read

    async def as_sent(self, job: Job) -> dict[str, Any]:
        """The job's request with a local input image replaced by its uploaded asset path."""
        prompt_object = job.request["promptObject"]
        token = prompt_object.get("image_prompt")
        if not inputs.is_token(token):
            return job.request
        asset = await self._asset(token)
        return {**job.request, "promptObject": {**prompt_object, "image_prompt": asset}}

    def unusable(self, job: Job, sent: dict[str, Any], error: ApiError) -> bool:
        """Did the endpoint refuse the uploaded picture itself (one it never had, or lost)? Then
        that upload is forgotten, once per picture and invocation, and `as_sent` uploads again."""
        token = job.request["promptObject"].get("image_prompt")
        if error.retryable or not inputs.is_token(token) or not _ASSET_UNUSABLE.search(error.message):
            return False
        if self._run_dir.asset(token) == sent["promptObject"].get("image_prompt"):
            if token in self._uploaded_again:
                return False
            self._uploaded_again.add(token)
            self._run_dir.forget_asset(token)
        return True

    async def _asset(self, token: str) -> str:
        """Upload the picture behind `token` once per endpoint; concurrent jobs share the upload."""
        async with self._locks.setdefault(token, asyncio.Lock()):
            known = self._run_dir.asset(token)
            if known:
                return known
            if token in self._changed:
                raise self._changed[token]
            path = self._local_images[token]
            data = path.read_bytes()
            # The bytes sent are the bytes the job id names, or the job is not sent: a picture
            # edited since the manifest was read would be paid for under the old one's id.
            if inputs.TOKEN_PREFIX + hashlib.sha256(data).hexdigest() != token:
                message = f"{path} changed on disk after the run started; run again to send the new picture"
                self._changed[token] = ApiError("validation", message)
                raise self._changed[token]
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"

            async def upload(attempt: int) -> str:
                async with self._pacer.slot():
                    if self._stop.requested:
                        raise ApiError("network", "the run stopped before the picture was uploaded", retryable=True)
                    return await self._client.upload(path.name, data, content_type)

            asset = await self._retrying(upload, "upload", label=f"upload of {path.name}")
            self._run_dir.remember_asset(token, asset)
            self._outcome.uploads += 1
            return asset
