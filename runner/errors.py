"""The one error hierarchy of flux-batch; the CLI maps each branch to an exit code.

FluxBatchError                 anything flux-batch reports without a traceback
├── UsageError                 a bad flag or file argument                              (exit 2)
│   └── EndpointMismatch       a run dir made on the emulator used for the API, or back (exit 2)
├── ManifestError              one or more problems in a manifest                       (exit 2)
│                              carries every Problem found, not only the first
├── TemplateError              a prompt text with a brace that is no placeholder (becomes a Problem)
├── RunLocked                  the run dir is being written by another live invocation  (exit 2)
├── RunDirUnusable             the run dir cannot be created, locked or written         (exit 2)
├── ApiError                   one exchange with the API that did not produce an image, of an
│                              ErrorKind (recorded with the job, or a StopReason for the run)
└── StillRunning               a paid asynchronous generation that outlived its polling
                               (recorded with its aiRecord; the next run polls it again)

Why a run stopped early is a `StopReason`, which carries its exit code and its advice.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runner.words import printable

# Exit codes of the command line (and 128 + N for a signal N, kept beside the signals).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3


class FluxBatchError(Exception):
    """Base of every error flux-batch reports to its user as a message, not a traceback."""


class UsageError(FluxBatchError):
    """A command-line argument or a file named on the command line cannot be used."""


class EndpointMismatch(UsageError):
    """The run dir's images came from another kind of endpoint (the emulator, or a real API)."""


class RunLocked(FluxBatchError):
    """The run directory is being written by another live flux-batch process."""


class RunDirUnusable(FluxBatchError):
    """The run directory cannot be created, locked or written (a file in the way, no rights)."""


class TemplateError(FluxBatchError, ValueError):
    """A prompt text that cannot be read as a template: a lone brace."""


MAX_MESSAGE = 1000  # characters of an error message kept: a server's novel is not a record


class ErrorKind(enum.StrEnum):
    """What went wrong with one job, as a failed records line says it."""

    HTTP = "http"
    TIMEOUT = "timeout"
    NETWORK = "network"
    INVALID_RESPONSE = "invalid_response"
    AUTH = "auth"
    CREDITS = "credits"
    DOWNLOAD = "download"
    VALIDATION = "validation"


class StopReason(enum.StrEnum):
    """Why a run stopped dispatching before every job was sent; the value is what summary.json,
    status and run.log say."""

    SIGNAL = "signal"
    AUTH = "auth"
    CREDITS = "credits"
    DEADLINE = "deadline"
    MAX_JOBS = "max_jobs"
    MAX_CREDITS = "max_credits"
    DISK = "disk"
    WRITER = "writer"
    REDIRECT = "redirect"
    ENDPOINT = "endpoint"

    @property
    def exit_code(self) -> int:
        """The exit code of a run stopped for this reason (a signal's own is 128 + its number)."""
        return EXIT_USAGE if self is StopReason.ENDPOINT else EXIT_STOPPED

    @property
    def advice(self) -> str:
        return _ADVICE[self]


_ADVICE = {
    StopReason.SIGNAL: "Run the same command again to resume.",
    StopReason.AUTH: "Check ONEMIN_API_KEY, then run the same command again to resume.",
    StopReason.CREDITS: "Top up the account, then run the same command again to resume.",
    StopReason.DEADLINE: "Run the same command again to resume.",
    StopReason.MAX_JOBS: "Run the same command again for the next jobs.",
    StopReason.MAX_CREDITS: "Run the same command again for the next jobs.",
    StopReason.DISK: "Free some space, then run the same command again to resume.",
    StopReason.WRITER: "Nothing was lost; run the same command again to resume.",
    StopReason.REDIRECT: "Point --base-url (or ONEMIN_BASE_URL) at the address that answers, then run again.",
    StopReason.ENDPOINT: "Run into another directory (--out DIR); nothing was recorded here.",
}


class ApiError(FluxBatchError):
    """One exchange with the API that did not produce an image."""

    def __init__(
        self,
        kind: ErrorKind | str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        stop: StopReason | None = None,
    ) -> None:
        message = printable(message)  # a server's bytes, bound for a terminal and a records line
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        super().__init__(message)
        self.kind = ErrorKind(kind)  # a ValueError for a kind no records line may hold
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        # A bad key or an empty account fails every job alike: stop, and resume later.
        self.stop = stop or {ErrorKind.AUTH: StopReason.AUTH, ErrorKind.CREDITS: StopReason.CREDITS}.get(self.kind)

    @property
    def stops_run(self) -> bool:
        return self.stop is not None


class StillRunning(FluxBatchError):
    """An asynchronous generation outlived its polling: paid for, not yet finished. Its aiRecord
    is recorded with `error`, and the next run polls it again instead of paying twice."""

    def __init__(self, error: ApiError, ai_record: dict[str, Any]) -> None:
        super().__init__(error.message)
        self.error = error
        self.ai_record = ai_record


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
