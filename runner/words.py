"""Small helpers for what flux-batch says: light to import, as every verb says something."""

from __future__ import annotations


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """`n` and its noun, in the singular for one: "1 job", "2 jobs", "1 retry", "3 retries"."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"
