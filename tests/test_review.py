"""`flux-batch review` (runner/review_server.py) as a process on a real socket: its guards
(token, Host, Origin, paths, sizes), durable and concurrent judgments, pair sampling, live
images and several run dirs."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, EmulatorProcesses, run_module, start_run, wait_for_lines, write
from tests.support import REPO, SECRET

AB = REPO / "manifests" / "ab-prompt-test.yaml"


class ReviewServer:
    """`flux-batch review RUN_DIR... --no-open` in its own process, and plain HTTP to it."""

    def __init__(self, cwd: Path, *argv: str, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "runner", "review", *argv, "--no-open"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", self.url), self.url or self.process.communicate()[1]
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])
        status, _, page = self.request("GET", "/")
        assert status == 200
        found = re.search(r'<meta name="review-token" content="([^"]+)">', page)
        assert found
        self.token = found.group(1)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers={"Host": f"127.0.0.1:{self.port}", **(headers or {})})
            answer = connection.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read().decode("utf-8", "replace")
        finally:
            connection.close()

    def get(self, path: str) -> Any:
        status, _, body = self.request("GET", path)
        assert status == 200, body
        return json.loads(body)

    def post(self, path: str, data: Any, token: str | None = None, **headers: str) -> tuple[int, Any]:
        sent = {"Content-Type": "application/json", "X-Review-Token": self.token if token is None else token, **headers}
        status, _, body = self.request("POST", path, json.dumps(data).encode(), sent)
        return status, json.loads(body)

    def vote(self, winner: str = "a") -> dict[str, Any]:
        pair = self.get("/api/pair")["pair"]
        status, answer = self.post("/api/ratings", {"kind": "pair", "a": pair["left"], "b": pair["right"], "winner": winner})
        assert status == 200, answer
        return {**pair, **answer}

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        self.process.communicate(timeout=20)


@pytest.fixture
def review(tmp_path: Path) -> Iterator[Any]:
    started: list[ReviewServer] = []

    def start(*argv: str, env: dict[str, str] | None = None) -> ReviewServer:
        started.append(ReviewServer(tmp_path, *argv, env=env))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture(scope="module")
def ab_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The A/B example run on the emulator once: 2 arms x 9 settings."""
    where = tmp_path_factory.mktemp("ab")
    done = run_module(where, "run", str(AB), "--emulator", "--out", "run", "--no-report")
    assert done.returncode == 0, done.stderr
    return where / "run"


@pytest.fixture
def ab_run(ab_source: Path, tmp_path: Path) -> Path:
    shutil.copytree(ab_source, tmp_path / "ab")
    return tmp_path / "ab"


def ratings(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "ratings.jsonl").read_text(encoding="utf-8").splitlines()]


def test_writes_need_the_token_the_host_and_the_origin_of_the_page(review: Any, ab_run: Path) -> None:
    server = review(str(ab_run), "--rater", "ann")
    pair = server.get("/api/pair")["pair"]
    vote = {"kind": "pair", "a": pair["left"], "b": pair["right"], "winner": "a"}
    assert server.post("/api/ratings", vote, token="")[0] == 403
    assert server.post("/api/ratings", vote, token="not-the-token")[0] == 403
    assert server.post("/api/ratings", vote, Origin="http://evil.example")[0] == 403
    assert not (ab_run / "ratings.jsonl").exists()
    # DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends its own Host.
    for host in ("evil.example", f"evil.example:{server.port}", f"127.0.0.1:{server.port + 1}", "127.0.0.1"):
        status, _, _ = server.request("GET", "/api/state", headers={"Host": host})
        assert status == 421, host
        assert server.request("GET", "/", headers={"Host": host})[0] == 421
    assert server.request("GET", "/api/state", headers={"Host": f"localhost:{server.port}"})[0] == 200
    status, answer = server.post("/api/ratings", vote, Origin=f"http://127.0.0.1:{server.port}")
    assert status == 200 and answer["saved"] is True
    assert [line["a"] for line in ratings(ab_run)] == [pair["left"]]


def test_a_judgment_is_on_disk_when_the_page_hears_saved_and_a_later_one_supersedes_it(
    cli: Cli, review: Any, ab_run: Path
) -> None:
    server = review(str(ab_run), "--rater", "ann")
    first = server.vote("a")
    line = ratings(ab_run)[-1]  # read as soon as the answer came: already written and synced
    assert (line["kind"], line["a"], line["b"], line["winner"], line["rater"]) == (
        "pair",
        first["left"],
        first["right"],
        "a",
        "ann",
    )
    assert set(first["arms"].values()) == {"plain", "styled"}
    # The same pair judged again, sides the other way round: the later judgment stands.
    status, _ = server.post("/api/ratings", {"kind": "pair", "a": first["right"], "b": first["left"], "winner": "a"})
    assert status == 200 and len(ratings(ab_run)) == 2
    tally = json.loads(cli("verdict", str(ab_run), "--json").out)["pairs"]
    winner = first["arms"]["b"]
    assert len(tally) == 1 and tally[0]["wins" if winner == "plain" else "losses"] == 1 and tally[0]["ties"] == 0


def test_bad_judgments_are_refused_with_a_reason(review: Any, ab_run: Path) -> None:
    server = review(str(ab_run), "--rater", "ann")
    shots = server.get("/api/shots?since=-1")["shots"]
    plain = [s["job"] for s in shots if s["arm"] == "plain"]
    cases = [
        ({"kind": "pair", "a": plain[0], "b": plain[1], "winner": "a"}, "both images are of one"),
        ({"kind": "score", "job_id": plain[0], "score": 6}, "not a judgment"),
        ({"kind": "score", "job_id": "0" * 16, "score": 3}, "no image of job"),
        ({"kind": "note", "job_id": plain[0], "text": "x" * 2001}, "at most 2000 characters"),
        ({"kind": "vote"}, "not a judgment"),
        ([1, 2], "a JSON object"),
    ]
    for body, reason in cases:
        status, answer = server.post("/api/ratings", body)
        assert status == 400 and reason in answer["error"], (body, answer)
    status, _, _ = server.request("POST", "/api/ratings", b"{not json", {"X-Review-Token": server.token})
    assert status == 400
    big = json.dumps({"kind": "note", "job_id": plain[0], "text": "x" * 100_000}).encode()
    assert server.request("POST", "/api/ratings", big, {"X-Review-Token": server.token})[0] == 413
    assert not (ab_run / "ratings.jsonl").exists()


def test_only_the_images_the_records_name_inside_the_run_dir_are_served(review: Any, ab_run: Path, tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.txt", "not for the page")
    lines = (ab_run / "records.jsonl").read_text().splitlines()
    escaping = [json.loads(lines[0]), json.loads(lines[1])]
    escaping[0].update(job_id="e" * 16, files=["../secret.txt"])
    escaping[1].update(job_id="f" * 16, files=["images/plain/link.webp"])
    (ab_run / "images" / "plain" / "link.webp").symlink_to(secret)
    with open(ab_run / "records.jsonl", "a") as records:
        records.writelines(json.dumps(line) + "\n" for line in escaping)
    server = review(str(ab_run))
    served = {shot["job"] for shot in server.get("/api/shots?since=-1")["shots"]}
    assert len(served) == 18 and "e" * 16 not in served and "f" * 16 not in served
    for path in (f"/shot/{'e' * 16}", f"/shot/{'f' * 16}", "/shot/../../secret.txt", "/shot/..%2f..%2fsecret.txt",
                 "/../secret.txt", "/images/plain/link.webp", "/records.jsonl", "/manifest.yaml"):  # fmt: skip
        status, _, body = server.request("GET", path)
        assert status == 404 and "not for the page" not in body, path
    status, headers, _ = server.request("GET", f"/shot/{sorted(served)[0]}")
    assert status == 200 and headers["Content-Type"] == "image/webp" and headers["X-Content-Type-Options"] == "nosniff"


def test_the_server_listens_on_loopback_only_and_the_page_holds_no_key(review: Any, ab_run: Path) -> None:
    environment = {**os.environ, "ONEMIN_API_KEY": SECRET}
    server = review(str(ab_run), env=environment)
    listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    ours = [fields[1] for fields in listening if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == server.port]
    assert ours == [f"0100007F:{server.port:04X}"]  # 127.0.0.1, and no other address
    status, headers, page = server.request("GET", "/")
    assert status == 200 and SECRET not in page
    assert (
        "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        and "script-src 'nonce-" in headers["Content-Security-Policy"]
    )
    for path in ("/api/state", "/api/pair", "/api/shots?since=-1", "/api/verdict"):
        assert SECRET not in server.request("GET", path)[2]


def test_concurrent_votes_from_two_pages_and_two_servers_lose_no_line(review: Any, ab_run: Path) -> None:
    first = review(str(ab_run), "--rater", "ann")
    second = review(str(ab_run), "--rater", "bob")
    shots = first.get("/api/shots?since=-1")["shots"]
    plain = [s["job"] for s in shots if s["arm"] == "plain"]
    styled = [s["job"] for s in shots if s["arm"] == "styled"]
    problems: list[str] = []

    def page(server: ReviewServer, offset: int) -> None:
        for n in range(40):
            body = {"kind": "pair", "a": plain[(n + offset) % 9], "b": styled[n % 9], "winner": "ab"[n % 2]}
            status, answer = server.post("/api/ratings", body)
            if status != 200:
                problems.append(str(answer))

    pages = [threading.Thread(target=page, args=(server, k)) for k, server in enumerate((first, first, second, second))]
    for thread in pages:
        thread.start()
    for thread in pages:
        thread.join()
    assert not problems
    raw = (ab_run / "ratings.jsonl").read_bytes()
    assert raw.endswith(b"\n") and len(raw.splitlines()) == 160
    assert all(json.loads(line)["kind"] == "pair" for line in raw.splitlines())


def test_pairs_spread_over_settings_and_run_out_when_all_are_judged(review: Any, ab_run: Path) -> None:
    server = review(str(ab_run), "--rater", "ann")
    seen = []
    for _ in range(9):
        pair = server.vote()
        seen.append(json.dumps(pair["setting"], sort_keys=True) + str(sorted((pair["left"], pair["right"]))))
    assert len(set(seen)) == 9  # every setting once before any twice
    finished = server.get("/api/pair")
    assert finished["pair"] is None and "every matched pair is judged" in finished["why"]
    # Another rater starts afresh.
    other = review(str(ab_run), "--rater", "bob")
    assert other.get("/api/pair")["pair"] is not None
    assert server.get("/api/state")["judged_by_you"] == 9


def test_images_of_a_live_run_appear_without_a_reload(review: Any, tmp_path: Path, emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.25,0.3", "--max-side", "32")
    manifest = write(tmp_path / "ab.yaml", AB.read_text())
    run = start_run(manifest, served.url, "--concurrency", "1", "--no-report")
    try:
        wait_for_lines(tmp_path / "output" / "ab-prompt-test", 1)
        server = review("output/ab-prompt-test")
        before = server.get("/api/shots?since=-1")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            later = server.get(f"/api/shots?since={before['version']}")
            if later["shots"]:
                break
            time.sleep(0.2)
        assert later["shots"] and later["version"] > before["version"]
        assert not {s["job"] for s in later["shots"]} & {s["job"] for s in before["shots"]}
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=30)


def test_arms_from_two_run_dirs_are_matched_and_judged_apart(cli: Cli, review: Any, tmp_path: Path) -> None:
    before = write(tmp_path / "before.yaml", AB.read_text().replace("name: ab-prompt-test", "name: before"))
    edited = AB.read_text().replace("name: ab-prompt-test", "name: after").replace("A product photo", "A studio photo")
    after = write(tmp_path / "after.yaml", edited)
    for manifest in (before, after):
        assert cli("run", str(manifest), "--emulator", "--no-progress", "--no-report").code == 0
    server = review("output/emulator/before", "output/emulator/after", "--rater", "ann")
    state = server.get("/api/state")
    assert state["arms"] == 4 and state["images"] == 36
    labels = set()
    for _ in range(12):
        labels.update(server.vote("a")["arms"].values())
    assert {"before/plain", "after/styled"} <= labels
    verdict = json.loads(cli("verdict", "output/emulator/before", "output/emulator/after", "--json").out)
    assert verdict["arms"] == ["before/plain", "before/styled", "after/plain", "after/styled"]
    assert sum(p["wins"] + p["losses"] for p in verdict["pairs"]) == 12
    assert (tmp_path / "output" / "emulator" / "before" / "ratings.jsonl").exists()
