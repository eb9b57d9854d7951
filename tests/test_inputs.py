"""Local input images (runner/inputs.py): checked, bounded and fingerprinted as the manifest loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner import inputs
from runner.errors import ManifestError
from runner.manifest import load
from runner.plan import make_plan
from tests.conftest import (
    Cli,
    write,
)
from tests.hostile import bomb_png
from tests.support import OTHER, SKETCH


def test_a_bomb_as_an_input_image_is_a_manifest_error(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "bomb.png").write_bytes(bomb_png())
    manifest = write(
        tmp_path / "m.yaml", "version: 1\nname: t\nprompts:\n  - {id: a, prompt: x, image_prompt: inputs/bomb.png}\n"
    )
    result = cli("validate", str(manifest))
    assert result.code == 2
    assert f"{manifest}:4: prompts[0].image_prompt: 'inputs/bomb.png' is a picture of more than 50,000,000 pixels" in result.err
    assert "Traceback" not in result.err


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
