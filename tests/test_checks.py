"""What only the whole grid shows (runner/checks.py)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import (
    Cli,
    manifest_text,
    write,
)
from tests.support import REPO


def test_a_grid_past_the_limit_is_refused_by_every_verb_unless_lifted(cli: Cli, tmp_path: Path) -> None:
    huge = REPO / "tests" / "bad_manifests" / "grid-too-large.yaml"
    started = time.monotonic()
    for verb in (["validate"], ["plan"], ["plan", "--json"], ["run", "--max-jobs", "3", "--emulator"]):
        result = cli(*verb, str(huge))
        assert result.code == 2 and "over the limit of 1,000,000 a manifest" in result.err, verb
    assert time.monotonic() - started < 5
    assert not (tmp_path / "output").exists()
    manifest = write(tmp_path / "m.yaml", manifest_text(12))
    assert cli("validate", str(manifest), "--max-grid", "11").code == 2
    assert cli("validate", str(manifest), "--max-grid", "12").code == 0
