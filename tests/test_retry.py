"""Trying again (runner/retry.py): Retry-After of any shape, capped, and cut short by a deadline or
a signal."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import (
    Cli,
    manifest_text,
    run_cli,
    start_run,
    write,
)
from tests.hostile import Hostile


def test_a_retry_after_date_with_a_numeric_zone_is_read_and_honoured(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    asked: set[str] = set()

    async def once_too_many(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        key = json.dumps(body["promptObject"], sort_keys=True)
        if key not in asked:
            asked.add(key)
            headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 -0000"}  # in the past: go again now
            return web.json_response({"errorCode": "RATE_LIMIT", "message": "slow down"}, status=429, headers=headers)
        return await hostile.generate(request)

    hostile.features = once_too_many
    # Three jobs, all in the first volley: a fourth job's first request refused after them would
    # look like a limit far under the pace, and the pace would halve for it.
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(3)), hostile.url, "--concurrency", "3")
    assert result.code == 0, result.err
    assert "3 of 3 jobs done (3 this run, 0 failed, 3 retries)" in result.out
    assert "Traceback" not in result.err


@pytest.mark.parametrize("retry_after", ["999999", "inf", "1e309", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_no_retry_after_outlives_the_deadline(cli: Cli, tmp_path: Path, hostile: Hostile, retry_after: str) -> None:
    async def always_later(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"errorCode": "RATE_LIMIT", "message": "later"}, status=429, headers={"Retry-After": retry_after}
        )

    hostile.features = always_later
    started = time.monotonic()
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(3)), hostile.url, "--deadline", "1s")
    assert time.monotonic() - started < 3
    assert result.code == 3 and "the deadline has passed" in result.err
    log = (tmp_path / "output" / "t" / "run.log").read_text()
    assert "waiting the cap of 120 s" in log and "the server asked to wait" in log


def test_sigterm_ends_a_long_retry_after_at_once(tmp_path: Path, hostile: Hostile) -> None:
    async def always_later(request: web.Request) -> web.StreamResponse:
        return web.json_response({"errorCode": "RATE_LIMIT", "message": "later"}, status=429, headers={"Retry-After": "999999"})

    hostile.features = always_later
    manifest = write(tmp_path / "m.yaml", manifest_text(3))
    run = start_run(manifest, hostile.url)
    log = tmp_path / "output" / "t" / "run.log"
    deadline = time.monotonic() + 15
    while "waiting the cap of 120 s" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.02)  # until the run is in its long wait
    signalled = time.monotonic()
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=10)
    assert run.returncode == 143, err
    assert time.monotonic() - signalled < 3
    assert "To resume: flux-batch run" in err
