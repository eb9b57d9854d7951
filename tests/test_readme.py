"""The README and SECURITY.md: they point at nothing outside the repository, and at tests that exist."""

from __future__ import annotations

import re

from tests.support import REPO


def test_the_readme_cites_nothing_outside_the_repository() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "SPEC.md" not in readme
    for target in re.findall(r"\]\((?!https?://|#)([^)]+)\)", readme):
        assert (REPO / target).exists(), target


def test_every_test_security_md_names_exists() -> None:
    promises = (REPO / "SECURITY.md").read_text(encoding="utf-8")
    named = re.findall(r"`(?:tests/)?(test_\w+\.py)(?:::(\w+))?", promises)
    assert len(named) > 20
    for file, function in named:
        source = (REPO / "tests" / file).read_text(encoding="utf-8")
        assert not function or f"def {function}(" in source, f"{file}::{function}"
