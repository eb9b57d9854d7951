"""The one error hierarchy of flux-batch; the CLI maps each branch to an exit code.

FluxBatchError                 anything flux-batch reports without a traceback
├── UsageError                 a bad flag or file argument                  (exit 2)
└── ManifestError              one or more problems in a manifest           (exit 2)
                               carries every Problem found, not only the first
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class FluxBatchError(Exception):
    """Base of every error flux-batch reports to its user as a message, not a traceback."""


class UsageError(FluxBatchError):
    """A command-line argument or a file named on the command line cannot be used."""


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong with a manifest, located as precisely as the YAML allows."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(FluxBatchError):
    """A manifest that cannot be run; `problems` lists everything found, in file order.

    `stage` says which checks ran: "fields" (each value, list and name on its own) or "grid"
    (the whole expansion, which needs every field to be sound first).
    """

    def __init__(self, problems: Iterable[Problem], stage: str = "fields") -> None:
        self.stage = stage
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.path, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))
