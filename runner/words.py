"""Small helpers for what flux-batch says: light to import, as every verb says something."""

from __future__ import annotations


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """`n` and its noun, in the singular for one: "1 job", "2 jobs", "1 retry", "3 retries"."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """`text` with its control characters written out ("\\x1b"): a server's message or a
    manifest's text can hold escape sequences that would rewrite the user's terminal."""
    return text.translate(_CONTROLS)
