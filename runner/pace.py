"""How many requests a second the whole pool may send: told, advised by the server, or learned.

A server that limits requests answers 429 past its limit. Told a rate, the pool spends it
evenly, one request every 1/rate seconds and never a burst, so a token bucket of any size lets
every request through. Told nothing, the pool goes as fast as its concurrency allows until the
first 429, then learns the limit from what gets through:

- while the server holds the pool back, what it lets through in a window *is* its rate, so on a
  429 the pace becomes a little under what went through since the last change;
- until that has happened once, a window spent at full pace without a 429 raises the pace by a
  half: the first guess (what went through before the first 429, spread over the pause the
  server asked for) is low, and the search for the limit should take seconds, not minutes;
- after it, such a window raises the pace by 2%, the next by 4%, and so on up to a half, so a
  limit that was raised (or a learned pace that was too careful) is found again within
  minutes, at the cost of a rare 429;
- a server that states its policy (`RateLimit-Policy: 600;w=60`, or the newer
  `"name";q=600;w=60`) is taken at its word.

Times come from the caller, so tests drive it with a fake clock.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runner.diskwriter import write_whole

PACE_FILE = "pace.json"  # in the run dir: the pace learned per base URL, for the next run

UNDER = 0.97  # of a measured limit: the margin that keeps 429s rare
PROBE = 0.02  # raise per window spent at full pace without a 429, doubled each such window
MOST_PROBE = 0.5
HOLD = 5  # windows after a 429 before the pace is raised again
SEARCH = 1.5  # the same, while no 429 has yet told the pace what the limit is
SLOWEST = 1 / 60  # requests a second: one a minute, whatever the server says
LATE = 0.25  # seconds of a late start carried over, so a pace is not lost to timer slop


@dataclass(frozen=True, slots=True)
class Change:
    """The pace changed: `rate` requests a second (None: no limit), and why."""

    at: str  # UTC, ISO 8601
    rate: float | None
    why: str


class Pace:
    def __init__(
        self,
        told: float | None = None,
        learned: float | None = None,
        on_change: Callable[[Change], None] = lambda change: None,
    ) -> None:
        self.told = told  # requests a second
        self.rate = told or learned  # the pace now; None: only concurrency limits the pool
        self._searching = False  # raising a first guess quickly, until the next 429
        self._probe = PROBE
        self._hold = 0  # windows to go without a raise
        self.throttled = 0  # answers 429
        self.sent = 0
        self.changes: list[Change] = []
        self._on_change = on_change
        self._next = float("-inf")  # when the next request may go
        self._first_sent: float | None = None
        # What the answers to the requests sent since the pace last changed say:
        self._changed_at = float("-inf")
        self._resumed_at = 0.0  # sending resumed (after a pause) at
        self._sent_since = 0
        self._throttled_since = 0  # of those, answered 429
        # A window at the pace, for raising it:
        self._window_start = 0.0
        self._window_throttled = 0
        self._window_held = False  # the pace made a request wait in this window

    def start_at(self, learned: float) -> bool:
        """Start at `learned` requests a second, if nothing was told or found yet."""
        if self.rate is not None or self.changes:
            return False
        self.rate = learned
        return True

    @property
    def requests_per_minute(self) -> float | None:
        return None if self.rate is None else self.rate * 60

    def wait(self, now: float) -> float:
        """0 and the request counted as sent, or the seconds until one may go."""
        if self.rate is not None:
            if now - self._window_start >= self._window():
                self._close_window(now)
            if now < self._next:
                self._window_held = True
                return self._next - now
            interval = 1 / self.rate
            # On schedule, or late by a timer's slop: the schedule holds, so no time is lost to
            # late wake-ups. Later than that, the pool was idle: the schedule starts again.
            self._next = (self._next if now - self._next <= min(interval / 2, LATE) else now) + interval
        if self._first_sent is None:
            self._first_sent = self._window_start = self._resumed_at = now
        self.sent += 1
        self._sent_since += 1
        return 0.0

    def answered(self, sent_at: float, now: float, throttled: bool, retry_after: float | None = None) -> float:
        """The answer to a request sent at `sent_at`. Returns how long the whole pool should
        pause: only the first 429 of a run that knows no limit asks for a pause."""
        if throttled:
            self.throttled += 1
            self._window_throttled += 1
        if sent_at < self._changed_at:
            return 0.0  # sent before the pace last changed: it says nothing of the pace now
        if not throttled:
            return 0.0
        self._throttled_since += 1
        if self.rate is None:
            # The first limit found: what went through since the start, spread over the pause
            # the server asks for, is the first guess, and a quick search raises it from there.
            pause = retry_after if retry_after is not None and 0 < retry_after < 120 else 1.0
            went_through = self.sent - self.throttled
            started = self._first_sent if self._first_sent is not None else now
            self._set(now, max(SLOWEST, went_through / (now - started + pause)), "answered 429 (too many requests)")
            self._next = self._resumed_at = now + pause
            self._searching, self._hold = True, 0  # a first guess: raise it from the next window on
            return pause
        elapsed = now - self._resumed_at
        if elapsed < max(0.2, 5 / self.rate):
            return 0.0  # too few requests yet to measure what gets through
        # Held back by the server since the last change: what got through is its rate. A 429
        # comes back at once, a generation takes its time: the requests still out are counted
        # as through, or the measure would fall short by a latency's worth of them.
        through = (self._sent_since - self._throttled_since) / elapsed
        self._searching = False
        floor = self.rate / (8 if self._sent_since >= 5 else 2)  # a few requests say little
        rate = max(SLOWEST, floor, min(self.rate, through) * UNDER)
        self._set(now, rate, "answered 429 (too many requests)")
        return 0.0

    def advised(self, now: float, requests: float, window: float) -> None:
        """The server stated its limit: `requests` per `window` seconds."""
        rate = requests / window
        if rate <= 0 or (self.rate is not None and abs(self.rate - rate) < 1e-9):
            return
        if self.told is not None and self.told <= rate:
            return  # what the user said is within the server's limit: it stands
        self._set(now, max(SLOWEST, rate), f"the server states a limit of {requests:g} per {window:g} s")

    def report(self) -> dict[str, object]:
        return {
            "requests_per_minute": round(self.rate * 60, 1) if self.rate is not None else None,
            "told": round(self.told * 60, 1) if self.told is not None else None,
            "sent": self.sent,
            "throttled": self.throttled,
            "slowed": [
                {"at": change.at, "requests_per_minute": round((change.rate or 0) * 60, 1), "why": change.why}
                for change in self.changes[-20:]
            ],
        }

    def _window(self) -> float:
        # Long enough to hold about 20 requests, so one early or late answer moves little; a
        # search takes bigger steps on less evidence.
        if self._searching and self.rate:
            return max(0.5, 10 / self.rate)
        return max(2.0, 20 / self.rate) if self.rate else 2.0

    def _close_window(self, now: float) -> None:
        if self._window_throttled == 0 and self._window_held and self.rate is not None and self._hold > 0:
            self._hold -= 1  # just after a cut: the limit was there, stay under it a while
        elif self._window_throttled == 0 and self._window_held and self.rate is not None:
            self.rate *= SEARCH if self._searching else 1 + self._probe
            self._probe = min(MOST_PROBE, self._probe * 2)  # the longer it holds, the bolder the probe
            if self.told is not None:
                self.rate = min(self.rate, self.told)  # never faster than the user said
            self._changed_at = self._resumed_at = now  # what gets through is measured afresh
            self._sent_since = self._throttled_since = 0
        self._window_start = now
        self._window_throttled = 0
        self._window_held = False

    def _set(self, now: float, rate: float, why: str) -> None:
        self.rate = rate
        self._probe = PROBE
        self._hold = HOLD
        self._changed_at = self._resumed_at = self._window_start = now
        self._sent_since = self._throttled_since = self._window_throttled = 0
        self._window_held = False
        change = Change(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), rate, why)
        self.changes.append(change)
        self._on_change(change)


_POLICY = re.compile(r'^\s*(?:"[^"]*"\s*;\s*q\s*=\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?))\s*((?:;[^,]*)?)')
_WINDOW = re.compile(r";\s*w\s*=\s*(\d+(?:\.\d+)?)")


def parse_policy(header: str | None) -> tuple[float, float] | None:
    """(requests, window seconds) from a RateLimit-Policy header, or None.

    Both drafts' forms: `600;w=60` and `"default";q=600;w=60`; of several policies, the first.
    """
    if not header or len(header) > 512:
        return None
    match = _POLICY.match(header)
    if match is None:
        return None
    requests = float(match.group(1) or match.group(2))
    window = _WINDOW.search(match.group(3))
    seconds = float(window.group(1)) if window else 0.0
    if not (0 < requests < 1e9 and 0 < seconds < 1e7):
        return None
    return requests, seconds


def learned_pace(run_dir: Path, base_url: str) -> float | None:
    """Requests a minute an earlier run learned for `base_url`, if any."""
    try:
        data = json.loads((run_dir / PACE_FILE).read_text(encoding="utf-8"))
        value = data["endpoints"][base_url]["requests_per_minute"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) and 1 <= value < 1e7 else None


def remember_pace(run_dir: Path, base_url: str, requests_per_minute: float) -> None:
    """Keep what this run learned, so the next one starts there (atomically; best effort)."""
    path = run_dir / PACE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        endpoints = data["endpoints"] if isinstance(data.get("endpoints"), dict) else {}
    except (OSError, ValueError, AttributeError):
        endpoints = {}
    endpoints[base_url] = {
        "requests_per_minute": round(requests_per_minute, 1),
        "learned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        write_whole(str(path), (json.dumps({"version": 1, "endpoints": endpoints}, indent=2) + "\n").encode())
    except OSError:
        pass  # a full disk: the next run learns again
