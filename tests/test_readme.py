"""The README, the front door: it points at nothing outside the repository."""

from __future__ import annotations

import re

from tests.support import REPO


def test_the_readme_cites_nothing_outside_the_repository() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "SPEC.md" not in readme
    for target in re.findall(r"\]\((?!https?://|#)([^)]+)\)", readme):
        assert (REPO / target).exists(), target
