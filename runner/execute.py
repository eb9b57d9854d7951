"""One invocation of `run`, from a plan and an open run dir to summary.json.

what the run dir holds (records, images on disk) --> survey of the plan: done, held back, to run
--> recover images without a line, refetch what earlier runs paid for
--> Pool (pool.py): Uploads, Retrying, Fetcher, Recorder around one Client and one writer
--> Summary (summary.py), written unless there was nothing to do
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import aiohttp

from runner.answers import Generation, image_extension
from runner.client import Client
from runner.errors import ApiError, StopReason
from runner.events import Event, Outcome
from runner.fetch import Fetcher, Refetch
from runner.pace import learned_pace, remember_pace
from runner.pacing import Pacer, RetryPolicy
from runner.plan import Plan, Survey
from runner.pool import Pool, Quota
from runner.record_file import records_of
from runner.recorder import Recorder, disk_trouble
from runner.records import Record, utc_timestamp
from runner.retry import Retrying
from runner.settings import RunSettings
from runner.stop import Stop
from runner.store import RunDir, image_files
from runner.summary import JobCounts, Stopped, Summary, read_summary
from runner.thumbs import Thumbnails
from runner.uploads import Uploads


@dataclass(frozen=True, slots=True)
class Shared:
    """What the manifests of one night share: one pacer (concurrency and rate), one quota of
    jobs and credits, one thumbnail process, and this manifest's priority for a place."""

    pacer: Pacer
    quota: Quota
    thumbnails: Thumbnails
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Result:
    """What a run did: its outcome, summary.json's content, and whether there was anything to do."""

    outcome: Outcome
    summary: Summary
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
    shared: Shared | None = None,
) -> Result:
    """Run every job of `plan` that `run_dir` does not hold yet; write summary.json. `shared`:
    the pacer and caps of a night, when other manifests run beside this one."""
    index = run_dir.index
    on_disk = run_dir.images
    held_back = index.unfetched.keys() | (set() if settings.retry_failed else index.refused)
    orphans = on_disk.keys() - index.done
    survey = plan.survey(index.done, held_back, orphans) if index.lines or orphans else None
    refetch = _refetches(run_dir, index.unfetched.values(), on_disk)
    done_before = survey.done if survey else 0
    to_run = (survey.to_run if survey else plan.total) + len(index.unfetched)
    refused_left = (survey.held_back - len(index.unfetched)) if survey else 0
    recovering = len(survey.recovered) if survey else 0  # done once recovered, before anything is sent
    on_event(Event("planned", count=to_run, done=done_before + recovering, total=plan.total))
    outcome = Outcome()
    if to_run == 0 and not refetch and not recovering:
        outcome.finished = outcome.started
        kept = read_summary(run_dir.path) or summarize(outcome, plan.total, done_before, stop, run_dir, refused_left)
        counts = {"total": plan.total, "done": done_before, "pending": plan.total - done_before, "held_back": refused_left}
        return Result(outcome, kept.with_counts(**counts), idle=True)
    policy = policy or RetryPolicy(max_attempts=settings.max_attempts)
    told = settings.requests_per_minute
    learned = None if told or shared else learned_pace(run_dir.path, base_url)
    pacer = (
        shared.pacer
        if shared
        else Pacer(
            settings.concurrency,
            told,
            sleep=stop.sleep,
            stopped=lambda: stop.requested,
            max_pause=policy.max_delay,
            learned_per_minute=learned,
            on_change=lambda change: on_event(Event("pace", count=round((change.rate or 0) * 60), message=change.why)),
        )
    )
    if learned:
        on_event(Event("note", message=f"starting at the pace learned before: {learned:g} requests a minute"))
    retrying = Retrying(policy, stop, outcome, on_event)
    # The pool, not the connector, limits concurrency: downloads must not queue behind POSTs.
    # No cookies: nothing a server sets is sent anywhere.
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    # A run that ends in a report makes its thumbnails as the pictures land; a night's manifests
    # share one process, which the night closes.
    thumbnails = (shared.thumbnails if shared else Thumbnails()) if settings.report else None
    own_thumbnails = None if shared else thumbnails
    async with (
        aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session,
        run_dir.records() as writer,
        own_thumbnails or contextlib.nullcontext(),
    ):
        client = Client(session, base_url, api_key, settings.request_timeout)
        client.on_policy = pacer.advised
        recorder = Recorder(
            run_dir.path, writer, stop, outcome, on_event, price=settings.credits_per_image, thumbnails=thumbnails
        )
        pool = Pool(
            client=client,
            run_dir=run_dir,
            pacer=pacer,
            stop=stop,
            retrying=retrying,
            uploads=Uploads(client, run_dir, pacer, retrying, stop, outcome, plan.manifest.local_images),
            fetcher=Fetcher(client, run_dir, retrying, recorder, stop, outcome, on_event),
            recorder=recorder,
            outcome=outcome,
            on_event=on_event,
            max_jobs=settings.job_cap,
            cap=_cap(settings),
            cap_message=_cap_message(settings),
            async_mode=settings.async_mode,
            poll_timeout=settings.request_timeout,
            quota=shared.quota if shared else None,
            price=settings.credits_per_image,
            priority=shared.priority if shared else 0,
        )
        if survey and survey.recovered:
            await _recover_images(recorder, run_dir, plan, survey, on_disk, on_event)
        await pool.run(plan.jobs(settings.order, skip=held_back, survey=survey), refetch)
    outcome.finished = time.time()
    pace = pacer.pace
    if pace.changes and not (told or pace.told) and pace.learned_per_minute:
        remember_pace(run_dir.path, base_url, pace.learned_per_minute)
    outcome.pace = pace.report() if told or learned or pace.changes else None
    summary = summarize(outcome, plan.total, done_before, stop, run_dir, refused_left)
    try:
        run_dir.write_summary(summary)
    except OSError as exc:
        reason, message = disk_trouble(exc, run_dir.path)
        stop.request(reason, message)
        summary = summary.stopped_by(str(stop.reason), stop.message)
    return Result(outcome, summary, idle=False)


def summarize(outcome: Outcome, total: int, done_before: int, stop: Stop, run_dir: RunDir, held_back: int = 0) -> Summary:
    """summary.json: what this invocation did."""
    latencies = sorted(outcome.latencies)
    done = done_before + outcome.succeeded + outcome.recovered
    provenance = run_dir.provenance
    finished = outcome.finished or time.time()
    return Summary(
        started_at=utc_timestamp(outcome.started),
        finished_at=utc_timestamp(finished),
        wall_s=round(finished - outcome.started, 3),
        endpoint=provenance.describe() if provenance is not None else None,
        emulated=provenance.emulated if provenance is not None else None,
        jobs=JobCounts(
            total=total,
            done=done,
            pending=max(0, total - done),
            done_before=done_before,
            submitted=outcome.submitted,
            succeeded=outcome.succeeded,
            failed=outcome.failed,
            fetched_again=outcome.fetched,
            recovered=outcome.recovered,
            held_back=held_back,
        ),
        images_restored=outcome.restored,
        uploads=outcome.uploads,
        credits_spent=round(outcome.credits, 6) if outcome.priced else None,
        retries=outcome.retries["generation"],
        download_retries=outcome.retries["download"],
        upload_retries=outcome.retries["upload"],
        poll_retries=outcome.retries["poll"],
        latency_p50=_percentile(latencies, 0.50),
        latency_p95=_percentile(latencies, 0.95),
        failures_by_kind=dict(outcome.failures),
        failure_examples=dict(outcome.examples),
        pace=outcome.pace,
        stopped=Stopped(str(stop.reason), stop.message) if stop.reason is not None else None,
    )


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def _refetches(run_dir: RunDir, unfetched: Iterable[Record], on_disk: Mapping[str, str]) -> list[Refetch]:
    """Paid images to fetch again: those an earlier run could not fetch, and those of done jobs
    whose files are gone from disk."""
    items = [Refetch(line.job, Generation.from_ai_record(line.ai_record or {}), line.attempts or 1) for line in unfetched]
    missing = run_dir.index.done - on_disk.keys()
    for line in records_of(run_dir.path, missing).values():
        if line.ai_record and line.files:
            items.append(Refetch(line.job, Generation.from_ai_record(line.ai_record), line.attempts or 1, line.files))
    return items


async def _recover_images(
    recorder: Recorder, run_dir: RunDir, plan: Plan, survey: Survey, on_disk: Mapping[str, str], on_event: Callable[[Event], None]
) -> None:
    """Jobs whose images are on disk but whose line is not (lost to a crash or a damaged
    records.jsonl): the image was paid for and written whole, so the job is done. It gets a
    line marked `recovered`, and is not sent again."""
    recovered = 0
    for position in survey.recovered:
        job = plan.job_at_position(position)
        names = image_files(run_dir.path, on_disk[job.job_id], job.job_id)
        try:
            for name in names:
                image_extension((run_dir.path / name).read_bytes())
        except (OSError, ApiError):
            for name in names:
                (run_dir.path / name).unlink(missing_ok=True)  # not a whole image: the job runs again
            continue
        recovered += await recorder.recover(job, names)
    if recovered:
        on_event(Event("note", message=f"{recovered} job(s) whose images were on disk without a record were recorded as done"))


def _cap(settings: RunSettings) -> StopReason:
    if settings.credit_cap_jobs is not None and settings.credit_cap_jobs == settings.job_cap:
        return StopReason.MAX_CREDITS
    return StopReason.MAX_JOBS


def _cap_message(settings: RunSettings) -> str:
    if _cap(settings) is StopReason.MAX_CREDITS:
        return f"the --max-credits cap of {settings.max_credits:g} at {settings.credits_per_image:g} an image"
    return "the --max-jobs cap"
