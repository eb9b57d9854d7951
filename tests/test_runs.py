"""`flux-batch runs` (runner/runs.py): every run dir under a root, as the morning reads them."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.conftest import Cli, EmulatorProcesses, manifest_text, run_cli, start_run, write


def test_runs_lists_finished_live_and_damaged_run_dirs(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    finished = write(tmp_path / "done.yaml", manifest_text(3, name="done", credits_per_image=0.25))
    assert run_cli(cli, finished, served.url).code == 0
    assert cli("run", str(finished), "--emulator", "--no-progress").code == 0  # output/emulator/done
    damaged = write(tmp_path / "output" / "broken" / "manifest.yaml", "version: 1\nname: [unclosed\n")
    (damaged.parent / "records.jsonl").write_text("")
    write(tmp_path / "output" / "notes" / "todo.txt", "not a run dir")

    slow = emulator_process("--latency", "2,2", "--max-side", "32")
    live_manifest = write(tmp_path / "live.yaml", manifest_text(4, name="live", concurrency=1))
    live_run = start_run(live_manifest, slow.url)
    try:
        _wait_for_lock(tmp_path / "output" / "live")
        listing = cli("runs")
        rows = {Path(row["run_dir"]).name: row for row in json.loads(cli("runs", "--json").out)}
    finally:
        live_run.send_signal(signal.SIGINT)
        live_run.communicate(timeout=30)

    assert listing.code == 0
    assert set(rows) == {"done", "live", "broken"} and len(json.loads(cli("runs", "--json").out)) == 4
    assert list(rows)[0] == "live"  # the most recently active first
    done = next(r for r in json.loads(cli("runs", "--json").out) if r["run_dir"] == "output/done")
    assert (done["name"], done["endpoint"], done["done"], done["total"], done["pending"]) == ("done", "emulator", 3, 3, 0)
    assert (done["credits_spent"], done["credits_last"], done["live"], done["stopped"]) == (0.75, 0.75, None, None)
    assert done["last_started"] and done["last_finished"]
    assert rows["live"]["live"].startswith(f"flux-batch pid {live_run.pid}")
    assert rows["live"]["credits_spent"] is None and rows["live"]["pending"] == 4
    assert rows["broken"]["damaged"] and "manifest.yaml" in rows["broken"]["damaged"]

    text = listing.out
    # Until its first answer, the live run's endpoint is the address it was given.
    assert rows["live"]["endpoint"] in (slow.url, "emulator")
    assert f"output/live  (live, {rows['live']['endpoint']})  LIVE: flux-batch pid {live_run.pid}" in text
    assert "output/done  (done, emulator)\n  3/3 done, 0.75 credits (last run 0.75)\n  last run " in text
    assert "output/emulator/done  (done, emulator)\n  3/3 done, 0.75 credits (last run 0.75)\n" in text
    assert "output/broken  DAMAGED: " in text
    assert text.index("output/live") < text.index("output/broken")


def test_runs_of_an_empty_or_missing_root(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "output").mkdir()
    assert "no run directories under output: `flux-batch run MANIFEST` makes one" in cli("runs").out
    missing = cli("runs", "nowhere")
    assert missing.code == 2 and "nowhere is not a directory" in missing.err
    assert json.loads(cli("runs", "output", "--json").out) == []


def _wait_for_lock(run_dir: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run_dir / ".lock").exists() and os.path.getsize(run_dir / ".lock") > 0:
            return
        time.sleep(0.02)
    raise AssertionError(f"no run took {run_dir}'s lock in {timeout} s")
