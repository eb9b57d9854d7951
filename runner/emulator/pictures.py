"""The emulator's images: real WebP files drawn with Pillow, deterministic in prompt and seed.

Size follows the promptObject (aspect ratio, megapixels or custom width/height), and guidance
and steps change the picture visibly, so a gallery of a sweep reads like one.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import random
import textwrap
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

_RATIOS = {"1:1": (1, 1), "16:9": (16, 9), "9:16": (9, 16), "3:2": (3, 2), "2:3": (2, 3), "4:5": (4, 5), "5:4": (5, 4)}


def size_of(prompt_object: dict[str, Any], max_side: int | None = None) -> tuple[int, int]:
    """Width and height the provider would make, scaled down to `max_side` if given."""
    if prompt_object.get("aspect_ratio") == "custom":
        width, height = int(prompt_object["width"]), int(prompt_object["height"])
    else:
        a, b = _RATIOS.get(str(prompt_object.get("aspect_ratio", "1:1")), (1, 1))
        pixels = float(prompt_object.get("megapixels", "1")) * 1_000_000
        width = round(math.sqrt(pixels * a / b) / 16) * 16
        height = round(width * b / a / 16) * 16
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return width, height


@functools.lru_cache(maxsize=64)
def _background(width: int, height: int, low: tuple[int, ...], high: tuple[int, ...]) -> Image.Image:
    """A prompt's gradient at one size: made once, as a sweep draws the same one over and over
    (resizing the 256x256 gradient was a third of the emulator's time per tiny image)."""
    return ImageOps.colorize(Image.linear_gradient("L").resize((width, height)), low, high).convert("RGB")


def draw(prompt_object: dict[str, Any], max_side: int | None = None, source: bytes | None = None) -> tuple[bytes, str, str]:
    """(bytes, content type, extension) of the image for `prompt_object`; with an input image
    (`source`), the picture keeps as much of it as `prompt_strength` leaves, as img2img does."""
    width, height = size_of(prompt_object, max_side)
    prompt = str(prompt_object.get("prompt", ""))
    seed = int(prompt_object.get("seed", 0))
    theme = random.Random(hashlib.sha256(prompt.encode()).digest())
    dice = random.Random(f"{prompt}/{seed}")
    low = tuple(theme.randrange(20, 120) for _ in range(3))
    high = tuple(theme.randrange(120, 256) for _ in range(3))
    image = _background(width, height, low, high).copy()
    canvas = ImageDraw.Draw(image)
    guidance = float(prompt_object.get("guidance", 3.5))
    steps = int(prompt_object.get("num_inference_steps", 28))
    # More steps draw more shapes; more guidance draws them with stronger outlines.
    for _ in range(3 + steps // 4):
        x, y = dice.uniform(0, width), dice.uniform(0, height)
        r = dice.uniform(0.03, 0.18) * min(width, height)
        fill = tuple(dice.randrange(256) for _ in range(3))
        outline_width = max(1, round(guidance / 50 * min(width, height) / 40))
        shape = canvas.ellipse if dice.random() < 0.5 else canvas.rectangle
        shape((x - r, y - r, x + r, y + r), fill=fill, outline=(255, 255, 255), width=outline_width)
    if source is not None:
        from runner.pixels import open_bounded

        with open_bounded(io.BytesIO(source)) as original:
            base = ImageOps.fit(original.convert("RGB"), (width, height))
        image = Image.blend(base, image, float(prompt_object.get("prompt_strength", 0.8)))
        canvas = ImageDraw.Draw(image)
    if min(width, height) >= 96:
        font = ImageFont.load_default(size=max(10, min(width, height) // 24))
        caption = textwrap.fill(prompt, width=max(12, width // max(8, min(width, height) // 40)))[:400]
        label = f"{caption}\nseed {seed} · guidance {guidance:g} · steps {steps}"
        canvas.multiline_text((12, 12), label, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=int(prompt_object.get("output_quality", 80)))
    return out.getvalue(), "image/webp", "webp"
