"""Local input images for image-to-image: found, checked and fingerprinted when a manifest loads.

An `image_prompt` is a local file when it names an existing file relative to the manifest, or
when it clearly means one: it starts with ./ ../ / or ~, or its first directory exists beside
the manifest (so a typo in `inputs/skech.png` is caught, not sent). Anything else is an asset
path or URL and is sent as written.

A local file is replaced by the token "sha256:<hex of its content>": the job id then depends on
the picture, not on its name or its upload, and the run uploads each content once.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeGuard

TOKEN_PREFIX = "sha256:"
MAX_INPUT_BYTES = 20 * 1024 * 1024
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")

Report = Callable[[tuple[str | int, ...], str], None]


def is_token(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def resolve(data: dict[str, Any], base_dir: Path, report: Report) -> dict[str, Path]:
    """Replace every local image_prompt in `data` by its token; return token -> file."""
    found: dict[str, Path] = {}
    for path, container, key in _image_prompt_slots(data):
        value = container[key]
        if not isinstance(value, str):
            continue
        local = _local_path(value, base_dir)
        if local is None:
            continue
        problem = _check(local, value)
        if problem:
            report(path, problem)
            continue
        token = TOKEN_PREFIX + hashlib.sha256(local.read_bytes()).hexdigest()
        found[token] = local
        container[key] = token
    return found


def _image_prompt_slots(data: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Any, Any]]:
    """(path, container, key) of every place an image_prompt can be written."""
    if isinstance(data.get("defaults"), dict) and "image_prompt" in data["defaults"]:
        yield ("defaults", "image_prompt"), data["defaults"], "image_prompt"
    for index, prompt in enumerate(data.get("prompts") or []):
        if not isinstance(prompt, dict):
            continue
        if "image_prompt" in prompt:
            yield ("prompts", index, "image_prompt"), prompt, "image_prompt"
        params = prompt.get("params")
        if isinstance(params, dict) and "image_prompt" in params:
            yield ("prompts", index, "params", "image_prompt"), params, "image_prompt"
    for axes_key in ("sweep", "zip"):
        axes = data.get(axes_key)
        values = axes.get("image_prompt") if isinstance(axes, dict) else None
        for position in range(len(values) if isinstance(values, list) else 0):
            yield (axes_key, "image_prompt", position), values, position


def _local_path(value: str, base_dir: Path) -> Path | None:
    if "://" in value:
        return None
    candidate = (base_dir / Path(value).expanduser()).resolve()
    if candidate.is_file():
        return candidate
    first = Path(value).parts[0] if Path(value).parts else ""
    explicit = value.startswith(("./", "../", "/", "~"))
    if explicit or (len(Path(value).parts) > 1 and (base_dir / first).is_dir()):
        return candidate
    return None


def _check(path: Path, written: str) -> str | None:
    if not path.is_file():
        nearby = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
        close = difflib.get_close_matches(path.name, nearby, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"no such file: {written!r} (looked for {path}){hint}"
    size = path.stat().st_size
    if size > MAX_INPUT_BYTES:
        return f"{written!r} is {size / 1024**2:.1f} MB; input images are limited to {MAX_INPUT_BYTES // 1024**2} MB"
    from PIL import UnidentifiedImageError  # only for manifests with local input images

    from runner.pixels import TooManyPixels, open_bounded

    try:
        with open_bounded(path, ACCEPTED_FORMATS) as image:
            image.verify()
    except TooManyPixels as exc:
        return f"{written!r} is {exc}"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return f"{written!r} is not a {', '.join(ACCEPTED_FORMATS[:-1])} or {ACCEPTED_FORMATS[-1]} image"
    return None
