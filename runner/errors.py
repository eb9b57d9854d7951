"""The one error hierarchy of flux-batch; the CLI maps each branch to an exit code.

FluxBatchError                 anything flux-batch reports without a traceback
├── UsageError                 a bad flag or file argument                  (exit 2)
└── ManifestError              one or more problems in a manifest           (exit 2)
                               carries every Problem found, not only the first
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Exit codes of SPEC.md section 3 (and 130/143 for SIGINT/SIGTERM, kept beside the signals).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3


class FluxBatchError(Exception):
    """Base of every error flux-batch reports to its user as a message, not a traceback."""


class UsageError(FluxBatchError):
    """A command-line argument or a file named on the command line cannot be used."""


class RunLocked(FluxBatchError):
    """The run directory is being written by another live flux-batch process."""


class RunDirUnusable(FluxBatchError):
    """The run directory cannot be created, locked or written (a file in the way, no rights)."""


ERROR_KINDS = ("http", "timeout", "network", "invalid_response", "auth", "credits", "download", "validation")


class ApiError(FluxBatchError):
    """One exchange with the API that did not produce an image."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        assert kind in ERROR_KINDS, kind
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after

    @property
    def stops_run(self) -> bool:
        """A bad key or an empty account fails every job alike: stop, and resume later."""
        return self.kind in ("auth", "credits")

    def as_record(self) -> dict[str, object]:
        return {"kind": self.kind, "status": self.status, "message": self.message, "retryable": self.retryable}


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
