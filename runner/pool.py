"""The worker pool: every pending job through the API, exactly `concurrency` at a time.

    jobs --> workers (2 x concurrency) --> Pacer.slot (at most `concurrency` POSTs in flight)
                                        --> Client.generate, tried again per Retrying
                                        --> Fetcher.save: the images, then the success line
                                        --> Event for the CLI

There are twice as many workers as generation slots so that downloads and disk writes overlap
the next requests: the API stays busy with exactly `concurrency` generations. A job counts as
done only after its line is fsynced (Recorder). Every wait goes through `Stop.sleep`: none
outlives a signal or the deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from runner.answers import Generation
from runner.client import Client
from runner.errors import ApiError, StillRunning, StopReason
from runner.events import Event, Outcome
from runner.fetch import Fetcher, Refetch
from runner.pacing import Pacer
from runner.plan import Job
from runner.recorder import Recorder
from runner.retry import Retrying
from runner.stop import Stop
from runner.store import RunDir
from runner.uploads import Uploads


class Quota:
    """Caps several pools share: new jobs, and credits at each pool's price. The first pool to
    find it spent stops them all, as one pool's --max-jobs stops its run."""

    def __init__(self, max_jobs: int | None = None, max_credits: float | None = None) -> None:
        self.max_jobs, self.max_credits = max_jobs, max_credits
        self.jobs, self.credits = 0, 0.0

    def spent(self, price: float | None) -> bool:
        """No new job at `price` fits any more."""
        if self.max_jobs is not None and self.jobs >= self.max_jobs:
            return True
        return self.max_credits is not None and self.credits + (price or 0.0) > self.max_credits + 1e-9

    def take(self, price: float | None) -> bool:
        """Count one job sent at `price`, if it fits; taken when its first request goes, so a job
        still waiting for a place when the cap is reached stays pending, uncounted."""
        if self.spent(price):
            return False
        self.jobs += 1
        self.credits += price or 0.0
        return True

    def reached(self, stop: Stop) -> None:
        if self.max_jobs is not None and self.jobs >= self.max_jobs:
            stop.request(StopReason.MAX_JOBS, f"{self.max_jobs} new jobs submitted, the --max-jobs cap of the night")
        else:
            stop.request(StopReason.MAX_CREDITS, f"{self.credits:g} credits committed, the --max-credits cap of the night")


class _NotSent(Exception):
    """The run stopped while the job waited for its turn: it stays pending for the next run."""


class Pool:
    def __init__(
        self,
        *,
        client: Client,
        run_dir: RunDir,
        pacer: Pacer,
        stop: Stop,
        retrying: Retrying,
        uploads: Uploads,
        fetcher: Fetcher,
        recorder: Recorder,
        outcome: Outcome,
        on_event: Callable[[Event], None],
        max_jobs: int | None = None,
        cap: StopReason = StopReason.MAX_JOBS,
        cap_message: str = "the --max-jobs cap",
        async_mode: bool = False,
        poll_timeout: float = 300.0,
        quota: Quota | None = None,
        price: float | None = None,
        priority: int = 0,
    ) -> None:
        self._client = client
        self._run_dir = run_dir
        self._pacer = pacer
        self._stop = stop
        self._retrying = retrying
        self._uploads = uploads
        self._fetcher = fetcher
        self._recorder = recorder
        self._outcome = outcome
        self._on_event = on_event
        self._max_jobs = max_jobs  # new jobs this invocation may take
        self._cap, self._cap_message = cap, cap_message  # what max_jobs stands for
        self._async_mode = async_mode  # ask for asynchronous generations and poll them
        self._poll_timeout = poll_timeout  # how long one asynchronous generation is polled
        self._taken = 0
        self._capped = False  # max_jobs reached with jobs left over
        self._quota, self._price = quota, price  # caps shared with the other manifests of a night
        self._priority = priority  # before other manifests' workers, for a place in the pacer

    async def run(self, jobs: Iterator[Job], refetch: Iterable[Refetch] = ()) -> None:
        """Fetch what earlier runs paid for, then run `jobs`, until done or stopped; then try
        once more to fetch the images this invocation paid for and could not fetch."""
        # One iterator shared by every worker: safe, as workers only switch at an await.
        work: Iterator[Job | Refetch] = itertools.chain(refetch, jobs)
        async with asyncio.TaskGroup() as group:
            for n in range(2 * self._pacer.concurrency):
                group.create_task(self._worker(work), name=f"worker-{n}")
        await self._fetcher.last_pass()
        if self._capped:
            self._stop.request(self._cap, f"{self._max_jobs} new jobs submitted, {self._cap_message}")

    async def _worker(self, work: Iterator[Job | Refetch]) -> None:
        try:
            while not self._stop.requested:
                item = next(work, None)
                if item is None:
                    return
                if isinstance(item, Refetch):
                    await self._refetch(item)
                    continue
                if self._max_jobs is not None and self._taken >= self._max_jobs:
                    # Jobs already taken still go out: the cap stops taking, it abandons nothing.
                    self._capped = True
                    return
                if self._quota is not None and self._quota.spent(self._price):
                    return
                self._taken += 1
                await self._run_job(item)
        finally:
            # The first worker to stop means nothing new goes out: the jobs still in flight are
            # the last, and batching their commits would only keep the run from ending.
            self._recorder.hurry()

    def _stop_run(self, error: ApiError, job: Job | None = None, attempt: int = 0) -> None:
        """A bad key, an empty account, a redirect: stop dispatching, and say so once."""
        assert error.stop is not None
        if self._stop.request(error.stop, error.message):
            self._on_event(Event("stop", job=job, error=error, attempt=attempt, message=error.message))

    async def _run_job(self, job: Job) -> None:
        started = time.time()
        sent: list[int] = []  # the attempts made, for the line
        try:
            request = await self._uploads.as_sent(job)
            try:
                generation = await self._retrying(lambda n: self._send(job, request, sent), "generation", job=job)
            except ApiError as error:
                if error.stops_run or not self._uploads.unusable(job, request, error):
                    raise
                request = await self._uploads.as_sent(job)  # a fresh upload, then the job again, once
                generation = await self._retrying(lambda n: self._send(job, request, sent), "generation", job=job)
        except _NotSent:
            return
        except StillRunning as running:
            # Paid for and still running: never resubmitted; the next run polls it again.
            await self._recorder.fail(job, running.error, len(sent), started, running.ai_record)
            return
        except ApiError as error:
            if error.stops_run:
                self._stop_run(error, job, len(sent))
            elif not (error.retryable and self._stop.requested):
                await self._recorder.fail(job, error, len(sent), started)
            # else: it would have been tried again, but the run stopped: it stays pending
            return
        if generation is None:
            return  # an answer of the other kind of endpoint: the run stops
        self._pacer.succeeded()
        as_sent = job if request is job.request else Job(job.job_id, job.prompt_id, job.axes, request)
        await self._fetcher.save(as_sent, generation, len(sent), started)

    async def _send(self, job: Job, request: dict[str, Any], sent: list[int]) -> Generation | None:
        """One attempt at the job's generation, polled to its end in async mode."""
        async with self._pacer.slot(self._priority):
            if self._stop.requested:
                raise _NotSent
            if not sent and self._quota is not None and not self._quota.take(self._price):
                self._quota.reached(self._stop)  # the night's cap: this one and every other stays pending
                raise _NotSent
            sent.append(1)
            if len(sent) == 1:
                self._outcome.submitted += 1
            generation = await self._client.generate(request, asynchronous=self._async_mode)
            if not self._accept(generation, job):
                return None
            if not generation.finished:
                # Polling holds the slot: a running generation is one in flight.
                generation = await self._poll(generation)
            return generation

    def _accept(self, generation: Generation, job: Job) -> bool:
        """May this run dir take this answer's images? Emulator pictures never join paid ones.
        A paid image is never thrown away: a real answer is kept even where it does not belong,
        and the run stops after it."""
        if self._run_dir.answered_by(generation.emulated):
            return True
        provenance = self._run_dir.provenance
        held = provenance.describe() if provenance is not None else "other images"
        said = "the emulator" if generation.emulated else "a real API (paid images)"
        message = f"{self._client.base_url} answers as {said}, but {self._run_dir.path} holds images from {held}"
        self._stop.request(StopReason.ENDPOINT, message)
        self._on_event(Event("stop", job=job, message=message))
        return not generation.emulated

    async def _poll(self, generation: Generation) -> Generation:
        """Poll a running generation until it finishes. It is paid for: whatever ends the polling
        (the timeout, a stop, a poll that keeps failing), its aiRecord is recorded (StillRunning)
        and the next run polls it again."""
        give_up = time.monotonic() + self._poll_timeout
        interval = 0.5
        while not generation.finished:
            if time.monotonic() >= give_up or self._stop.leaving:
                waited = f"after {self._poll_timeout:g} s" if not self._stop.leaving else "when the run stopped"
                raise self._still_running(generation, waited)
            await self._stop.sleep(interval, any_stop=False)
            interval = min(interval * 1.5, 5.0)
            try:
                generation = await self._retrying(partial(self._poll_once, generation.uuid), "poll", deep=True)
            except ApiError as error:
                if error.stops_run:
                    self._stop_run(error)
                elif not error.retryable:
                    raise
                raise self._still_running(generation, f"when polling it failed ({error.message})") from error
        return generation

    async def _poll_once(self, uuid: str, attempt: int) -> Generation:
        return await self._client.poll(uuid)

    def _still_running(self, generation: Generation, when: str) -> StillRunning:
        message = (
            f"generation {generation.uuid} was still running {when}; the next run polls it again instead of paying for it twice"
        )
        return StillRunning(ApiError("timeout", message), generation.ai_record)

    async def _refetch(self, item: Refetch) -> None:
        """An earlier run's paid image: poll it if it was still running, then fetch it."""
        job, generation, started = item.job, item.generation, time.time()
        if not generation.finished:
            try:
                async with self._pacer.slot(self._priority):
                    generation = await self._poll(generation)
            except StillRunning as running:
                await self._recorder.fail(job, running.error, item.attempts, started, running.ai_record)
                return
            except ApiError as error:
                await self._recorder.fail(job, error, item.attempts, started, generation.ai_record)
                return
        if item.names:
            await self._fetcher.restore(item, generation)
        elif await self._fetcher.save(job, generation, item.attempts, started):
            self._outcome.fetched += 1
