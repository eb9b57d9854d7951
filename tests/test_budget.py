"""The pool's memory budget for downloaded images (runner/budget.py)."""

from __future__ import annotations

import asyncio

from tests.hostile import Hostile


async def test_downloads_hold_no_more_than_the_memory_budget(hostile: Hostile) -> None:
    import aiohttp

    from runner.budget import MemoryBudget
    from runner.client import Client

    hostile.image = b"\x89PNG\r\n\x1a\n" + b"\0" * (20 * 1024**2) + b"IEND\xaeB`\x82"  # 20 MB, whole as far as a check sees
    budget = MemoryBudget(limit=50 * 1024**2)
    async with aiohttp.ClientSession() as session:
        client = Client(session, hostile.url, "k", request_timeout=30, budget=budget)

        async def fetch(n: int) -> None:
            picture = await client.download(f"{hostile.url}/asset/{n}.png")
            await asyncio.sleep(0.05)  # held until written, as the pool does
            budget.release(picture.held)

        await asyncio.gather(*(fetch(n) for n in range(12)))
    assert budget.used == 0
    assert 40 * 1024**2 <= budget.peak <= 50 * 1024**2  # 12 x 20 MB asked for, at most 2 held at once
