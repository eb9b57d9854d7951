"""Helpers the test files share: a secret to look for, the real CLI as a process, a report's
data, the disk writer of a run, the bad manifests' expectations."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

CORPUS = sorted((REPO / "tests" / "bad_manifests").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]


EXAMPLES = sorted((REPO / "manifests").glob("*.yaml"))

SPEC_EXAMPLE = REPO / "tests" / "fixtures" / "spec-example.yaml"

SECRET = "sk-live-0123456789-NEVER-WRITE-ME"


def every_file(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def assert_no_key_in(*texts: str, root: Path | None = None) -> None:
    for text in texts:
        assert SECRET not in text
    for path in every_file(root) if root else []:
        assert SECRET.encode() not in path.read_bytes(), path


def writer_of(run_pid: int, timeout: float = 15) -> int:
    """The pid of a run's disk writer: its child running diskwriter.py."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if parent == run_pid and b"diskwriter.py" in command:
                return int(pid)
        time.sleep(0.02)
    raise AssertionError(f"no disk writer under pid {run_pid}")


SKETCH = REPO / "manifests" / "inputs" / "cottage-sketch.png"

OTHER = REPO / "tests" / "fixtures" / "inputs" / "sketch.png"


def three_arms(tmp_path: Path, strengths: str = "[0.4, 0.8]") -> str:
    """Two prompts share one picture, a third uses another."""
    shutil.copy(SKETCH, tmp_path / "inputs" / "cottage.png")
    shutil.copy(OTHER, tmp_path / "inputs" / "other.png")
    return (
        "version: 1\nname: i2i\ndefaults: {megapixels: 0.25}\nprompts:\n"
        "  - {id: a, prompt: 'watercolour', image_prompt: inputs/cottage.png}\n"
        "  - {id: b, prompt: 'ink', params: {image_prompt: ./inputs/cottage.png}}\n"
        "  - {id: c, prompt: 'oil', image_prompt: inputs/other.png}\n"
        f"sweep:\n  prompt_strength: {strengths}\nseeds: [1]\n"
    )


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def page_data(report: Path) -> dict[str, Any]:
    """The report's data as the page sees it once every prompt's jobs have loaded."""
    from runner.report import expand

    text = report.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.DOTALL)
    assert match, "the report embeds its data"
    data: dict[str, Any] = json.loads(match.group(1))
    for index, prompt in enumerate(data["prompts"]):
        script = (report.parent / prompt["file"].split("?")[0]).read_text(encoding="utf-8")
        call = re.fullmatch(r"FLUX_REPORT_DATA\((\d+), (.*)\);\n", script, re.DOTALL)
        assert call and int(call.group(1)) == index, script[:200]
        prompt["jobs"] = expand(prompt, json.loads(call.group(2)))
    return data


def imported_by(cwd: Path, verbs: list[list[str]], packages: tuple[str, ...]) -> tuple[list[int], list[str]]:
    """Run `verbs` through the CLI in a fresh interpreter: their exit codes, and which modules of
    `packages` they imported."""
    probe = (
        "import json, sys\nfrom runner.cli import main\n"
        f"codes = [main(argv) for argv in {verbs!r}]\n"
        f"print(json.dumps([codes, sorted(m for m in sys.modules if m.split('.')[0] in {packages!r})]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, check=True)
    codes, modules = json.loads(done.stdout.splitlines()[-1])
    return codes, modules


EXAMPLE = REPO / "manifests" / "example.yaml"


def flux_batch(cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`flux-batch ARGV` as a user types it, with `env` on top of a clean environment."""
    environment = {k: v for k, v in os.environ.items() if k not in ("ONEMIN_API_KEY", "ONEMIN_BASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "runner", *argv], capture_output=True, text=True, cwd=cwd, timeout=120, env={**environment, **env}
    )


def peak_memory(argv: list[str], cwd: Path) -> tuple[int, str, int]:
    """(exit code, stderr, peak RSS in KB) of `argv`, run from a small interpreter of its own:
    Linux carries a parent's resident memory at fork into the child's ru_maxrss, and a test
    process that has run a hundred tests is large."""
    launcher = (
        "import json, os, subprocess, sys\n"
        "child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "err = child.stderr.read().decode()\n"
        "_, status, usage = os.wait4(child.pid, 0)\n"
        "print(json.dumps([os.waitstatus_to_exitcode(status), err, usage.ru_maxrss]))\n"
    )
    done = subprocess.run([sys.executable, "-c", launcher, *argv], capture_output=True, text=True, cwd=cwd, timeout=120)
    code, err, peak = json.loads(done.stdout)
    return int(code), str(err), int(peak)
