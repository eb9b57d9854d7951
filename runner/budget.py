"""A bound on the bytes of downloaded images the pool holds in memory at once.

An image is held from its download until the disk writer has committed it. Sixty-four workers
each holding a few 64 MB answers would take gigabytes, so every download first reserves its
size here (its Content-Length, or the per-image cap when the host does not say) and waits, in
turn, while the pool holds too much. A reservation larger than the whole budget still goes
through once nothing else is held, so no size can stall the run; and only one job at a time
may hold several images (`several_results`), so no two jobs wait on each other while holding.
"""

from __future__ import annotations

import asyncio
from collections import deque

DEFAULT_LIMIT = 256 * 1024 * 1024


class MemoryBudget:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()  # first come, first served
        self.several_results = asyncio.Lock()  # held by the one job downloading several images

    async def acquire(self, size: int) -> int:
        """Reserve `size` bytes, waiting while others hold too much; returns what was reserved."""
        if not self._waiters and self._fits(size):
            self._take(size)
            return size
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted, then cancelled: the bytes go to the next in line
            elif entry in self._waiters:
                self._waiters.remove(entry)
                self._grant()
            raise
        return size

    def release(self, size: int) -> None:
        self.used -= size
        self._grant()

    def _fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    def _take(self, size: int) -> None:
        self.used += size
        self.peak = max(self.peak, self.used)

    def _grant(self) -> None:
        while self._waiters:
            size, waiter = self._waiters[0]
            if waiter.done():  # its holder was cancelled while waiting
                self._waiters.popleft()
                continue
            if not self._fits(size):
                return
            self._waiters.popleft()
            self._take(size)
            waiter.set_result(None)
