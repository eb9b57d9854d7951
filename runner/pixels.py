"""Opening a picture with a bound on its pixels: a 69-byte PNG can claim to be 60000 x 60000,
and decoding it would take gigabytes. Its size is read from the header and checked before a
single pixel is decoded. Pillow is imported only by the commands that decode pictures.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from PIL import Image

# Flux Dev makes 2 megapixels at most; a photo used as an input image may be a few dozen.
MAX_PIXELS = 50_000_000


class TooManyPixels(ValueError):
    """A picture larger than MAX_PIXELS (or one Pillow itself calls a decompression bomb)."""


@contextmanager
def open_bounded(source: Path | IO[bytes], formats: Sequence[str] | None = None) -> Iterator[Image.Image]:
    """Image.open, refusing a picture of more than MAX_PIXELS before anything is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the check below says more
            image = Image.open(source, formats=list(formats) if formats else None)
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"a picture of more than {MAX_PIXELS:,} pixels") from exc
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise TooManyPixels(f"{width} x {height} pixels, over the limit of {MAX_PIXELS:,}")
        yield image
