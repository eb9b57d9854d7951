"""Trust between the emulator and a real API (runner/endpoint.py): emulator pictures never pass for
paid ones."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import (
    EmulatorProcesses,
    manifest_text,
    records,
    write,
)
from tests.hostile import Hostile
from tests.support import EXAMPLE, flux_batch


def test_the_readme_flow_pays_for_real_images_the_second_time(tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    first = flux_batch(tmp_path, "run", str(EXAMPLE), "--emulator")  # `make run` without a key
    assert first.returncode == 0, first.stderr
    assert "images in output/emulator/example/images" in first.stdout
    assert "these images come from the emulator: placeholders, not paid results" in first.stdout
    real = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--keys", "sk-the-users-own-key")
    # `export ONEMIN_API_KEY=...; make run`, the "real" API being a second emulator process here.
    second = flux_batch(tmp_path, "run", str(EXAMPLE), ONEMIN_API_KEY="sk-the-users-own-key", ONEMIN_BASE_URL=real.url)
    assert second.returncode == 0, second.stderr
    assert "example: 8 of 8 jobs done (8 this run" in second.stdout
    assert real.stats()["generations"] == 8  # nothing was taken for done from the first run
    assert len(records(tmp_path / "output" / "example")) == 8
    assert len(records(tmp_path / "output" / "emulator" / "example")) == 8


def test_a_run_dir_of_emulator_images_is_refused_for_a_real_api_and_back(tmp_path: Path, hostile: Hostile) -> None:
    made = flux_batch(tmp_path, "run", str(EXAMPLE), "--emulator", "--out", "mine")
    assert made.returncode == 0, made.stderr
    before = {p: p.read_bytes() for p in (tmp_path / "mine").rglob("*") if p.is_file() and p.name != ".lock"}
    refused = flux_batch(tmp_path, "run", str(EXAMPLE), "--out", "mine", ONEMIN_API_KEY="sk-real")
    assert refused.returncode == 2
    assert (
        "mine holds images made by the emulator (placeholders, not paid results), so it cannot take images from" in refused.stderr
    )
    assert "https://api.1min.ai" in refused.stderr and "Run into another directory, e.g. --out mine-api" in refused.stderr
    after = {p: p.read_bytes() for p in (tmp_path / "mine").rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before  # refused before anything was written, let alone sent

    real = flux_batch(tmp_path, "run", str(EXAMPLE), "--out", "paid", "--base-url", hostile.url, ONEMIN_API_KEY="sk-real")
    assert real.returncode == 0, real.stderr
    back = flux_batch(tmp_path, "run", str(EXAMPLE), "--out", "paid", "--emulator")
    assert back.returncode == 2
    assert f"paid holds paid images from {hostile.url}; the emulator's placeholder pictures cannot join them" in back.stderr
    status = flux_batch(tmp_path, "status", "paid")
    assert f"images from {hostile.url}" in status.stdout


def test_an_emulator_answering_for_a_real_run_dir_stops_the_run_and_records_nothing(
    tmp_path: Path, hostile: Hostile, emulator_process: EmulatorProcesses
) -> None:
    manifest = write(tmp_path / "m.yaml", manifest_text(6))
    assert flux_batch(tmp_path, "run", str(manifest), "--base-url", hostile.url, "--max-jobs", "2").returncode == 3
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    mixed = flux_batch(tmp_path, "run", str(manifest), "--base-url", served.url, "--no-progress")
    assert mixed.returncode == 2, mixed.stderr
    assert f"{served.url} answers as the emulator, but output/t holds images from {hostile.url}" in mixed.stderr
    assert len(records(tmp_path / "output" / "t")) == 2


def test_moving_between_two_real_endpoints_is_allowed_and_remembered(tmp_path: Path, hostile: Hostile) -> None:
    from tests.hostile import Hostile

    relay = Hostile().start()
    try:
        manifest = write(tmp_path / "m.yaml", manifest_text(4))
        assert flux_batch(tmp_path, "run", str(manifest), "--base-url", hostile.url, "--max-jobs", "2").returncode == 3
        moved = flux_batch(tmp_path, "run", str(manifest), "--base-url", relay.url)
        assert moved.returncode == 0, moved.stderr
        endpoint = json.loads((tmp_path / "output" / "t" / "endpoint.json").read_text())
        assert endpoint == {"emulated": False, "base_urls": [hostile.url, relay.url]}
        assert json.loads((tmp_path / "output" / "t" / "summary.json").read_text())["emulated"] is False
    finally:
        relay.stop()
