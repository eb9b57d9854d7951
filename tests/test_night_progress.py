"""A night's progress lines (runner/night_progress.py), with a fake clock."""

from __future__ import annotations

import io

from runner.events import Event
from runner.night_progress import NightProgress


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_at_most_every_ten_seconds_counts_each_manifest_from_where_it_was() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = NightProgress(stream=stream, clock=clock)
    portraits, ab = progress.manifest("portraits"), progress.manifest("ab")
    portraits(Event("planned", count=40, done=60, total=100))
    ab(Event("planned", count=4, total=4))
    for second in range(1, 21):
        clock.now = float(second)
        portraits(Event("done"))
        if second <= 4:
            ab(Event("done"))
    ab(Event("retry"))
    progress.finished("ab")
    clock.now = 30.0
    portraits(Event("failed"))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # at 10, 20 and 30 s, though 25 jobs ended
    assert lines[-1].endswith("night: 24 done, 1 failed, 1 retry, 50.0/min; portraits 80/100, ab 4/4 (finished)")


def test_many_manifests_are_counted_not_named_and_nothing_is_said_when_disabled() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = NightProgress(stream=stream, clock=clock)
    consumers = [progress.manifest(f"m{n}") for n in range(9)]
    clock.now = 11.0
    consumers[0](Event("done"))
    assert stream.getvalue().rstrip().endswith("m5 0/0, 3 more manifests")
    quiet = NightProgress(enabled=False, stream=(silent := io.StringIO()), clock=clock)
    quiet.manifest("a")(Event("done"))
    quiet.paced(Event("pace", count=60, message="answered 429 (too many requests)"))
    assert silent.getvalue() == ""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_night_is_one_bar_that_grows_as_manifests_join() -> None:
    stream = Terminal()
    progress = NightProgress(stream=stream)
    portraits, ab = progress.manifest("portraits"), progress.manifest("ab")
    portraits(Event("planned", count=40, done=60, total=100))
    portraits(Event("done"))
    ab(Event("planned", count=4, total=4))
    progress.paced(Event("pace", count=588, message="answered 429 (too many requests)"))
    for _ in range(4):
        ab(Event("done"))
    progress.finished("ab")
    progress.close()
    drawn = stream.getvalue()
    assert "60/100" in drawn and "65/104" in drawn and "night" in drawn and "\r" in drawn  # from what was done, grown
    assert "pace: 588 requests a minute (answered 429 (too many requests))" in drawn
    assert "pace=588/min" in drawn and "manifests=1/2 finished" in drawn
    assert " done, " not in drawn  # no lines for a cron log on a terminal
