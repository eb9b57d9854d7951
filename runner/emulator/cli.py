"""`flux-batch emulator`: serve the emulator, its knobs set from flags."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from runner.emulator.knobs import DEFAULT_KEY, Knobs, knobs_from
from runner.errors import UsageError


def emulator_command(args: argparse.Namespace) -> int:
    try:
        knobs = knobs_from(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return serve_emulator(knobs, args.port)


def serve_emulator(knobs: Knobs, port: int) -> int:
    from runner.emulator.server import start  # the server's imports only when serving

    async def serve() -> None:
        _, runner, url = await start(knobs, port=port)
        print(f"emulator of the 1min.ai API listening on {url} (API key: {DEFAULT_KEY}); Ctrl-C stops it", flush=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopped.set)
        try:
            await stopped.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except OSError as exc:
        print(f"flux-batch emulator: cannot listen on port {port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
