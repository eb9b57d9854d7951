"""How many requests a second the whole pool may send: told, advised by the server, or learned.

A server that limits requests answers 429 past its limit. Told a rate, the pool spends it
evenly, one request every 1/rate seconds and never a burst, so a token bucket of any size lets
every request through. Told nothing, the pool goes as fast as its concurrency allows until the
first 429, then measures the limit:

- a 429 says the server's allowance is spent at that moment. From then on, as long as the pool
  keeps up with the limit, what the server lets through is exactly what it refills: the
  requests let through since that 429 (those still out count), over the time since, *is* its
  rate, one request either way. Each later 429 makes the measure longer and finer; once ten
  requests are in it, the pace holds at a little under it;
- while the measure is short the pace is only set to it, and a window without a 429 raises the
  pace by a half, so the search takes seconds, not minutes. Slower than the limit for long, the
  server's allowance fills up unused and a measure would say too little: one far under a pace
  that held a whole window starts again from there;
- held to a measure for a few windows, the pace is probed upwards (2%, then 4%, and so on up to
  a half per window), so a raised limit (or a careful first measure) is found again. The 429
  that ends a probe starts a new measure at the last pace that held, but not far over the last
  measure; each probe that finds the limit where it was doubles the wait before the next, so a
  steady server is probed rarely;
- a 429 that asks for a wait far longer than the pace's interval is a window of requests spent
  (a limit per minute, not a bucket): the whole pool waits it out;
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
PRECISE = 10  # requests let through in a measure before it is held to: a tenth, one either way
PROBE = 0.02  # raise per window spent at full pace without a 429, doubled each such window
MOST_PROBE = 0.5
HOLD = 5  # windows after a measure before the pace is raised again
MOST_HOLD = 80  # the hold doubles each time a probe finds the limit where it was, up to this
SEARCH = 1.5  # raise per window until a measure is good enough to hold to
NEAR = 1.1  # a probe's measure starts no further than this over the last measure
UNFILLED = 0.85  # a measure under this share of a pace that held a window says too little
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
        self.good = None if told else learned  # the pace a measure last found under the limit
        self.throttled = 0  # answers 429
        self.sent = 0
        self.changes: list[Change] = []
        self._on_change = on_change
        self._searching = False  # no measure yet good enough to hold to: raise by SEARCH
        self._probe = PROBE
        self._hold = HOLD if self.good else 0  # windows to go without a raise
        self._holds = HOLD  # the hold after the next measure
        self._next = float("-inf")  # when the next request may go
        self._changed_at = float("-inf")  # when the pace last changed
        self._first_sent: float | None = None
        # A measure: from a 429 (the server's allowance spent), what the server lets through is
        # its rate, as long as the pool kept up with it all along (`_origin`: when it began).
        self._origin: float | None = None
        self._measure_ended = True  # a probe raised the pace since: the next 429 begins one
        self._sent_since = 0
        self._throttled_since = 0  # of those, answered 429
        self._held: float | None = None  # in this measure, the last pace raised after a window without a 429
        # A window at the pace, for raising it:
        self._window_start = 0.0
        self._window_throttled = 0
        self._window_held = False  # the pace made a request wait in this window

    def start_at(self, learned: float) -> bool:
        """Start at `learned` requests a second, if nothing was told or found yet."""
        if self.rate is not None or self.changes:
            return False
        self.rate = self.good = learned
        self._hold = HOLD
        return True

    @property
    def requests_per_minute(self) -> float | None:
        return None if self.rate is None else self.rate * 60

    @property
    def learned_per_minute(self) -> float | None:
        """What the next run should start at: the last pace measured under the limit (a probe
        over it is not worth keeping), or the pace now if none was."""
        rate = self.good or self.rate
        return None if rate is None else rate * 60

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
            self._first_sent = self._window_start = now
        self.sent += 1
        self._sent_since += 1
        return 0.0

    def answered(self, sent_at: float, now: float, throttled: bool, retry_after: float | None = None) -> float:
        """The answer to a request sent at `sent_at`. Returns how long the whole pool should
        pause: only the first 429 of a run that knows no limit asks for a pause."""
        if not throttled:
            return 0.0
        self.throttled += 1
        self._window_throttled += 1
        asked = retry_after if retry_after is not None and 0 < retry_after < 120 else None
        if self._origin is not None and sent_at < self._origin:
            return 0.0  # sent before the measure began: the allowance it met was spent already
        # A wait far longer than the pace's own interval: a window of requests is spent, not a
        # bucket that refills as it goes, and nothing gets through until then.
        pause = asked if asked is not None and self.rate is not None and asked > max(1.0, 2 / self.rate) else 0.0
        if self.rate is None:
            # The first limit found: what went through since the start, spread over the pause
            # the server asks for, is a first guess; the measure from here corrects it.
            pause = asked or 1.0
            went_through = self.sent - self.throttled
            started = self._first_sent if self._first_sent is not None else now
            self._begin(now, searching=True)
            self._set(now, max(SLOWEST, went_through / (now - started + pause)), "answered 429 (too many requests)", 0)
            self._next = now + pause
            return pause
        if self._measure_ended:
            self._first_of_a_measure(now)
            return pause
        self._throttled_since += 1
        elapsed = now - self._origin if self._origin is not None else 0.0
        through = self._sent_since - self._throttled_since  # requests still out count as through
        if through < 1 and elapsed >= 0.2 and sent_at >= self._changed_at:
            self._searching = True  # nothing at all gets through: far over the limit
            self._set(now, max(SLOWEST, self.rate / 2), "answered 429 (too many requests)", 0)
            return pause
        if elapsed < 0.2 or through < 1:
            return pause  # too soon to say
        measured = through / elapsed
        if self._held is not None and measured < self._held * UNFILLED:
            # Well under a pace that went a whole window without a 429: the pool went slower
            # than the limit for a while, and the server's allowance filled up unused, so the
            # measure says too little. Measure again from here, at that pace.
            held = self._held
            self._begin(now, searching=True)
            self._set(now, min(self.rate, held), "answered 429 (too many requests)", 0)
            return pause
        precise = through >= PRECISE
        if precise:  # what the server had at either end is half a request, on average
            measured = (through + 0.5) / elapsed
        rate = max(SLOWEST, min(self.rate, measured * (UNDER if precise else 1.0)))
        if precise:
            if self.good is not None and abs(rate / self.good - 1) < 0.1:
                self._holds = min(MOST_HOLD, self._holds * 2)  # the limit is where it was
            self._searching, self.good = False, rate
        if rate < self.rate:
            self._set(now, rate, "answered 429 (too many requests)", self._holds if precise else 0)
        return pause

    def advised(self, now: float, requests: float, window: float) -> None:
        """The server stated its limit: `requests` per `window` seconds."""
        rate = requests / window
        if rate <= 0 or (self.rate is not None and abs(self.rate - rate) < 1e-9):
            return
        if self.told is not None and self.told <= rate:
            return  # what the user said is within the server's limit: it stands
        self.good = rate = max(SLOWEST, rate)
        self._searching, self._measure_ended = False, True
        self._set(now, rate, f"the server states a limit of {requests:g} per {window:g} s", self._holds)

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

    def _first_of_a_measure(self, now: float) -> None:
        """A 429 after a probe (or the first at a pace told, learned or stated): the server's
        allowance is spent now, and a measure begins: at the last pace that held a whole
        window (a server's burst lets a probe run on past its limit for a while), but not far
        over the last measure, so a limit where it was costs a 429 or two to find again."""
        assert self.rate is not None
        over, held = self.rate, self._held
        self._begin(now, searching=True)
        if held and self.good:
            start = min(held, self.good * NEAR)
        else:
            start = held or self.good or over / SEARCH
        self._set(now, max(SLOWEST, min(over, start)), "answered 429 (too many requests)", 0)

    def _begin(self, now: float, searching: bool) -> None:
        self._origin = now
        self._sent_since = self._throttled_since = 0
        self._held = None
        self._measure_ended = False
        self._searching = searching

    def _window(self) -> float:
        # Long enough to hold about 20 requests, so one early or late answer moves little; a
        # search takes bigger steps on less evidence.
        if self._searching and self.rate:
            return max(0.5, 10 / self.rate)
        return max(2.0, 20 / self.rate) if self.rate else 2.0

    def _close_window(self, now: float) -> None:
        if self._window_throttled == 0 and self._window_held and self.rate is not None and self._hold > 0:
            self._hold -= 1  # just after a measure: the limit was there, stay under it a while
        elif self._window_throttled == 0 and self._window_held and self.rate is not None:
            self._held = self.rate
            if self._searching:
                self.rate *= SEARCH  # the measure goes on: the pool still keeps up with the limit
            else:
                self.rate *= 1 + self._probe
                self._probe = min(MOST_PROBE, self._probe * 2)  # the longer it holds, the bolder the probe
                self._measure_ended = True  # the server's allowance fills up under the pace
            if self.told is not None:
                self.rate = min(self.rate, self.told)  # never faster than the user said
        self._window_start = now
        self._window_throttled = 0
        self._window_held = False

    def _set(self, now: float, rate: float, why: str, hold: int) -> None:
        self.rate = rate
        self._changed_at = now
        self._probe = PROBE
        self._hold = hold
        self._window_start = now
        self._window_throttled = 0
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
