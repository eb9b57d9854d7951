"""The worker pool: push every pending job through the API, save its images, record it.

    jobs --> workers (2 x concurrency) --> Pacer.slot (at most `concurrency` POSTs in flight)
                                        --> Client.generate, retried per RetryPolicy
                                        --> Client.download (never re-generates)
                                        --> RecordWriter.append: images, then their line, fsynced
                                        --> Event for the CLI

There are twice as many workers as generation slots so that downloads and disk writes overlap
the next requests: the API stays busy with exactly `concurrency` generations. A job counts as
done only after its line is fsynced.

A paid image is fetched as persistently as a generation is retried. One whose download still
failed is recorded at once with its aiRecord (so a crash loses nothing), gets one more try at
the end of the invocation, and only then counts as failed; the next run fetches it again
instead of paying for it twice. Every wait goes through `Stop.sleep`: none outlives a signal
or the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import mimetypes
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from runner import inputs
from runner.client import Client, Generation, Picture, image_extension
from runner.errors import ApiError, StillRunning, StopReason
from runner.pacing import Pacer, RetryPolicy
from runner.plan import Job, Plan, Survey
from runner.settings import RunSettings
from runner.stop import Stop
from runner.store import RecordWriter, RunDir, image_files, images_on_disk, read_summary, records_of, utc_timestamp

# What a provider says when an uploaded image_prompt cannot be used (an asset of another
# server, one that expired): the picture is uploaded again, once.
_ASSET_UNUSABLE = re.compile(r"(image_prompt|input image|asset).*(load|fetch|download|found|access|expired|invalid|read)", re.I)


@dataclass(frozen=True, slots=True)
class Event:
    """Something the CLI may show: "planned" (`count` jobs to run, `done` of `total` already),
    a job "done" or "failed", a "retry", a "note", or a "stop"."""

    kind: str
    count: int = 0
    job: Job | None = None
    error: ApiError | None = None
    attempt: int = 0
    elapsed: float = 0.0
    message: str = ""
    done: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True)
class Refetch:
    """A paid image of an earlier run to fetch (or poll) again, from the line that kept its aiRecord.
    `names`: where its images go when its success line exists already (an image deleted from disk)."""

    job: Job
    generation: Generation
    attempts: int
    names: tuple[str, ...] = ()


@dataclass
class Outcome:
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    fetched: int = 0  # paid images of earlier runs fetched again
    recovered: int = 0  # images found on disk without their line, recorded as done
    restored: int = 0  # images of done jobs missing from disk, fetched again
    uploads: int = 0  # input images sent to the Asset API
    retries: int = 0  # generation requests sent again
    download_retries: int = 0
    upload_retries: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # by error kind
    examples: dict[str, str] = field(default_factory=dict)  # error kind -> its first message
    started: float = field(default_factory=time.time)
    finished: float = 0.0

    @property
    def did_anything(self) -> bool:
        return bool(self.submitted or self.succeeded or self.failed or self.fetched or self.recovered or self.restored)


@dataclass
class _Unfetched:
    """A paid image whose download failed in this invocation: its line is on disk, its image not yet."""

    job: Job
    generation: Generation
    attempts: int
    started: float
    error: ApiError


@dataclass
class Pool:
    client: Client
    run_dir: RunDir
    writer: RecordWriter
    pacer: Pacer
    policy: RetryPolicy
    stop: Stop
    on_event: Callable[[Event], None] = lambda event: None
    max_jobs: int | None = None
    cap: StopReason = StopReason.MAX_JOBS  # what max_jobs stands for
    cap_message: str = "the --max-jobs cap"
    async_mode: bool = False  # ask for asynchronous generations and poll them
    poll_timeout: float = 300.0  # how long one asynchronous generation is polled
    local_images: Mapping[str, Path] = field(default_factory=dict)  # input image token -> file
    outcome: Outcome = field(default_factory=Outcome, init=False)
    taken: int = field(default=0, init=False)  # new jobs taken, counted against max_jobs
    capped: bool = field(default=False, init=False)  # max_jobs reached with jobs left over
    _upload_locks: dict[str, asyncio.Lock] = field(default_factory=dict, init=False)
    _reuploaded: set[str] = field(default_factory=set, init=False)  # pictures uploaded again this invocation
    _changed: dict[str, ApiError] = field(default_factory=dict, init=False)  # pictures changed on disk
    _unfetched: list[_Unfetched] = field(default_factory=list, init=False)

    async def run(self, jobs: Iterator[Job], refetch: Iterable[Refetch] = ()) -> Outcome:
        """Fetch what earlier runs paid for, then run `jobs`, until done or stopped; then try
        once more to fetch the images this invocation paid for and could not fetch."""
        # One iterator shared by every worker: safe, as workers only switch at an await.
        work: Iterator[Job | Refetch] = itertools.chain(refetch, jobs)
        async with asyncio.TaskGroup() as group:
            for n in range(2 * self.pacer.concurrency):
                group.create_task(self._worker(work), name=f"worker-{n}")
        await self._last_pass()
        if self.capped:
            self.stop.request(self.cap, f"{self.max_jobs} new jobs submitted, {self.cap_message}")
        self.outcome.finished = time.time()
        return self.outcome

    async def _worker(self, work: Iterator[Job | Refetch]) -> None:
        try:
            await self._take_jobs(work)
        finally:
            # The first worker to stop means nothing new goes out: the jobs still in flight are
            # the last, and batching their commits would only keep the run from ending.
            self.writer.hurry()

    async def _take_jobs(self, work: Iterator[Job | Refetch]) -> None:
        while not self.stop.requested:
            item = next(work, None)
            if item is None:
                return
            if isinstance(item, Refetch):
                await self._refetch(item)
                continue
            if self.max_jobs is not None and self.taken >= self.max_jobs:
                # Jobs already taken still go out: the cap stops taking, it abandons nothing.
                self.capped = True
                return
            self.taken += 1
            await self._run_job(item)

    def _stop_run(self, error: ApiError, job: Job | None = None, attempt: int = 0) -> None:
        """A bad key, an empty account, a redirect: stop dispatching, and say so once."""
        assert error.stop is not None
        if self.stop.request(error.stop, error.message):
            self.on_event(Event("stop", job=job, error=error, attempt=attempt, message=error.message))

    # -- one job -----------------------------------------------------------------------------

    async def _run_job(self, job: Job) -> None:
        started = time.time()
        try:
            request = await self._as_sent(job)
        except ApiError as error:
            if error.stops_run:
                self._stop_run(error, job)
            elif not self.stop.requested:
                await self._record_failure(job, error, 0, started)
            return
        attempt = 0
        asset_retried = False
        while True:
            attempt += 1
            try:
                async with self.pacer.slot():
                    if self.stop.requested:
                        return  # not sent: the job stays pending for the next run
                    if attempt == 1:
                        self.outcome.submitted += 1
                    generation = await self.client.generate(request, asynchronous=self.async_mode)
                    if not self._accept(generation, job):
                        return
                    if not generation.finished:
                        # Polling holds the slot: a running generation is one in flight.
                        generation = await self._poll(generation)
                break
            except StillRunning as running:
                # Paid for and still running: never resubmitted; the next run polls it again.
                await self._record_failure(job, running.error, attempt, started, running.ai_record)
                return
            except ApiError as error:
                if error.stops_run:
                    self._stop_run(error, job, attempt)
                    return
                if error.status == 429:
                    self.pacer.throttled(error.retry_after)
                if not error.retryable and not asset_retried and self._asset_unusable(job, request, error):
                    asset_retried = True  # a fresh upload, then the same job again, once
                    try:
                        request = await self._as_sent(job)
                    except ApiError as upload_error:
                        error = upload_error
                    else:
                        continue
                if not error.retryable or attempt >= self.policy.max_attempts:
                    await self._record_failure(job, error, attempt, started)
                    return
                self.outcome.retries += 1
                await self._wait_to_retry(error, attempt, job, "generation")
                if self.stop.requested:
                    return
        self.pacer.succeeded()
        sent = job if request is job.request else Job(job.job_id, job.prompt_id, job.axes, request)
        await self._save(sent, generation, attempt, started)

    def _accept(self, generation: Generation, job: Job) -> bool:
        """May this run dir take this answer's images? Emulator pictures never join paid ones.
        A paid image is never thrown away: a real answer is kept even where it does not belong,
        and the run stops after it."""
        if self.run_dir.answered_by(generation.emulated):
            return True
        provenance = self.run_dir.provenance
        held = provenance.describe() if provenance is not None else "other images"
        said = "the emulator" if generation.emulated else "a real API (paid images)"
        message = f"{self.client.base_url} answers as {said}, but {self.run_dir.path} holds images from {held}"
        self.stop.request(StopReason.ENDPOINT, message)
        self.on_event(Event("stop", job=job, message=message))
        return not generation.emulated

    async def _wait_to_retry(self, error: ApiError, attempt: int, job: Job | None, what: str, deep: bool = False) -> None:
        """Wait before another try, and say so. `deep`: a paid image's fetch or poll, which only
        a signal or the deadline cuts short (a bad key stops sending, not fetching)."""
        delay = self.policy.delay(attempt, error.retry_after)
        note = ""
        if self.policy.over_cap(error.retry_after):
            note = f"the server asked to wait {error.retry_after:g} s; waiting the cap of {self.policy.max_delay:g} s"
        self.on_event(Event("retry", job=job, error=error, attempt=attempt, message=f"{what}: {note}" if note else what))
        await self.stop.sleep(delay, any_stop=not deep)

    async def _poll(self, generation: Generation) -> Generation:
        """Poll a running generation until it finishes; polls are free, so errors only wait."""
        give_up = time.monotonic() + self.poll_timeout
        interval = 0.5
        while not generation.finished:
            if time.monotonic() >= give_up or self.stop.leaving:
                waited = f"after {self.poll_timeout:g} s" if not self.stop.leaving else "when the run stopped"
                message = (
                    f"generation {generation.uuid} was still running {waited}; "
                    "the next run polls it again instead of paying for it twice"
                )
                raise StillRunning(ApiError("timeout", message), generation.ai_record)
            await self.stop.sleep(interval, any_stop=False)
            interval = min(interval * 1.5, 5.0)
            try:
                generation = await self.client.poll(generation.uuid)
            except ApiError as error:
                if error.stops_run:
                    # Paid for: its aiRecord is recorded, and the next run polls it again.
                    self._stop_run(error)
                    message = f"generation {generation.uuid} was still running when the run stopped ({error.message})"
                    raise StillRunning(ApiError("timeout", message), generation.ai_record) from error
                if not error.retryable:
                    raise
        return generation

    # -- input images ------------------------------------------------------------------------

    async def _as_sent(self, job: Job) -> dict[str, Any]:
        """The job's request with a local input image replaced by its uploaded asset path."""
        prompt_object = job.request["promptObject"]
        token = prompt_object.get("image_prompt")
        if not inputs.is_token(token):
            return job.request
        asset = await self._asset(token)
        return {**job.request, "promptObject": {**prompt_object, "image_prompt": asset}}

    async def _asset(self, token: str) -> str:
        """Upload the picture behind `token` once per endpoint; concurrent jobs share the upload."""
        async with self._upload_locks.setdefault(token, asyncio.Lock()):
            known = self.run_dir.asset(token)
            if known:
                return known
            if token in self._changed:
                raise self._changed[token]
            path = self.local_images[token]
            data = path.read_bytes()
            # The bytes sent are the bytes the job id names, or the job is not sent: a picture
            # edited since the manifest was read would be paid for under the old one's id.
            if inputs.TOKEN_PREFIX + hashlib.sha256(data).hexdigest() != token:
                message = f"{path} changed on disk after the run started; run again to send the new picture"
                self._changed[token] = ApiError("validation", message)
                raise self._changed[token]
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            attempt = 0
            while True:
                attempt += 1
                try:
                    async with self.pacer.slot():
                        if self.stop.requested:
                            raise ApiError("network", "the run stopped before the picture was uploaded", retryable=True)
                        asset = await self.client.upload(path.name, data, content_type)
                    break
                except ApiError as error:
                    if error.stops_run or not error.retryable or attempt >= self.policy.max_attempts or self.stop.requested:
                        raise
                    if error.status == 429:
                        self.pacer.throttled(error.retry_after)
                    self.outcome.upload_retries += 1
                    await self._wait_to_retry(error, attempt, None, f"upload of {path.name}")
            self.run_dir.remember_asset(token, asset)
            self.outcome.uploads += 1
            return asset

    def _asset_unusable(self, job: Job, sent: dict[str, Any], error: ApiError) -> bool:
        """The endpoint refused the uploaded picture itself (one it never had, or lost): forget
        that upload, once per picture and invocation, so the next `_as_sent` uploads it again."""
        token = job.request["promptObject"].get("image_prompt")
        if not inputs.is_token(token) or not _ASSET_UNUSABLE.search(error.message):
            return False
        sent_asset = sent["promptObject"].get("image_prompt")
        if self.run_dir.asset(token) == sent_asset:
            if token in self._reuploaded:
                return False
            self._reuploaded.add(token)
            self.run_dir.forget_asset(token)
        return True

    # -- images --------------------------------------------------------------------------------

    async def _save(self, job: Job, generation: Generation, attempts: int, started: float) -> bool:
        """Fetch the job's images and record its success; a paid image that cannot be fetched
        now is recorded with its aiRecord and tried again at the end of the invocation."""
        async with self._one_job_of_several(generation):
            try:
                pictures = await self._download_all(generation)
            except ApiError as error:
                if await self._append(_line(job, "failed", attempts, generation.ai_record, [], error.as_record(), started)):
                    self._unfetched.append(_Unfetched(job, generation, attempts, started, error))
                    self.on_event(Event("retry", job=job, error=error, message="download: tried again at the end of the run"))
                return False
            return await self._succeed(job, generation, pictures, attempts, started)

    async def _succeed(self, job: Job, generation: Generation, pictures: list[Picture], attempts: int, started: float) -> bool:
        """Write the job's pictures and its success line, count it, and give back their memory."""
        try:
            images = [
                (self.run_dir.image_name(job.prompt_id, job.job_id, index, picture.extension), picture.data)
                for index, picture in enumerate(pictures)
            ]
            record = _line(job, "success", attempts, generation.ai_record, [name for name, _ in images], None, started)
            if not await self._append(record, images):
                return False
        finally:
            self._release(pictures)
        elapsed = record["elapsed_s"]
        self.outcome.succeeded += 1
        self.outcome.latencies.append(elapsed)
        self.on_event(Event("done", job=job, attempt=attempts, elapsed=elapsed))
        return True

    def _one_job_of_several(self, generation: Generation) -> contextlib.AbstractAsyncContextManager[Any]:
        # Only one job at a time holds several images in memory: two of them could each wait for
        # the other's bytes to be released (budget.py).
        return self.client.budget.several_results if len(generation.results) > 1 else contextlib.nullcontext()

    def _release(self, pictures: Iterable[Picture]) -> None:
        for picture in pictures:
            self.client.budget.release(picture.held)

    async def _download_all(self, generation: Generation) -> list[Picture]:
        pictures: list[Picture] = []
        try:
            for index in range(len(generation.results)):
                pictures.append(await self._download(self.client.image_urls(generation, index)))
        except BaseException:
            self._release(pictures)
            raise
        return pictures

    async def _download(self, urls: Iterable[str]) -> Picture:
        """One image, tried up to max_attempts times at each of its URLs, with backoff."""
        last: ApiError | None = None
        for url in urls:
            for attempt in range(1, self.policy.max_attempts + 1):
                try:
                    return await self.client.download(url)
                except ApiError as error:
                    last = error
                    if error.status in (403, 404) or not error.retryable:
                        break  # an expired signature, a missing object, a refused file: the next URL
                    if attempt == self.policy.max_attempts or self.stop.leaving:
                        break
                    self.outcome.download_retries += 1
                    await self._wait_to_retry(error, attempt, None, "download", deep=True)
        assert last is not None
        raise ApiError("download", f"could not fetch the image: {last.message}", status=last.status, retryable=last.retryable)

    async def _refetch(self, item: Refetch) -> None:
        """An earlier run's paid image: poll it if it was still running, then fetch it."""
        job, generation, started = item.job, item.generation, time.time()
        if not generation.finished:
            try:
                async with self.pacer.slot():
                    generation = await self._poll(generation)
            except StillRunning as running:
                await self._record_failure(job, running.error, item.attempts, started, running.ai_record)
                return
            except ApiError as error:
                if error.stops_run:
                    self._stop_run(error, job)
                else:
                    await self._record_failure(job, error, item.attempts, started, generation.ai_record)
                return
        if item.names:
            await self._restore(item, generation)
        elif await self._save(job, generation, item.attempts, started):
            self.outcome.fetched += 1

    async def _restore(self, item: Refetch, generation: Generation) -> None:
        """Images of a done job that are gone from disk: fetched again under their recorded
        names; the job's success line stands, so no line is written."""
        async with self._one_job_of_several(generation):
            try:
                pictures = await self._download_all(generation)
            except ApiError as error:
                self.on_event(
                    Event(
                        "note", job=item.job, message=f"{item.names[0]} is missing and cannot be fetched again: {error.message}"
                    )
                )
                return
            try:
                if await self._append(None, list(zip(item.names, (p.data for p in pictures), strict=False))):
                    self.outcome.restored += 1
            finally:
                self._release(pictures)

    async def _last_pass(self) -> None:
        """The images this invocation paid for and could not fetch: one more try each, now that
        the host has had time; those still missing count as failed (and the next run tries again)."""
        unfetched, self._unfetched = self._unfetched, []
        for item in unfetched:
            if self.stop.leaving:
                await self._count_failure(item.job, item.error, item.attempts)
                continue
            async with self._one_job_of_several(item.generation):
                try:
                    pictures = await self._download_all(item.generation)
                except ApiError as error:
                    await self._count_failure(item.job, error, item.attempts)
                    continue
                await self._succeed(item.job, item.generation, pictures, item.attempts, item.started)

    # -- the records ---------------------------------------------------------------------------

    async def _append(self, record: dict[str, Any] | None, images: list[tuple[str, bytes]] | None = None) -> bool:
        """Hand a line (and its images) to the writer; a disk that refuses stops the run."""
        try:
            await self.writer.append(record, images or ())
        except OSError as exc:
            reason, message = disk_trouble(exc, self.run_dir.path)
            if self.stop.request(reason, message):
                self.on_event(Event("stop", message=message))
            return False
        return True

    async def _record_failure(
        self, job: Job, error: ApiError, attempts: int, started: float, ai_record: dict[str, Any] | None = None
    ) -> None:
        if await self._append(_line(job, "failed", attempts, ai_record, [], error.as_record(), started)):
            await self._count_failure(job, error, attempts)

    async def _count_failure(self, job: Job, error: ApiError, attempts: int) -> None:
        self.outcome.failed += 1
        self.outcome.failures[error.kind] += 1
        self.outcome.examples.setdefault(error.kind, error.message)
        self.on_event(Event("failed", job=job, error=error, attempt=attempts))


def disk_trouble(exc: OSError, run_dir: Path) -> tuple[StopReason, str]:
    """Why the run dir could not be written, in words a user can act on."""
    from runner.store import WriterGone

    if isinstance(exc, WriterGone):
        return StopReason.WRITER, exc.strerror or str(exc)
    where = exc.filename or run_dir
    if exc.errno == 28:  # ENOSPC
        return StopReason.DISK, f"the disk holding {run_dir} is full (No space left on device, writing {where})"
    return StopReason.DISK, f"cannot write {where}: {exc.strerror or exc}"


def _line(
    job: Job,
    status: str,
    attempts: int,
    ai_record: dict[str, Any] | None,
    files: list[str],
    error: dict[str, object] | None,
    started: float,
    recovered: bool = False,
) -> dict[str, Any]:
    finished = time.time()
    # Key order matters: store.RecordIndex reads job_id, prompt_id and status from the start,
    # and elapsed_s from the end.
    line = {
        "job_id": job.job_id,
        "prompt_id": job.prompt_id,
        "status": status,
        "attempts": attempts,
        "axes": job.axes,
        "request": job.request,
        "aiRecord": ai_record,
        "files": files,
        "error": error,
    }
    if recovered:
        line["recovered"] = True
    line.update(started_at=utc_timestamp(started), finished_at=utc_timestamp(finished), elapsed_s=round(finished - started, 3))
    return line


def summarize(outcome: Outcome, total: int, done_before: int, stop: Stop, run_dir: RunDir, held_back: int = 0) -> dict[str, Any]:
    """summary.json: what this invocation did."""
    latencies = sorted(outcome.latencies)
    done = done_before + outcome.succeeded + outcome.recovered
    provenance = run_dir.provenance
    return {
        "started_at": utc_timestamp(outcome.started),
        "finished_at": utc_timestamp(outcome.finished or time.time()),
        "wall_s": round((outcome.finished or time.time()) - outcome.started, 3),
        "endpoint": provenance.describe() if provenance is not None else None,
        "emulated": provenance.emulated if provenance is not None else None,
        "jobs": {
            "total": total,
            "done": done,
            "pending": max(0, total - done),
            "done_before": done_before,
            "submitted": outcome.submitted,
            "succeeded": outcome.succeeded,
            "failed": outcome.failed,
            "fetched_again": outcome.fetched,
            "recovered": outcome.recovered,
            "held_back": held_back,
        },
        "images_restored": outcome.restored,
        "uploads": outcome.uploads,
        "retries": outcome.retries,
        "download_retries": outcome.download_retries,
        "upload_retries": outcome.upload_retries,
        "latency_s": {"p50": _percentile(latencies, 0.50), "p95": _percentile(latencies, 0.95)},
        "failures_by_kind": dict(outcome.failures),
        "failure_examples": outcome.examples,
        "stopped": {"reason": str(stop.reason), "message": stop.message} if stop.reason is not None else None,
    }


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


@dataclass(frozen=True, slots=True)
class Result:
    """What a run did: its outcome, summary.json's content, and whether there was anything to do."""

    outcome: Outcome
    summary: dict[str, Any]
    idle: bool  # nothing was to run: summary is the last run's, kept as it was


async def run_plan(
    plan: Plan,
    run_dir: RunDir,
    settings: RunSettings,
    base_url: str,
    api_key: str,
    stop: Stop,
    on_event: Callable[[Event], None] = lambda event: None,
    policy: RetryPolicy | None = None,
) -> Result:
    """Run every job of `plan` that `run_dir` does not hold yet; write summary.json."""
    index = run_dir.index
    on_disk = images_on_disk(run_dir.path)
    held_back = index.unfetched.keys() | (set() if settings.retry_failed else index.refused)
    orphans = {job_id for job_id in on_disk if job_id not in index.done}
    survey = plan.survey(index.done, held_back, orphans) if index.lines or orphans else None
    refetch = _refetches(plan, run_dir, index.unfetched.values(), on_disk)
    done_before = survey.done if survey else 0
    to_run = (survey.to_run if survey else plan.total) + len(index.unfetched)
    refused_left = (survey.held_back - len(index.unfetched)) if survey else 0
    recovering = len(survey.recovered) if survey else 0  # done once recovered, before anything is sent
    on_event(Event("planned", count=to_run, done=done_before + recovering, total=plan.total))
    outcome = Outcome()
    if to_run == 0 and not refetch and not (survey and survey.recovered):
        return Result(outcome, _kept_summary(run_dir, outcome, plan.total, done_before, stop, refused_left), idle=True)
    policy = policy or RetryPolicy(max_attempts=settings.max_attempts)
    # The pool, not the connector, limits concurrency: downloads must not queue behind POSTs.
    # No cookies: nothing a server sets is sent anywhere.
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    async with (
        aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session,
        run_dir.records() as writer,
    ):
        pool = Pool(
            client=Client(session, base_url, api_key, settings.request_timeout),
            run_dir=run_dir,
            writer=writer,
            pacer=Pacer(
                settings.concurrency,
                settings.requests_per_minute,
                sleep=stop.sleep,
                stopped=lambda: stop.requested,
                max_pause=policy.max_delay,
            ),
            policy=policy,
            stop=stop,
            on_event=on_event,
            max_jobs=settings.job_cap,
            cap=_cap(settings),
            cap_message=_cap_message(settings),
            async_mode=settings.async_mode,
            local_images=plan.manifest.local_images,
            poll_timeout=settings.request_timeout,
        )
        if survey and survey.recovered:
            await _recover_images(pool, plan, survey, on_disk)
        pending = plan.jobs(settings.order, skip=held_back, survey=survey)
        outcome = await pool.run(pending, refetch)
    summary = summarize(outcome, plan.total, done_before, stop, run_dir, refused_left)
    try:
        run_dir.write_summary(summary)
    except OSError as exc:
        reason, message = disk_trouble(exc, run_dir.path)
        stop.request(reason, message)
        summary["stopped"] = {"reason": str(stop.reason), "message": stop.message}
    return Result(outcome, summary, idle=False)


def _kept_summary(run_dir: RunDir, outcome: Outcome, total: int, done: int, stop: Stop, held_back: int) -> dict[str, Any]:
    """Nothing to do: the last run's figures stand; only the counts are brought up to date."""
    outcome.finished = outcome.started
    summary = read_summary(run_dir.path) or summarize(outcome, total, done, stop, run_dir, held_back)
    summary["jobs"] = {**summary.get("jobs", {}), "total": total, "done": done, "pending": total - done, "held_back": held_back}
    return summary


def _refetches(plan: Plan, run_dir: RunDir, unfetched: Iterable[dict[str, Any]], on_disk: Mapping[str, str]) -> list[Refetch]:
    """Paid images to fetch again: those an earlier run could not fetch, and those of done jobs
    whose files are gone from disk."""
    items = [
        Refetch(
            Job(line["job_id"], line["prompt_id"], line["axes"], line["request"]),
            Generation.from_ai_record(line["aiRecord"]),
            int(line.get("attempts") or 1),
        )
        for line in unfetched
    ]
    missing = {job_id for job_id in run_dir.index.done if job_id not in on_disk}
    for line in records_of(run_dir.path, missing).values():
        ai_record = line.get("aiRecord")
        names = tuple(name for name in line["files"] if isinstance(name, str))
        if isinstance(ai_record, dict) and ai_record and names:
            job = Job(line["job_id"], line["prompt_id"], line["axes"], line["request"])
            items.append(Refetch(job, Generation.from_ai_record(ai_record), int(line.get("attempts") or 1), names))
    return items


async def _recover_images(pool: Pool, plan: Plan, survey: Survey, on_disk: Mapping[str, str]) -> None:
    """Jobs whose images are on disk but whose line is not (lost to a crash or a damaged
    records.jsonl): the image was paid for and written whole, so the job is done. It gets a
    line marked `recovered`, and is not sent again."""
    for position in survey.recovered:
        job = plan.job_at_position(position)
        names = image_files(pool.run_dir.path, on_disk[job.job_id], job.job_id)
        try:
            for name in names:
                image_extension((pool.run_dir.path / name).read_bytes())
        except (OSError, ApiError):
            for name in names:
                (pool.run_dir.path / name).unlink(missing_ok=True)  # not a whole image: the job runs again
            continue
        if await pool._append(_line(job, "success", 0, {}, names, None, time.time(), recovered=True)):
            pool.outcome.recovered += 1
    if pool.outcome.recovered:
        pool.on_event(
            Event(
                "note",
                message=f"{pool.outcome.recovered} job(s) whose images were on disk without a record were recorded as done",
            )
        )


def _cap(settings: RunSettings) -> StopReason:
    if settings.credit_cap_jobs is not None and settings.credit_cap_jobs == settings.job_cap:
        return StopReason.MAX_CREDITS
    return StopReason.MAX_JOBS


def _cap_message(settings: RunSettings) -> str:
    if _cap(settings) is StopReason.MAX_CREDITS:
        return f"the --max-credits cap of {settings.max_credits:g} at {settings.credits_per_image:g} an image"
    return "the --max-jobs cap"
