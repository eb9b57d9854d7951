"""The worker pool: push every pending job through the API, save its images, record it.

    jobs --> workers (2 x concurrency) --> Pacer.slot (at most `concurrency` POSTs in flight)
                                        --> Client.generate, retried per RetryPolicy
                                        --> Client.download (never re-generates)
                                        --> RecordWriter.append: images, then their line, fsynced
                                        --> Event for the CLI

There are twice as many workers as generation slots so that downloads and disk writes overlap
the next requests: the API stays busy with exactly `concurrency` generations. A job counts as
done only after its line is fsynced. A paid image whose download failed is recorded with its
aiRecord, and the next run fetches it again instead of paying for it twice.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from runner import inputs
from runner.client import Client, Generation
from runner.errors import ApiError
from runner.pacing import Pacer, RetryPolicy, Sleep
from runner.plan import Job, Plan
from runner.settings import RunSettings
from runner.store import Images, RecordWriter, RunDir, utc_timestamp

DOWNLOAD_TRIES_PER_URL = 3


class StillRunning(Exception):
    """An asynchronous generation outlived its polling: paid for, not yet finished."""

    def __init__(self, error: ApiError, ai_record: dict[str, Any]) -> None:
        super().__init__(error.message)
        self.error = error
        self.ai_record = ai_record


@dataclass(frozen=True, slots=True)
class Event:
    """Something the CLI may show: "planned" (count jobs to go), a job "done" or "failed", a
    "retry", or a "stop"."""

    kind: str
    count: int = 0
    job: Job | None = None
    error: ApiError | None = None
    attempt: int = 0
    elapsed: float = 0.0
    message: str = ""


class Stop:
    """Why dispatching ends early, set once by whoever notices first (a signal, a 401, ...)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.message = ""

    def request(self, reason: str, message: str = "") -> bool:
        """Ask the pool to stop dispatching; True if this was the first request."""
        if self.reason is not None:
            return False
        self.reason, self.message = reason, message
        return True

    @property
    def requested(self) -> bool:
        return self.reason is not None


@dataclass
class Outcome:
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    fetched: int = 0  # paid images of earlier runs fetched again
    uploads: int = 0  # input images sent to the Asset API
    retries: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # by error kind
    examples: dict[str, str] = field(default_factory=dict)  # error kind -> its first message
    started: float = field(default_factory=time.time)
    finished: float = 0.0


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
    deadline: float | None = None  # time.time() after which nothing new is dispatched
    async_mode: bool = False  # ask for asynchronous generations and poll them
    poll_timeout: float = 300.0  # how long one asynchronous generation is polled
    sleep: Sleep = asyncio.sleep
    local_images: Mapping[str, Path] = field(default_factory=dict)  # input image token -> file
    cap_reason: str = "the --max-jobs cap"
    outcome: Outcome = field(default_factory=Outcome, init=False)
    taken: int = field(default=0, init=False)  # new jobs taken, counted against max_jobs
    capped: bool = field(default=False, init=False)  # max_jobs reached with jobs left over
    _upload_locks: dict[str, asyncio.Lock] = field(default_factory=dict, init=False)

    async def run(self, jobs: Iterator[Job], unfetched: Iterable[dict[str, Any]] = ()) -> Outcome:
        """Fetch what earlier runs paid for, then run `jobs`, until done or stopped."""
        # One iterator shared by every worker: safe, as workers only switch at an await.
        work: Iterator[Job | dict[str, Any]] = itertools.chain(unfetched, jobs)
        async with asyncio.TaskGroup() as group:
            for n in range(2 * self.pacer.concurrency):
                group.create_task(self._worker(work), name=f"worker-{n}")
        if self.capped:
            self.stop.request("max_jobs", f"{self.max_jobs} new jobs submitted, {self.cap_reason}")
        self.outcome.finished = time.time()
        return self.outcome

    async def _worker(self, work: Iterator[Job | dict[str, Any]]) -> None:
        try:
            await self._take_jobs(work)
        finally:
            # The first worker to stop means nothing new goes out: the jobs still in flight are
            # the last, and batching their commits would only keep the run from ending.
            self.writer.hurry()

    async def _take_jobs(self, work: Iterator[Job | dict[str, Any]]) -> None:
        while self._may_dispatch():
            item = next(work, None)
            if item is None:
                return
            if isinstance(item, dict):
                await self._fetch_again(item)
                continue
            if self.max_jobs is not None and self.taken >= self.max_jobs:
                # Jobs already taken still go out: the cap stops taking, it abandons nothing.
                self.capped = True
                return
            self.taken += 1
            await self._run_job(item)

    def _may_dispatch(self) -> bool:
        """False once the run should send nothing new: stopped, or past its deadline."""
        if not self.stop.requested and self.deadline is not None and time.time() >= self.deadline:
            self.stop.request("deadline", "the deadline has passed")
        return not self.stop.requested

    def _stop_run(self, error: ApiError, job: Job | None = None, attempt: int = 0) -> None:
        """A bad key or an empty account: stop dispatching, and say so once."""
        if self.stop.request(error.kind, error.message):
            self.on_event(Event("stop", job=job, error=error, attempt=attempt, message=error.message))

    async def _run_job(self, job: Job) -> None:
        started = time.time()
        try:
            request = await self._as_sent(job)
        except ApiError as error:
            if error.stops_run:
                self._stop_run(error, job)
                return
            await self._record_failure(job, error, 0, started)
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self.pacer.slot():
                    if not self._may_dispatch():
                        return  # not sent: the job stays pending for the next run
                    if attempt == 1:
                        self.outcome.submitted += 1
                    generation = await self.client.generate(request, asynchronous=self.async_mode)
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
                if not error.retryable or attempt >= self.policy.max_attempts:
                    await self._record_failure(job, error, attempt, started)
                    return
                self.outcome.retries += 1
                self.on_event(Event("retry", job=job, error=error, attempt=attempt))
                await self.sleep(self.policy.delay(attempt, error.retry_after))
                if self.stop.requested:
                    return
        self.pacer.succeeded()
        sent = job if request is job.request else Job(job.job_id, job.prompt_id, job.axes, request)
        await self._save(sent, generation, attempt, started)

    async def _save(self, job: Job, generation: Generation, attempts: int, started: float) -> bool:
        try:
            images = await self._download_all(job, generation)
        except ApiError as error:
            # Paid for but not fetched: the aiRecord in this line lets the next run fetch it.
            await self._record_failure(job, error, attempts, started, generation.ai_record)
            return False
        record = _line(job, "success", attempts, generation.ai_record, [name for name, _ in images], None, started)
        if not await self._append(record, images):
            return False
        elapsed = record["elapsed_s"]
        self.outcome.succeeded += 1
        self.outcome.latencies.append(elapsed)
        self.on_event(Event("done", job=job, attempt=attempts, elapsed=elapsed))
        return True

    async def _as_sent(self, job: Job) -> dict[str, Any]:
        """The job's request with a local input image replaced by its uploaded asset path."""
        prompt_object = job.request["promptObject"]
        token = prompt_object.get("image_prompt")
        if not inputs.is_token(token):
            return job.request
        asset = await self._asset(token)
        return {**job.request, "promptObject": {**prompt_object, "image_prompt": asset}}

    async def _asset(self, token: str) -> str:
        """Upload the picture behind `token` once per run dir; concurrent jobs share the upload."""
        async with self._upload_locks.setdefault(token, asyncio.Lock()):
            known = self.run_dir.assets.get(token)
            if known:
                return known
            attempt = 0
            while True:
                attempt += 1
                try:
                    async with self.pacer.slot():
                        asset = await self.client.upload(self.local_images[token])
                    break
                except ApiError as error:
                    if error.stops_run or not error.retryable or attempt >= self.policy.max_attempts:
                        raise
                    if error.status == 429:
                        self.pacer.throttled(error.retry_after)
                    await self.sleep(self.policy.delay(attempt, error.retry_after))
            self.run_dir.remember_asset(token, asset)
            self.outcome.uploads += 1
            return asset

    async def _poll(self, generation: Generation) -> Generation:
        """Poll a running generation until it finishes; polls are free, so errors only wait."""
        give_up = time.monotonic() + self.poll_timeout
        interval = 0.5
        while not generation.finished:
            if time.monotonic() >= give_up:
                message = (
                    f"generation {generation.uuid} was still running after {self.poll_timeout:g} s; "
                    "the next run polls it again instead of paying for it twice"
                )
                raise StillRunning(ApiError("timeout", message), generation.ai_record)
            await self.sleep(interval)
            interval = min(interval * 1.5, 5.0)
            try:
                generation = await self.client.poll(generation.uuid)
            except ApiError as error:
                if error.stops_run or not error.retryable:
                    raise
        return generation

    async def _fetch_again(self, earlier: dict[str, Any]) -> None:
        job = Job(earlier["job_id"], earlier["prompt_id"], earlier["axes"], earlier["request"])
        record = earlier["aiRecord"]
        detail = record.get("aiRecordDetail") or {}
        generation = Generation(record, tuple(detail.get("resultObject") or ()), record.get("temporaryUrl"))
        if not generation.finished:
            try:
                async with self.pacer.slot():
                    generation = await self._poll(generation)
            except StillRunning as running:
                await self._record_failure(job, running.error, int(earlier.get("attempts", 1)), time.time(), running.ai_record)
                return
            except ApiError as error:
                if error.stops_run:
                    self._stop_run(error, job)
                    return
                await self._record_failure(job, error, int(earlier.get("attempts", 1)), time.time(), record)
                return
        if await self._save(job, generation, int(earlier.get("attempts", 1)), time.time()):
            self.outcome.fetched += 1

    async def _download_all(self, job: Job, generation: Generation) -> list[tuple[str, bytes]]:
        """(name in the run dir, bytes) of every result; the record writer saves them."""
        images = []
        for index in range(len(generation.results)):
            picture = await self._download(self.client.image_urls(generation, index))
            images.append((self.run_dir.image_name(job.prompt_id, job.job_id, index, picture.extension), picture.data))
        return images

    async def _download(self, urls: Iterable[str]) -> Any:
        last: ApiError | None = None
        for url in urls:
            for attempt in range(1, DOWNLOAD_TRIES_PER_URL + 1):
                try:
                    return await self.client.download(url)
                except ApiError as error:
                    last = error
                    if error.status == 403 or error.status == 404:
                        break  # an expired signature or a missing object: try the next URL
                    if attempt < DOWNLOAD_TRIES_PER_URL:
                        await self.sleep(self.policy.delay(attempt))
        assert last is not None
        raise ApiError("download", f"could not fetch the image: {last.message}", status=last.status, retryable=True)

    async def _append(self, record: dict[str, Any], images: Images = ()) -> bool:
        """Hand a line (and its images) to the writer; a disk that refuses stops the run."""
        try:
            await self.writer.append(record, images)
        except OSError as exc:
            where = exc.filename or self.run_dir.path
            self.stop.request("disk", f"cannot write {where}: {exc.strerror or exc}")
            return False
        return True

    async def _record_failure(
        self, job: Job, error: ApiError, attempts: int, started: float, ai_record: dict[str, Any] | None = None
    ) -> None:
        if not await self._append(_line(job, "failed", attempts, ai_record, [], error.as_record(), started)):
            return
        self.outcome.failed += 1
        self.outcome.failures[error.kind] += 1
        self.outcome.examples.setdefault(error.kind, error.message)
        self.on_event(Event("failed", job=job, error=error, attempt=attempts))


def _line(
    job: Job,
    status: str,
    attempts: int,
    ai_record: dict[str, Any] | None,
    files: list[str],
    error: dict[str, object] | None,
    started: float,
) -> dict[str, Any]:
    finished = time.time()
    # Key order matters: store.RecordIndex reads job_id, prompt_id and status from the start.
    return {
        "job_id": job.job_id,
        "prompt_id": job.prompt_id,
        "status": status,
        "attempts": attempts,
        "axes": job.axes,
        "request": job.request,
        "aiRecord": ai_record,
        "files": files,
        "error": error,
        "started_at": utc_timestamp(started),
        "finished_at": utc_timestamp(finished),
        "elapsed_s": round(finished - started, 3),
    }


def summarize(outcome: Outcome, total: int, done_before: int, stop: Stop) -> dict[str, Any]:
    """summary.json: what this invocation did."""
    latencies = sorted(outcome.latencies)
    done = done_before + outcome.succeeded
    return {
        "started_at": utc_timestamp(outcome.started),
        "finished_at": utc_timestamp(outcome.finished or time.time()),
        "wall_s": round((outcome.finished or time.time()) - outcome.started, 3),
        "jobs": {
            "total": total,
            "done": done,
            "pending": max(0, total - done),
            "done_before": done_before,
            "submitted": outcome.submitted,
            "succeeded": outcome.succeeded,
            "failed": outcome.failed,
            "fetched_again": outcome.fetched,
        },
        "uploads": outcome.uploads,
        "retries": outcome.retries,
        "latency_s": {"p50": _percentile(latencies, 0.50), "p95": _percentile(latencies, 0.95)},
        "failures_by_kind": dict(outcome.failures),
        "failure_examples": outcome.examples,
        "stopped": {"reason": stop.reason, "message": stop.message} if stop.requested else None,
    }


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


async def run_plan(
    plan: Plan,
    run_dir: RunDir,
    settings: RunSettings,
    base_url: str,
    api_key: str,
    stop: Stop,
    on_event: Callable[[Event], None] = lambda event: None,
    policy: RetryPolicy | None = None,
    deadline: float | None = None,
) -> tuple[Outcome, dict[str, Any]]:
    """Run every job of `plan` that `run_dir` does not hold yet; write summary.json."""
    index = run_dir.index
    pending = plan.jobs(settings.order, skip=index.done | index.unfetched.keys())
    # For the progress bar only; the summary counts exactly, after the run, off the start-up path.
    on_event(Event("planned", count=max(0, plan.total - len(index.done))))
    policy = policy or RetryPolicy(max_attempts=settings.max_attempts)
    # The pool, not the connector, limits concurrency: downloads must not queue behind POSTs.
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector) as session, run_dir.records() as writer:
        pool = Pool(
            client=Client(session, base_url, api_key, settings.request_timeout),
            run_dir=run_dir,
            writer=writer,
            pacer=Pacer(settings.concurrency, settings.requests_per_minute),
            policy=policy,
            stop=stop,
            on_event=on_event,
            max_jobs=settings.job_cap,
            cap_reason=_cap_reason(settings),
            deadline=deadline,
            async_mode=settings.async_mode,
            local_images=plan.manifest.local_images,
            poll_timeout=settings.request_timeout,
        )
        outcome = await pool.run(pending, list(index.unfetched.values()))
    done_before = sum(1 for job_id in plan.job_ids() if job_id in index.done) if index.done else 0
    summary = summarize(outcome, plan.total, done_before, stop)
    run_dir.write_summary(summary)
    return outcome, summary


def _cap_reason(settings: RunSettings) -> str:
    if settings.credit_cap_jobs is not None and settings.credit_cap_jobs == settings.job_cap:
        return f"the --max-credits cap of {settings.max_credits:g} at {settings.credits_per_image:g} an image"
    return "the --max-jobs cap"
