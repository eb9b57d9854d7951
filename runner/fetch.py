"""Paid pictures, fetched and kept: a generation's images downloaded (as persistently as the
generation was retried, at each of their URLs), written with the job's success line, and,
when the host fails meanwhile, recorded with their aiRecord at once and tried once more at
the end of the invocation. Images of earlier runs come back the same way: those that run
could not fetch, and those of done jobs gone from disk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from runner.answers import Generation
from runner.client import Client, Picture
from runner.errors import ApiError
from runner.events import Event, Outcome
from runner.plan import Job
from runner.recorder import Recorder
from runner.retry import Retrying
from runner.stop import Stop
from runner.store import RunDir


@dataclass(frozen=True, slots=True)
class Refetch:
    """A paid image of an earlier run to fetch (or poll) again, from the line that kept its aiRecord.
    `names`: where its images go when its success line exists already (an image deleted from disk)."""

    job: Job
    generation: Generation
    attempts: int
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Unfetched:
    """A paid image whose download failed in this invocation: its line is on disk, its image not yet."""

    job: Job
    generation: Generation
    attempts: int
    started: float
    error: ApiError


class Fetcher:
    def __init__(
        self,
        client: Client,
        run_dir: RunDir,
        retrying: Retrying,
        recorder: Recorder,
        stop: Stop,
        outcome: Outcome,
        on_event: Callable[[Event], None],
    ) -> None:
        self._client = client
        self._run_dir = run_dir
        self._retrying = retrying
        self._recorder = recorder
        self._stop = stop
        self._outcome = outcome
        self._on_event = on_event
        self._unfetched: list[_Unfetched] = []

    async def save(self, job: Job, generation: Generation, attempts: int, started: float) -> bool:
        """Fetch the job's images and record its success; a paid image that cannot be fetched
        now is recorded with its aiRecord and tried again at the end of the invocation."""
        async with self._one_job_of_several(generation):
            try:
                pictures = await self._download_all(generation)
            except ApiError as error:
                if await self._recorder.keep_paid(job, error, attempts, started, generation.ai_record):
                    self._unfetched.append(_Unfetched(job, generation, attempts, started, error))
                    self._on_event(Event("retry", job=job, error=error, message="download: tried again at the end of the run"))
                return False
            return await self._succeed(job, generation.ai_record, pictures, attempts, started)

    async def restore(self, item: Refetch, generation: Generation) -> None:
        """Images of a done job that are gone from disk: fetched again under their recorded
        names; the job's success line stands, so no line is written."""
        async with self._one_job_of_several(generation):
            try:
                pictures = await self._download_all(generation)
            except ApiError as error:
                message = f"{item.names[0]} is missing and cannot be fetched again: {error.message}"
                self._on_event(Event("note", job=item.job, message=message))
                return
            try:
                if await self._recorder.append(None, list(zip(item.names, (p.data for p in pictures), strict=False))):
                    self._outcome.restored += 1
            finally:
                self._release(pictures)

    async def last_pass(self) -> None:
        """The images this invocation paid for and could not fetch: one more try each, now that
        the host has had time; those still missing count as failed (and the next run tries again)."""
        unfetched, self._unfetched = self._unfetched, []
        for item in unfetched:
            if self._stop.leaving:
                self._recorder.count_failure(item.job, item.error, item.attempts)
                continue
            async with self._one_job_of_several(item.generation):
                try:
                    pictures = await self._download_all(item.generation)
                except ApiError as error:
                    self._recorder.count_failure(item.job, error, item.attempts)
                    continue
                await self._succeed(item.job, item.generation.ai_record, pictures, item.attempts, item.started)

    async def _succeed(self, job: Job, ai_record: dict[str, Any], pictures: list[Picture], attempts: int, started: float) -> bool:
        """Write the job's pictures and its success line, and give back their memory."""
        try:
            images = [
                (self._run_dir.image_name(job.prompt_id, job.job_id, index, picture.extension), picture.data)
                for index, picture in enumerate(pictures)
            ]
            return await self._recorder.succeed(job, ai_record, images, attempts, started)
        finally:
            self._release(pictures)

    def _one_job_of_several(self, generation: Generation) -> contextlib.AbstractAsyncContextManager[Any]:
        # Only one job at a time holds several images in memory: two of them could each wait for
        # the other's bytes to be released (budget.py).
        return self._client.budget.several_results if len(generation.results) > 1 else contextlib.nullcontext()

    def _release(self, pictures: Iterable[Picture]) -> None:
        for picture in pictures:
            self._client.budget.release(picture.held)

    async def _download_all(self, generation: Generation) -> list[Picture]:
        pictures: list[Picture] = []
        try:
            for index in range(len(generation.results)):
                pictures.append(await self._download(self._client.image_urls(generation, index)))
        except BaseException:
            self._release(pictures)
            raise
        return pictures

    async def _download_once(self, url: str, attempt: int) -> Picture:
        return await self._client.download(url)

    async def _download(self, urls: Iterable[str]) -> Picture:
        """One image, tried up to max_attempts times at each of its URLs, with backoff. An expired
        signature, a missing object or a refused file moves on to the next URL at once."""
        last: ApiError | None = None
        for url in urls:
            try:
                return await self._retrying(
                    partial(self._download_once, url), "download", deep=True, gives_up=lambda error: error.status in (403, 404)
                )
            except ApiError as error:
                last = error
        assert last is not None
        raise ApiError("download", f"could not fetch the image: {last.message}", status=last.status, retryable=last.retryable)
