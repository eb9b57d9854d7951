"""Input images on their way to the Asset API (runner/uploads.py): once per picture and endpoint,
the bytes checked against their id, retried, and uploaded again once when the API lost them."""

from __future__ import annotations

import json
from pathlib import Path

from runner.manifest import loads
from runner.plan import make_plan
from runner.store import RunDir
from tests.conftest import (
    FAST,
    Api,
    EmulatorProcesses,
    records,
    run_module,
    run_text,
    write,
)
from tests.hostile import png
from tests.support import REPO, flux_batch, three_arms


async def test_an_input_picture_changed_after_loading_is_not_sent_under_the_old_id(api: Api, tmp_path: Path) -> None:
    from runner.endpoint import Endpoint
    from runner.execute import run_plan
    from runner.settings import RunSettings
    from runner.stop import Stop
    from tests.conftest import QUICK_RETRIES

    server, url = await api()
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "a.png").write_bytes(png(colour=(1, 2, 3)))
    text = "version: 1\nname: t\nprompts:\n  - {id: a, prompt: x, image_prompt: inputs/a.png}\nsweep: {guidance: [1, 2]}\n"
    plan = make_plan(loads(text, "m.yaml", tmp_path))
    (tmp_path / "inputs" / "a.png").write_bytes(png(colour=(9, 9, 9)))  # edited after the manifest was read
    with RunDir.open(tmp_path / "run", text, endpoint=Endpoint(url)) as run_dir:
        result = await run_plan(plan, run_dir, RunSettings(), url, "emulator-key", Stop(), policy=QUICK_RETRIES)
    assert server.stats.uploads == 0 and server.stats.requests["features"] == 0
    assert result.summary.failures_by_kind == {"validation": 2}
    assert all("changed on disk after the run started" in line["error"]["message"] for line in records(tmp_path / "run"))


async def test_each_picture_is_uploaded_once_and_a_rerun_uploads_nothing(api: Api, tmp_path: Path, inputs_dir: Path) -> None:
    server, url = await api()
    text = three_arms(tmp_path)
    manifest = write(tmp_path / "m.yaml", text)
    summary, _ = await run_text(manifest.read_text(), tmp_path / "run", url, base_dir=tmp_path)
    assert summary["jobs"]["succeeded"] == 6 and summary["uploads"] == 2
    assert server.stats.uploads == 2
    sent = {line["prompt_id"]: line["request"]["promptObject"]["image_prompt"] for line in records(tmp_path / "run")}
    assert sent["a"] == sent["b"] != sent["c"]
    assert all(path.startswith("development/assets/") for path in sent.values())
    assert {line["aiRecord"]["aiRecordDetail"]["promptObject"]["image_prompt"] for line in records(tmp_path / "run")} == set(
        sent.values()
    )

    manifest.write_text(three_arms(tmp_path, "[0.4, 0.8, 1]"))
    summary, _ = await run_text(manifest.read_text(), tmp_path / "run", url, base_dir=tmp_path)
    assert summary["jobs"]["submitted"] == 3 and summary["uploads"] == 0
    assert server.stats.uploads == 2


async def test_asset_paths_and_urls_are_sent_as_written(api: Api, tmp_path: Path) -> None:
    server, url = await api()
    text = (
        "version: 1\nname: t\nprompts:\n  - {id: a, prompt: x}\n"
        "sweep:\n  image_prompt: [development/assets/not-uploaded.png, 'https://example.org/pic.png']\nseeds: [1]\n"
    )
    summary, _ = await run_text(text, tmp_path / "run", url)
    assert server.stats.uploads == 0
    lines = {line["request"]["promptObject"]["image_prompt"]: line for line in records(tmp_path / "run")}
    assert lines["https://example.org/pic.png"]["status"] == "success"
    refused = lines["development/assets/not-uploaded.png"]["error"]
    assert refused["kind"] == "validation" and "cannot load the input image" in refused["message"]


def test_the_img2img_example_runs_with_one_upload(tmp_path: Path) -> None:
    done = run_module(tmp_path, "run", str(REPO / "manifests" / "img2img.yaml"), "--emulator", "--out", "out")
    assert done.returncode == 0, done.stderr
    assert "img2img: 6 of 6 jobs done" in done.stdout
    # The built-in emulator forgets its uploads when it stops: none are kept for a later run.
    assert not (tmp_path / "out" / "assets.json").exists()
    status = run_module(tmp_path, "status", "out")
    assert "6 jobs: 6 done, 0 failed, 0 pending" in status.stdout


async def test_uploads_are_retried_like_any_request(api: Api, tmp_path: Path, inputs_dir: Path) -> None:
    server, url = await api(FAST.with_(upload_fail_first=3))
    summary, _ = await run_text(three_arms(tmp_path), tmp_path / "run", url, base_dir=tmp_path)
    assert summary["jobs"]["succeeded"] == 6 and summary["uploads"] == 2
    assert server.stats.requests["assets"] == 5 and server.stats.uploads == 2


def test_uploads_belong_to_their_endpoint_and_a_lost_one_is_uploaded_again_once(
    tmp_path: Path, emulator_process: EmulatorProcesses
) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "sketch.png").write_bytes((REPO / "manifests" / "inputs" / "cottage-sketch.png").read_bytes())

    def manifest(strengths: str) -> Path:
        return write(
            tmp_path / "m.yaml",
            "version: 1\nname: i2i\ndefaults: {megapixels: 0.25, image_prompt: inputs/sketch.png}\n"
            f"prompts:\n  - {{id: a, prompt: watercolour}}\nsweep:\n  prompt_strength: {strengths}\nseeds: [1]\n",
        )

    one = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    two = emulator_process("--latency", "0.01,0.02", "--max-side", "32")
    assert flux_batch(tmp_path, "run", str(manifest("[0.3]")), "--base-url", one.url).returncode == 0
    moved = flux_batch(tmp_path, "run", str(manifest("[0.3, 0.6]")), "--base-url", two.url)
    assert moved.returncode == 0, moved.stderr
    assert (one.stats()["uploads"], two.stats()["uploads"]) == (1, 1)  # the picture went to the new endpoint too
    assets = json.loads((tmp_path / "output" / "i2i" / "assets.json").read_text())
    assert set(assets["endpoints"]) == {one.url, two.url}

    # The endpoint lost the upload it holds a record of: it says it cannot load it.
    assets["endpoints"][two.url] = {token: "development/assets/long-gone.png" for token in assets["endpoints"][two.url]}
    (tmp_path / "output" / "i2i" / "assets.json").write_text(json.dumps(assets))
    healed = flux_batch(tmp_path, "run", str(manifest("[0.3, 0.6, 0.9]")), "--base-url", two.url)
    assert healed.returncode == 0, healed.stderr
    assert two.stats()["uploads"] == 2
    assert all(line["status"] == "success" for line in records(tmp_path / "output" / "i2i"))
