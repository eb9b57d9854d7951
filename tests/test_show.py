"""`flux-batch show` (runner/show.py): one job in full, and its request as a curl command that
a shell runs against an emulator process to make the same picture again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import Cli, EmulatorProcesses, apt_install, manifest_text, records, run_cli, write
from tests.hostile import Hostile
from tests.support import SECRET, SKETCH

QUOTED = """\
version: 1
name: q
defaults: {megapixels: 0.25, aspect_ratio: '4:5'}
prompts:
  - id: p
    prompt: "it's a \\"quiet\\" $HOME `night` at {place}"
    vars: {place: [sea, hill]}
seeds: [5]
"""


@pytest.fixture(scope="module")
def curl_binary() -> Iterator[str]:
    if not shutil.which("curl"):
        apt_install("curl")
    if not shutil.which("curl"):
        pytest.skip("curl is not installed and cannot be installed here (no root or no apt-get)")
    yield str(shutil.which("curl"))


def test_show_tells_a_job_through_its_failures_to_its_image(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--max-side", "32", "--fail-first", "1")
    manifest = write(tmp_path / "m.yaml", manifest_text(17))
    assert run_cli(cli, manifest, served.url, "--max-attempts", "1").code == 1  # every job failed once
    assert run_cli(cli, manifest, served.url, "--credits-per-image", "0.5").code == 0
    lines = records(tmp_path / "output" / "t")
    job_id = lines[0]["job_id"]
    image = next(line["files"][0] for line in lines if line["job_id"] == job_id and line["status"] == "success")

    shown = cli("show", "output/t", job_id[:6])
    assert shown.code == 0, shown.err
    text = shown.out
    assert text.startswith(f"job {job_id} of prompt p: done\naxes: guidance=")
    assert '"prompt": "a lighthouse"' in text and "attempts: 2 over 2 records lines" in text
    assert "FAILED after 1 attempt: http 500\n" in text and "SUCCESS after 1 attempt (" in text and "0.5 credits)" in text
    assert f"output/t/{image}" in text and '"uuid": ' in text
    assert text.index("FAILED") < text.index("SUCCESS")

    by_image = cli("show", "output/t", f"output/t/{image}", "--json")
    assert by_image.code == 0
    data = json.loads(by_image.out)
    assert data["job_id"] == job_id and data["state"] == "done" and len(data["records"]) == 2

    ids = sorted({line["job_id"] for line in lines})
    shared = next(a[0] for a, b in zip(ids, ids[1:], strict=False) if a[0] == b[0])  # 17 ids, 16 first digits
    ambiguous = cli("show", "output/t", shared)
    assert ambiguous.code == 2 and f"{shared} is the start of " in ambiguous.err and "give more of it" in ambiguous.err
    unknown = cli("show", "output/t", "0" * 16 if not any(i.startswith("0000") for i in ids) else "f" * 16)
    assert unknown.code == 2 and "no job " in unknown.err and "`flux-batch export output/t -o -` lists every job" in unknown.err
    assert cli("show", "output/t", "lighthouse").code == 2


def test_show_of_a_job_not_sent_yet(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "run" / "manifest.yaml", manifest_text(2))
    job = json.loads(cli("plan", "--json", str(tmp_path / "run" / "manifest.yaml")).out.splitlines()[0])
    shown = cli("show", "run", job["job_id"])
    assert shown.code == 0 and ": pending" in shown.out and "not sent yet" in shown.out


def test_curl_reproduces_the_job_and_never_holds_the_key(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses, curl_binary: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = emulator_process("--max-side", "32", "--latency", "0.01,0.02")
    manifest = write(tmp_path / "q.yaml", QUOTED)
    assert run_cli(cli, manifest, served.url).code == 0
    line = records(tmp_path / "output" / "q")[1]

    monkeypatch.setenv("ONEMIN_API_KEY", SECRET)  # whatever the key, the command names only the variable
    command = cli("show", "output/q", line["job_id"], "--curl", "--base-url", served.url).out
    assert SECRET not in command and '-H "API-KEY: $ONEMIN_API_KEY"' in command
    assert command.startswith(f"curl -X POST '{served.url}/api/features' \\\n")

    environment = {"PATH": os.environ["PATH"], "ONEMIN_API_KEY": "emulator-key", "HOME": "/nonexistent"}
    sent = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=environment, timeout=60)
    assert sent.returncode == 0, sent.stderr
    answer = json.loads(sent.stdout)["aiRecord"]
    assert answer["aiRecordDetail"]["promptObject"] == line["request"]["promptObject"]  # quotes, $ and ` kept
    with urllib.request.urlopen(answer["temporaryUrl"], timeout=10) as picture:
        again = picture.read()
    assert again == (tmp_path / "output" / "q" / line["files"][0]).read_bytes()  # the same picture, made again

    # Without --base-url, a run dir made on the emulator points at the emulator's usual address.
    default = cli("show", "output/q", line["job_id"], "--curl").out
    assert default.startswith("# made on the emulator") and "'http://127.0.0.1:8080/api/features'" in default


def test_curl_of_an_image_to_image_job_uses_the_upload_or_says_how_to_make_it(
    cli: Cli, tmp_path: Path, emulator_process: EmulatorProcesses, curl_binary: str
) -> None:
    served = emulator_process("--max-side", "32", "--latency", "0.01,0.02")
    shutil.copy(SKETCH, tmp_path / "sketch.png")
    manifest = write(
        tmp_path / "i.yaml",
        "version: 1\nname: i\ndefaults: {megapixels: 0.25, image_prompt: sketch.png}\n"
        "prompts:\n  - {id: p, prompt: a cottage}\nsweep:\n  prompt_strength: [0.5]\nseeds: [3]\n",
    )
    assert run_cli(cli, manifest, served.url).code == 0
    line = records(tmp_path / "output" / "i")[0]
    command = cli("show", "output/i", line["job_id"], "--curl", "--base-url", served.url).out
    assert "/api/assets" not in command  # uploaded there already: the asset path is in the request
    environment = {"PATH": os.environ["PATH"], "ONEMIN_API_KEY": "emulator-key"}
    sent = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=environment, timeout=60)
    answer = json.loads(sent.stdout)["aiRecord"]
    assert answer["status"] == "SUCCESS"
    assert (
        answer["aiRecordDetail"]["promptObject"]["image_prompt"]
        == line["aiRecord"]["aiRecordDetail"]["promptObject"]["image_prompt"]
    )

    elsewhere = cli("show", "output/i", line["job_id"], "--curl", "--base-url", "https://relay.example").out
    assert "curl -X POST 'https://relay.example/api/assets'" in elsewhere
    assert f"-F 'asset=@{(tmp_path / 'sketch.png').resolve()}'" in elsewhere
    assert '"image_prompt": "ASSET_PATH_FROM_THE_UPLOAD"' in elsewhere


def test_a_message_with_terminal_escapes_reaches_no_terminal(cli: Cli, tmp_path: Path, hostile: Hostile) -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        message = "refused \x1b]0;owned\x07\x1b[2J\x9b31m with\r\nnew lines"
        return web.json_response({"errorCode": "BAD", "message": message, "aiRecord": {"note": "\x9b2J"}}, status=400)

    hostile.features = refuse
    run = run_cli(cli, write(tmp_path / "m.yaml", manifest_text(1)), hostile.url)
    line = records(tmp_path / "output" / "t")[0]
    assert line["error"]["message"] == "HTTP 400 BAD: refused \\x1b]0;owned\\x07\\x1b[2J\\x9b31m with new lines"
    said = [run.out, run.err, cli("status", "output/t").out, cli("show", "output/t", line["job_id"]).out]
    said += [cli("show", "output/t", line["job_id"], "--json").out, cli("export", "output/t", "-o", "-").out]
    for text in said:
        text = text.replace("\r\n", "\n")  # CSV ends its rows so, as RFC 4180 has it
        assert not any(c in text for c in "\x1b\x07\x9b\r"), repr(text)
    assert "refused \\x1b]0;owned" in said[2] and "refused \\x1b]0;owned" in said[3]
