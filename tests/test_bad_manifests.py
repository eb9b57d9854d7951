"""The corpus of bad manifests: each file states the messages `validate` must print for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, Cli

CORPUS = sorted((REPO / "tests" / "bad_manifests").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]


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
