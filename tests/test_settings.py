"""Run settings (runner/settings.py): deadlines, prices, numbers in range, and what a manifest from
someone else may not do without --trust-manifest."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from runner.settings import deadline_at
from tests.conftest import (
    Cli,
    EmulatorProcesses,
    manifest_text,
    write,
)
from tests.hostile import Hostile
from tests.support import SECRET


def test_a_manifest_cannot_send_the_key_elsewhere_run_a_command_or_write_outside_output(
    cli: Cli, tmp_path: Path, hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEMIN_API_KEY", SECRET)
    host = hostile.url.removeprefix("http://")
    for block, said in [
        (f"  base_url: {hostile.url}\n", f"run.base_url sends the API key to {host}"),
        ("  on_finish: touch pwned\n", "run.on_finish runs the command 'touch pwned'"),
        ("  out: ../../elsewhere\n", "run.out writes to ../../elsewhere, outside output/"),
    ]:
        manifest = write(tmp_path / "m.yaml", manifest_text(2) + f"run:\n{block}")
        result = cli("run", str(manifest), "--no-progress")
        assert result.code == 2, result.err
        assert said in result.err and "add --trust-manifest" in result.err
        plan = cli("plan", str(manifest))
        assert plan.code == 0 and said in plan.err and "needs --trust-manifest" in plan.out
    assert hostile.seen == [] and not (tmp_path / "pwned").exists() and not (tmp_path.parent.parent / "elsewhere").exists()

    manifest = write(tmp_path / "m.yaml", manifest_text(2) + f"run:\n  base_url: {hostile.url}\n  on_finish: touch trusted\n")
    plan = cli("plan", str(manifest), "--trust-manifest")
    assert re.search(rf"^endpoint +{hostile.url}$", plan.out, re.M) and re.search(r"^on finish +touch trusted$", plan.out, re.M)
    trusted = cli("run", str(manifest), "--no-progress", "--trust-manifest")
    assert trusted.code == 0, trusted.err
    assert hostile.requests_to("/api/features") and (tmp_path / "trusted").exists()


@pytest.mark.parametrize(
    "flags",
    [
        ["--request-timeout", "inf"],
        ["--deadline", "999999999999d"],
        ["--credits-per-image", "1e-320", "--max-credits", "1e308"],
        ["--requests-per-minute", "nan"],
    ],
    ids=["timeout-inf", "deadline-far", "credits-tiny", "rate-nan"],
)
def test_absurd_numbers_are_usage_errors_not_tracebacks(cli: Cli, tmp_path: Path, flags: list[str]) -> None:
    result = cli("run", str(write(tmp_path / "m.yaml", manifest_text(2))), "--emulator", *flags)
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert f"{flags[-2]}" in result.err  # the message names the flag at fault
    assert not (tmp_path / "output").exists()


def test_deadlines_are_durations_or_the_next_clock_time() -> None:
    now = datetime(2026, 11, 23, 22, 15).astimezone()
    assert deadline_at("8h", now) == now + timedelta(hours=8)
    assert deadline_at("1h30m", now) == now + timedelta(minutes=90)
    assert deadline_at("45s", now) == now + timedelta(seconds=45)
    assert deadline_at("06:30", now) == (now + timedelta(days=1)).replace(hour=6, minute=30)
    assert deadline_at("23:00", now) == now.replace(hour=23, minute=0)


def test_max_credits_needs_the_price_of_an_image(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    manifest = write(tmp_path / "m.yaml", manifest_text(3))
    result = cli("run", str(manifest), "--base-url", "http://127.0.0.1:9", "--max-credits", "5")
    assert result.code == 2
    assert "--max-credits needs the price of an image" in result.err
