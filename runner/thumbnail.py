"""Making a thumbnail: for the report (a process per core, at its end) and, run as
`python -P -m runner.thumbnail`, for a run (one process of low priority beside it, fed a JSON
line [image, thumbnail] per picture as it lands; see thumbs.py).

A thumbnail is written to a name of its own process's and renamed into place, so two makers of
the same one (the run's and a report's) never mix their bytes, and a maker stopped mid-way
leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from PIL import UnidentifiedImageError

from runner.pixels import TooManyPixels, open_bounded
from runner.thumbs import THUMB_SIDE

_NICENESS = 10  # below the run and everything else on the machine: it only saves time later


PARTIAL = ".partial-"  # a thumbnail being made: .partial-<pid of its maker>-<name>


def make(image: Path, thumb: Path) -> str | None:
    """Make `thumb` from `image`; None if made, else why the picture cannot be shown."""
    temp = thumb.with_name(f"{PARTIAL}{os.getpid()}-{thumb.name}")
    try:
        with open_bounded(image) as picture:
            if picture.format == "WEBP" and max(picture.size) <= THUMB_SIDE and _linked(image, thumb):
                return None  # already thumbnail-sized: the picture itself, under a second name
            picture.thumbnail((THUMB_SIDE, THUMB_SIDE))
            picture.convert("RGB").save(temp, format="WEBP", quality=80)
        os.replace(temp, thumb)
        return None
    except TooManyPixels as exc:
        return f"not shown: {exc}"
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        temp.unlink(missing_ok=True)
        return f"not shown: the file cannot be read as a picture ({type(exc).__name__})"
    except BaseException:  # stopped mid-way (SIGTERM in the run's thumbnail process)
        temp.unlink(missing_ok=True)
        raise


def abandoned(name: str) -> bool:
    """A partial thumbnail whose maker is gone (killed, or the machine stopped under it)."""
    if not name.startswith(PARTIAL):
        return False
    pid = name.removeprefix(PARTIAL).split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # alive, another user's; or no such pid at all
    return False


def _linked(image: Path, name: Path) -> bool:
    """A hard link is made whole or not at all: no temporary name is needed."""
    try:
        os.link(image, name)
        return True
    except FileExistsError:
        return True  # made meanwhile, by another maker of the same one
    except OSError:  # a file system without hard links: a thumbnail is made instead
        return False


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    """The run's thumbnail process: a line in, a thumbnail out, until its input ends or a
    SIGTERM; every failure is the report's to find and say."""
    os.nice(_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    folders: set[Path] = set()
    for line in sys.stdin.buffer:
        try:
            image, thumb = (Path(name) for name in json.loads(line))
            if thumb.parent not in folders:
                thumb.parent.mkdir(parents=True, exist_ok=True)
                folders.add(thumb.parent)
        except (ValueError, TypeError, OSError):
            continue
        if not thumb.exists():
            make(image, thumb)


if __name__ == "__main__":
    main()
