"""What the tests share: an isolated directory per test, the real CLI in-process, the emulator
in-process (pytest-aiohttp) or as a process of its own, the hostile server, and small helpers.

Each fixture has a type (Cli, Api, EmulatorProcesses), so mypy --strict reads the tests too.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pytest_aiohttp import AiohttpServer

from runner.cli import main
from runner.emulator.knobs import DEFAULT_KEY, Knobs
from runner.emulator.server import Emulator
from runner.endpoint import Endpoint
from runner.events import Event
from runner.execute import run_plan
from runner.manifest import loads
from runner.pacing import RetryPolicy
from runner.plan import make_plan
from runner.settings import RunSettings
from runner.stop import Stop
from runner.store import RunDir
from tests.hostile import Hostile

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
from tests.support import CHROMIUM_FLAGS, REPO


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test runs in its own empty directory with no API settings in its environment."""
    for name in ("ONEMIN_API_KEY", "ONEMIN_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


Cli = Callable[..., CliResult]  # cli("plan", path) -> exit code, stdout, stderr
Api = Callable[..., Awaitable[tuple[Emulator, str]]]  # await api(knobs) -> (the emulator, its base URL)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run the real entry point in-process: `cli("plan", path)` -> exit code, stdout, stderr."""

    def run(*argv: str) -> CliResult:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_cli(cli: Cli, manifest: Path, url: str, *flags: str) -> CliResult:
    """`flux-batch run MANIFEST --base-url URL --no-progress FLAGS`, in-process."""
    return cli("run", str(manifest), "--base-url", url, "--no-progress", *flags)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- the emulator, over real sockets --------------------------------------------------------

FAST = Knobs(latency=(0.005, 0.02), max_side=64, retry_after=0.05)
QUICK_RETRIES = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05)


def manifest_text(jobs: int, name: str = "t", **run: Any) -> str:
    """A manifest of `jobs` jobs: one prompt, a sweep of guidance values, one seed."""
    values = [round(0.1 * i, 1) for i in range(jobs)]
    block = "".join(f"  {k}: {v}\n" for k, v in run.items())
    return (
        f"version: 1\nname: {name}\ndefaults: {{megapixels: 0.25, aspect_ratio: '4:5'}}\n"
        f"prompts:\n  - {{id: p, prompt: 'a lighthouse'}}\nsweep:\n  guidance: {values}\nseeds: [1]\n"
        + (f"run:\n{block}" if block else "")
    )


@pytest.fixture
async def api(aiohttp_server: AiohttpServer) -> Api:
    """`await api(knobs)` -> (Emulator, base URL), served on loopback."""

    async def serve(knobs: Knobs = FAST) -> tuple[Emulator, str]:
        emulator = Emulator(knobs)
        server = await aiohttp_server(emulator.app)
        return emulator, str(server.make_url("")).rstrip("/")

    return serve


async def run_text(
    text: str,
    run_dir: Path,
    base_url: str,
    key: str = DEFAULT_KEY,
    policy: RetryPolicy = QUICK_RETRIES,
    events: list[Event] | None = None,
    deadline: float | None = None,
    base_dir: Path | None = None,
    clock: Callable[[], float] = time.time,
    on_event: Callable[[Event], None] | None = None,
    **settings: Any,
) -> tuple[dict[str, Any], Stop]:
    """Run a manifest text through the public core API, as `flux-batch run` does; local input
    images are looked up in `base_dir`. `clock` is the one the deadline is read from; `events`
    collects what the run reports, and `on_event` hears it as it comes."""
    plan = make_plan(loads(text, "m.yaml", base_dir))
    resolved = RunSettings.resolve(plan.manifest.run, settings)
    stop = Stop(deadline, clock=clock)
    collected = events if events is not None else []

    def heard(event: Event) -> None:
        collected.append(event)
        if on_event is not None:
            on_event(event)

    with RunDir.open(run_dir, text, endpoint=Endpoint(base_url)) as opened:
        result = await run_plan(plan, opened, resolved, base_url, key, stop, heard, policy)
    return result.summary.as_json(), stop


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Wait until `condition()` holds (or fail after `timeout`): for what a server finishes on
    its own time, without guessing how long it takes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {timeout} s")
        await asyncio.sleep(0.01)


def records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "records.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


class EmulatorProcess:
    """`flux-batch emulator` in its own process, for tests that kill or signal the runner."""

    def __init__(self, *flags: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runner", "emulator", "--port", "0", *flags],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.url = line.split(" listening on ")[1].split()[0]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/__stats", timeout=5) as answer:
            stats: dict[str, Any] = json.loads(answer.read())
        return stats

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


EmulatorProcesses = Callable[..., EmulatorProcess]  # emulator_process("--latency", "0.1,0.2") -> a process


@pytest.fixture
def emulator_process() -> Iterator[EmulatorProcesses]:
    started: list[EmulatorProcess] = []

    def start(*flags: str) -> EmulatorProcess:
        started.append(EmulatorProcess(*flags))
        return started[-1]

    yield start
    for process in started:
        process.close()


def start_run(manifest: Path, url: str, *flags: str) -> subprocess.Popen[str]:
    """`flux-batch run MANIFEST --base-url URL --no-progress FLAGS` as a process of its own, in
    the manifest's directory, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(manifest), "--base-url", url, "--no-progress", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=manifest.parent,
    )


def wait_for_lines(run_dir: Path, count: int, timeout: float = 30) -> None:
    """Wait until `run_dir` holds `count` records lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(records(run_dir)) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} records after {timeout} s")


def run_module(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`python -m runner ARGV...` in its own process, in `cwd`."""
    return subprocess.run([sys.executable, "-m", "runner", *argv], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    """A misbehaving look-alike of the API on loopback (tests/hostile.py), stopped afterwards."""
    server = Hostile().start()
    yield server
    server.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 600 KB file system (tmpfs), mounted for the test; skipped where that is not allowed."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def inputs_dir(tmp_path: Path) -> Path:
    (tmp_path / "inputs").mkdir()
    return tmp_path / "inputs"


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("example")
    done = run_module(where, "run", str(REPO / "manifests" / "example.yaml"), "--emulator", "--out", "run")
    assert done.returncode == 0, done.stderr
    assert "report in run/report.html" in done.stdout
    return where / "run"


def apt_install(*packages: str) -> None:
    """Install Debian packages for the browser tests, or skip them saying why that failed."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"{' and '.join(packages)} not installed, and this user cannot install Debian packages")
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(
            step, capture_output=True, text=True, timeout=900, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        )
        if done.returncode != 0:
            pytest.skip(f"{' and '.join(packages)} could not be installed ({' '.join(step)}: {done.stderr.strip()[-300:]})")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium, installed by the test setup when it is missing."""
    found = shutil.which("chromium")
    if found:
        return found
    apt_install("chromium", "chromium-driver")
    return shutil.which("chromium") or pytest.skip("Chromium was installed but is not on PATH")


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[WebDriver]:
    """Headless Chromium driven through Debian's chromedriver (no download, no statistics)."""
    import tempfile

    if not shutil.which("chromedriver"):
        apt_install("chromium-driver")
    if not shutil.which("chromedriver"):
        pytest.skip("chromium-driver was installed but chromedriver is not on PATH")
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="flux-batch-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1400,1200")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
