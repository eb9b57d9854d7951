"""Reading a manifest (runner/manifest.py): YAML 1.2 as written, every problem in one pass, and the
corpus of bad manifests, each file stating the messages `validate` must print for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import ManifestError
from runner.manifest import loads
from tests.conftest import (
    Cli,
)
from tests.support import CORPUS, expectations


def test_the_corpus_covers_every_kind_of_mistake() -> None:
    assert len(CORPUS) >= 25
    assert all(expectations(path) for path in CORPUS)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_manifest_is_refused_with_its_messages(path: Path, cli: Cli) -> None:
    result = cli("validate", str(path))
    assert result.code == 2
    assert result.out == ""
    for expected in expectations(path):
        assert f"{path}:{expected}" in result.err, result.err
    assert "nothing was sent to the API" in result.err
    assert "Traceback" not in result.err


MINIMAL = "version: 1\nname: t\nprompts:\n  - {id: a, prompt: a cat}\n"


def test_unquoted_ratios_and_times_stay_strings() -> None:
    # YAML 1.1 would read 16:9 as the sexagesimal number 969 and 06:30 as 390.
    manifest = loads(MINIMAL + "defaults:\n  aspect_ratio: 16:9\nrun:\n  deadline: 06:30\n")
    assert manifest.defaults["aspect_ratio"] == "16:9"
    assert manifest.run["deadline"] == "06:30"


def test_yaml11_words_and_octals_are_not_reinterpreted() -> None:
    manifest = loads(
        "version: 1\nname: t\nprompts:\n  - id: a\n    prompt: '{answer} {code} {day}'\n"
        "    vars: {answer: [yes, no, on], code: ['007', 011], day: [2026-01-01]}\n"
    )
    assert manifest.prompts[0].vars == (
        ("answer", ("yes", "no", "on")),
        ("code", ("007", "011")),
        ("day", ("2026-01-01",)),
    )


def test_megapixels_numbers_become_the_apis_strings() -> None:
    manifest = loads(MINIMAL + "defaults: {megapixels: 1}\nsweep:\n  megapixels: [0.25, 2]\n")
    assert manifest.defaults["megapixels"] == "1"
    assert manifest.sweep == (("megapixels", ("0.25", "2")),)


def test_integral_floats_become_integers_so_equal_requests_are_equal() -> None:
    manifest = loads(MINIMAL + "defaults: {num_inference_steps: 20.0, guidance: 3.0}\nseeds: [5.0]\n")
    assert manifest.defaults == {"num_inference_steps": 20, "guidance": 3}
    assert type(manifest.defaults["num_inference_steps"]) is int
    assert manifest.seeds == (5,)


def test_x_keys_are_ignored_and_hold_anchors() -> None:
    manifest = loads(
        "version: 1\nname: t\nx-look: &look {aspect_ratio: '4:5', guidance: 4}\n"
        "defaults:\n  <<: *look\n  guidance: 5\nprompts:\n  - {id: a, prompt: a cat}\n"
    )
    assert manifest.defaults == {"aspect_ratio": "4:5", "guidance": 5}


def test_problems_inside_merged_anchors_point_at_the_anchor_line() -> None:
    text = "version: 1\nname: t\nx-look: &look\n  guidanse: 4\ndefaults:\n  <<: *look\nprompts:\n  - {id: a, prompt: c}\n"
    with pytest.raises(ManifestError) as caught:
        loads(text, "m.yaml")
    assert [str(p) for p in caught.value.problems] == ["m.yaml:4: defaults.guidanse: unknown field (did you mean 'guidance'?)"]


def test_every_problem_is_reported_in_one_pass() -> None:
    text = (
        "version: 1\nname: t\ndefaults:\n  guidance: 99\n  quality: 5\n"
        "prompts:\n  - {id: a, prompt: '{x}'}\n  - {id: a, prompt: b}\n"
        "sweep:\n  num_inference_steps: [0, 10, 10]\nzip:\n  output_quality: [1, 2]\n  prompt_strength: [0.5]\n"
    )
    with pytest.raises(ManifestError) as caught:
        loads(text, "m.yaml")
    found = [(p.line, p.path) for p in caught.value.problems]
    assert found == [
        (4, "defaults.guidance"),
        (5, "defaults.quality"),
        (7, "prompts[0].prompt"),
        (8, "prompts[1].id"),
        (10, "sweep.num_inference_steps[0]"),
        (10, "sweep.num_inference_steps[2]"),
        (13, "zip.prompt_strength"),
    ]


def test_prompt_level_image_prompt_joins_the_prompts_fields() -> None:
    manifest = loads("version: 1\nname: t\nprompts:\n  - {id: a, prompt: c, image_prompt: images/x.png, params: {guidance: 2}}\n")
    assert manifest.prompts[0].fields == {"guidance": 2, "image_prompt": "images/x.png"}


def test_a_multi_document_file_is_refused() -> None:
    with pytest.raises(ManifestError) as caught:
        loads(MINIMAL + "---\nversion: 1\n", "m.yaml")
    assert "m.yaml:5: YAML syntax error: found another document (expected a single document" in str(caught.value)
