"""Image-to-image: local input files are checked, fingerprinted, and uploaded once per run dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner import inputs
from runner.errors import ManifestError
from runner.manifest import load
from runner.plan import make_plan
from tests.conftest import REPO, Api, Cli, records, run_module, run_text, write

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


@pytest.fixture
def inputs_dir(tmp_path: Path) -> Path:
    (tmp_path / "inputs").mkdir()
    return tmp_path / "inputs"


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


def test_the_job_id_follows_the_content_not_the_name(tmp_path: Path, inputs_dir: Path) -> None:
    shutil.copy(SKETCH, inputs_dir / "first.png")
    shutil.copy(SKETCH, inputs_dir / "renamed.png")
    ids = []
    for name in ("first.png", "renamed.png"):
        manifest = write(
            tmp_path / "m.yaml", f"version: 1\nname: t\nprompts:\n  - {{id: a, prompt: x, image_prompt: inputs/{name}}}\n"
        )
        ids.append([job.job_id for job in make_plan(load(manifest)).jobs()])
    assert ids[0] == ids[1]
    manifest = write(
        tmp_path / "m.yaml", "version: 1\nname: t\nprompts:\n  - {id: a, prompt: x, image_prompt: inputs/first.png}\n"
    )
    shutil.copy(OTHER, inputs_dir / "first.png")
    assert [job.job_id for job in make_plan(load(manifest)).jobs()] != ids[0]


@pytest.mark.parametrize(
    ("written", "make", "message"),
    [
        ("inputs/cottag.png", None, "no such file: 'inputs/cottag.png'"),
        ("./elsewhere/x.png", None, "no such file: './elsewhere/x.png'"),
        ("inputs/notes.png", b"these are notes, not a picture", "'inputs/notes.png' is not a PNG, JPEG or WEBP image"),
    ],
)
def test_a_missing_or_unreadable_input_is_a_manifest_error(
    cli: Cli, tmp_path: Path, inputs_dir: Path, written: str, make: bytes | None, message: str
) -> None:
    shutil.copy(SKETCH, inputs_dir / "cottage.png")
    if make is not None:
        (tmp_path / written).write_bytes(make)
    manifest = write(
        tmp_path / "m.yaml", f"version: 1\nname: t\nprompts:\n  - id: a\n    prompt: x\n    image_prompt: {written}\n"
    )
    result = cli("validate", str(manifest))
    assert result.code == 2
    assert f"{manifest}:6: prompts[0].image_prompt: {message}" in result.err


def test_a_missing_file_gets_a_did_you_mean(cli: Cli, tmp_path: Path, inputs_dir: Path) -> None:
    shutil.copy(SKETCH, inputs_dir / "cottage.png")
    manifest = write(
        tmp_path / "m.yaml",
        "version: 1\nname: t\ndefaults: {image_prompt: inputs/cotage.png}\nprompts:\n  - {id: a, prompt: x}\n",
    )
    assert "(did you mean 'cottage.png'?)" in cli("validate", str(manifest)).err


def test_an_oversized_input_is_refused(tmp_path: Path, inputs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 1000)
    shutil.copy(SKETCH, inputs_dir / "cottage.png")
    manifest = write(
        tmp_path / "m.yaml", "version: 1\nname: t\nprompts:\n  - {id: a, prompt: x, image_prompt: inputs/cottage.png}\n"
    )
    with pytest.raises(ManifestError, match="input images are limited to 0 MB"):
        load(manifest)


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
    from tests.conftest import FAST

    server, url = await api(FAST.with_(upload_fail_first=3))
    summary, _ = await run_text(three_arms(tmp_path), tmp_path / "run", url, base_dir=tmp_path)
    assert summary["jobs"]["succeeded"] == 6 and summary["uploads"] == 2
    assert server.stats.requests["assets"] == 5 and server.stats.uploads == 2
