"""What a run tells as it goes (runner/progress.py): a bar, lines at a steady pace, run.log."""

from __future__ import annotations

import io
from pathlib import Path

from runner.events import Event
from runner.progress import Progress
from tests.conftest import (
    Cli,
    EmulatorProcesses,
    manifest_text,
    run_cli,
    write,
)


def test_download_retries_are_written_to_run_log(cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--download-fail-first", "1")
    result = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(2)), served.url)
    assert result.code == 0, result.err
    log = (tmp_path / "output" / "t" / "run.log").read_text()
    retries = [line for line in log.splitlines() if " (download), in " in line]
    assert len(retries) == 2 and all(line.endswith(": download: HTTP 503 from the image host") for line in retries)


def test_progress_without_a_terminal_stays_small() -> None:
    fake = {"now": 0.0}
    stream = io.StringIO()
    progress = Progress(stream=stream, clock=lambda: fake["now"])
    progress(Event("planned", count=10_000, total=10_000))
    for n in range(10_000):
        fake["now"] = n * 0.01  # 10,000 jobs over 100 seconds
        progress(Event("done"))
    lines = stream.getvalue().splitlines()
    assert 10 <= len(lines) <= 11  # one at the start, then one every 10 s
    assert "\r" not in stream.getvalue()
    assert lines[0].split("] ")[1] == "starting: 10,000 jobs to run"
    assert lines[1].split("] ")[1].startswith("1,001/10,000 done, 0 failed, 0 retries")


def test_a_resumed_run_says_what_it_resumes_and_counts_from_there() -> None:
    fake = {"now": 0.0}
    stream = io.StringIO()
    progress = Progress(stream=stream, clock=lambda: fake["now"])
    progress(Event("planned", count=56, done=44, total=100))
    for n in range(56):
        fake["now"] = n * 0.5
        progress(Event("done"))
    lines = [line.split("] ")[1] for line in stream.getvalue().splitlines()]
    assert lines[0] == "resuming: 44 of 100 done, 56 to run"
    assert lines[1].startswith("65/100 done")  # 21 finished in the first 10 s, on top of 44
    assert not any(line.startswith("starting") for line in lines)


def test_on_a_terminal_progress_is_a_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress(stream=stream)
    progress(Event("planned", count=3, done=2, total=5))
    for _ in range(3):
        progress(Event("done"))
    progress.close()
    drawn = stream.getvalue()
    assert "2/5" in drawn and "5/5" in drawn and "img" in drawn and "\r" in drawn  # the bar starts at what was done


def test_a_slower_pace_is_said_on_the_bar_in_the_lines_and_in_run_log(tmp_path: Path) -> None:
    from runner.progress import RunLog

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    slowed = Event("pace", count=588, message="answered 429 (too many requests)")
    bar = Terminal()
    on_a_terminal = Progress(stream=bar)
    on_a_terminal(Event("planned", count=3, total=3))
    on_a_terminal(slowed)
    on_a_terminal(Event("done"))
    on_a_terminal.close()
    assert "pace: 588 requests a minute (answered 429 (too many requests))" in bar.getvalue()
    assert "pace=588/min" in bar.getvalue()

    fake = {"now": 0.0}
    lines = io.StringIO()
    without = Progress(stream=lines, clock=lambda: fake["now"])
    without(Event("planned", count=3, total=3))
    without(slowed)
    fake["now"] = 11.0
    without(Event("done"))
    said = lines.getvalue().splitlines()
    assert said[1].endswith("pace: 588 requests a minute (answered 429 (too many requests))")
    assert said[2].endswith(", paced at 588 requests a minute")

    log = RunLog(tmp_path / "run.log")
    log(slowed)
    log.close()
    assert (tmp_path / "run.log").read_text().rstrip().endswith("pace: 588 requests a minute (answered 429 (too many requests))")
