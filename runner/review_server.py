"""The review page's server: blind pairwise votes, scores and notes, written to ratings.jsonl.

It is a local server that writes to disk, so it trusts nothing a browser sends:

- it listens on 127.0.0.1 only, and answers only requests whose Host is that address or
  localhost at its port, so a web page that rebinds its own name to 127.0.0.1 gets nothing;
- every write needs the header X-Review-Token with the token of this server, which only its
  own page holds (a page of another origin can neither read it nor send the header without a
  preflight this server never grants), and a write from another Origin is refused;
- images are served by job id alone, from the files the records name, each checked to lie
  inside its run dir (no "..", no absolute path, no symbolic link pointing away);
- bodies are capped at 16 KiB, and the page carries no API key and no data of another origin.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from runner.arms import RunSet, Shot, inside
from runner.pairing import next_pair
from runner.ratings import Judgment, append, standing
from runner.records import utc_timestamp
from runner.verdict import verdict

MAX_BODY = 16 * 1024
MAX_NOTE = 2000  # characters
REFRESH_EVERY = 0.5  # seconds: how stale the image list may be while a run adds to it
_PAGE = Path(__file__).with_name("review_page.html")
_CHARTS = Path(__file__).with_name("verdict_charts.js")
_IMAGE_TYPES = {".webp": "image/webp", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Review:
    def __init__(self, runs: RunSet, rater: str, token: str | None = None, seed: int | None = None) -> None:
        self.runs = runs
        self.rater = rater
        self.token = token or secrets.token_urlsafe(32)
        self.port = 0  # known once listening; the Host check needs it
        self._rng = random.Random(seed)
        self._skipped: set[frozenset[str]] = set()
        self._added: dict[str, int] = {job_id: 0 for job_id in runs.shots}  # job id -> version it appeared in
        self._looked = time.monotonic()
        self._write = asyncio.Lock()

    # -- the application ----------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        app.router.add_get("/", self._page)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/pair", self._pair)
        app.router.add_get("/api/shots", self._shots)
        app.router.add_get("/api/verdict", self._verdict)
        app.router.add_post("/api/ratings", self._rate)
        app.router.add_post("/api/skip", self._skip)
        app.router.add_get("/shot/{job_id}", self._image)
        return app

    async def start(self, port: int = 0) -> tuple[web.AppRunner, str]:
        """Listen on 127.0.0.1:`port` (0: a free one); the runner, and the page's address."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner, f"http://127.0.0.1:{self.port}/"

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        allowed = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        if request.host not in allowed:
            return _refuse(421, "this server answers only at its own loopback address")
        if request.method not in ("GET", "HEAD"):
            given = request.headers.get("X-Review-Token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return _refuse(403, "missing or wrong X-Review-Token")
            origin = request.headers.get("Origin")
            if origin is not None and origin not in {f"http://{host}" for host in allowed}:
                return _refuse(403, "a write from another origin")
        response = await handler(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    # -- pages and answers ----------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.StreamResponse:
        nonce = secrets.token_urlsafe(16)
        title = " + ".join(self.runs.names)
        page = _PAGE.read_text(encoding="utf-8")
        page = page.replace("{{charts}}", _CHARTS.read_text(encoding="utf-8"))
        for key, value in (("token", self.token), ("nonce", nonce), ("title", html.escape(f"{title}: flux-batch review"))):
            page = page.replace("{{" + key + "}}", value)
        policy = (
            f"default-src 'none'; img-src 'self'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        headers = {"Content-Security-Policy": policy, "X-Frame-Options": "DENY"}
        return web.Response(text=page, content_type="text/html", headers=headers)

    async def _state(self, request: web.Request) -> web.StreamResponse:
        self._look()
        judged = standing(*self.runs.run_dirs)
        matches = self.runs.matches()
        mine = {frozenset((j.a, j.b)) for j in judged if j.kind == "pair" and j.rater == self.rater}
        return web.json_response({
            "names": self.runs.names,
            "rater": self.rater,
            "arms": len(self.runs.arms),
            "images": len(self.runs.shots),
            "pairs": len(matches),
            "judged_by_you": sum(frozenset((a.job_id, b.job_id)) in mine for a, b in matches),
            "mode": "pairs" if matches else "grid",
            "version": self.runs.version,
        })  # fmt: skip

    async def _pair(self, request: web.Request) -> web.StreamResponse:
        self._look()
        pair = next_pair(self.runs.matches(), standing(*self.runs.run_dirs), self.rater, self._skipped, self._rng)
        if pair is None:
            why = "every matched pair is judged: judge one again to change a vote, or score images in the grid"
            return web.json_response({"pair": None, "why": why if self.runs.matches() else "no two arms share a setting"})
        left, right = pair
        # Blind: nothing here names an arm or a prompt; the images go by job id.
        shown = {name: value for name, value in left.axes.items() if name != "seed"}
        return web.json_response({"pair": {"left": left.job_id, "right": right.job_id, "setting": shown}})

    async def _shots(self, request: web.Request) -> web.StreamResponse:
        self._look()
        try:
            since = int(request.query.get("since", "-1"))
        except ValueError:
            return _refuse(400, "since is a number")
        mine = [j for j in standing(*self.runs.run_dirs) if j.rater == self.rater]
        scores = {j.job_id: j.score for j in mine if j.kind == "score"}
        notes = {j.job_id: j.text for j in mine if j.kind == "note"}
        shots = [
            _shot_json(shot, scores.get(job_id), notes.get(job_id))
            for job_id, shot in self.runs.shots.items()
            if self._added.get(job_id, 0) > since
        ]
        return web.json_response({"version": self.runs.version, "shots": shots})

    async def _verdict(self, request: web.Request) -> web.StreamResponse:
        self._look()
        found = verdict(self.runs, standing(*self.runs.run_dirs))
        return web.json_response({**found.as_json(), "words": found.words()})

    async def _rate(self, request: web.Request) -> web.StreamResponse:
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _refuse(400, "the body is not JSON")
        if not isinstance(data, dict):
            return _refuse(400, "a judgment is a JSON object")
        self._look(now=True)
        judgment = Judgment.from_json({**data, "rater": self.rater, "at": utc_timestamp()})
        problem = self._problem(judgment)
        if judgment is None or problem:
            return _refuse(400, problem or "not a judgment: see the kinds pair, score and note")
        owner = self.runs.owner(judgment.a if judgment.kind == "pair" else judgment.job_id)
        async with self._write:  # one append at a time from this server; the file lock covers the rest
            await asyncio.to_thread(append, owner, judgment)
        answer: dict[str, Any] = {"saved": True, "at": judgment.at}
        if judgment.kind == "pair":
            answer["arms"] = {"a": self.runs.shots[judgment.a].arm.label, "b": self.runs.shots[judgment.b].arm.label}
        return web.json_response(answer)

    def _problem(self, judgment: Judgment | None) -> str | None:
        if judgment is None:
            return None
        jobs = (judgment.a, judgment.b) if judgment.kind == "pair" else (judgment.job_id,)
        unknown = [job for job in jobs if job not in self.runs.shots]
        if unknown:
            return f"no image of job {unknown[0][:40]} in these run dirs"
        if judgment.kind == "pair" and self.runs.shots[judgment.a].arm == self.runs.shots[judgment.b].arm:
            return "a pair compares two arms; both images are of one"
        if judgment.kind == "note" and len(judgment.text) > MAX_NOTE:
            return f"a note is at most {MAX_NOTE} characters"
        return None

    async def _skip(self, request: web.Request) -> web.StreamResponse:
        try:
            data = await request.json()
            pair = frozenset((str(data["a"]), str(data["b"])))
        except (ValueError, KeyError, TypeError):
            return _refuse(400, "a skip names a and b")
        self._skipped.add(pair)
        return web.json_response({"skipped": True})

    async def _image(self, request: web.Request) -> web.StreamResponse:
        self._look()
        shot = self.runs.shots.get(request.match_info["job_id"])
        if shot is None:
            return _refuse(404, "no such image")
        wanted = shot.thumb if request.query.get("thumb") and shot.thumb else shot.file
        path = inside(shot.arm.run_dir, wanted)  # again: the file may have changed since it was listed
        if path is None:
            return _refuse(404, "no such image")
        kind = _IMAGE_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return web.FileResponse(path, headers={"Cache-Control": "private, max-age=3600", "Content-Type": kind})

    def _look(self, now: bool = False) -> None:
        """Pick up images a live run has added, at most every REFRESH_EVERY seconds."""
        if not now and time.monotonic() - self._looked < REFRESH_EVERY:
            return
        self._looked = time.monotonic()
        for shot in self.runs.refresh():
            self._added[shot.job_id] = self.runs.version


def _shot_json(shot: Shot, score: int | None, note: str | None) -> dict[str, Any]:
    return {
        "job": shot.job_id,
        "arm": shot.arm.label,
        "axes": shot.axes,
        "prompt": shot.prompt,
        "thumb": f"/shot/{shot.job_id}?thumb=1" if shot.thumb else f"/shot/{shot.job_id}",
        "image": f"/shot/{shot.job_id}",
        "score": score,
        "note": note,
    }


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
