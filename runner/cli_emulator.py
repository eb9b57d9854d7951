"""`flux-batch emulator`: serve the emulator, its knobs set from flags."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import fields
from typing import Any

from runner.knobs import DEFAULT_KEY, Knobs


def add_knob_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Knobs field, e.g. --server-error 0.1 or --latency 0.05,0.2."""
    for knob in fields(Knobs):
        flag = "--" + knob.name.replace("_", "-")
        default = knob.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple | frozenset) else default
        meaning = knob.metadata.get("help", "")
        parser.add_argument(flag, dest=f"knob_{knob.name}", metavar="VALUE", help=f"{meaning} (default {shown})")


def knobs_from(args: argparse.Namespace) -> Knobs:
    changes: dict[str, Any] = {}
    for knob in fields(Knobs):
        text = getattr(args, f"knob_{knob.name}", None)
        if text is None:
            continue
        declared = str(knob.type)  # e.g. "int | None", "tuple[float, float]"
        try:
            if declared.startswith("tuple"):
                changes[knob.name] = tuple(float(part) for part in text.split(","))
            elif declared.startswith("frozenset"):
                changes[knob.name] = frozenset(part for part in text.split(",") if part)
            elif declared.startswith("int"):
                changes[knob.name] = int(text)
            elif declared.startswith("str"):
                changes[knob.name] = text
            else:
                changes[knob.name] = float(text)
        except ValueError:
            raise ValueError(f"emulator: --{knob.name.replace('_', '-')}: cannot use {text!r}") from None
    return Knobs().with_(**changes)


def serve_emulator(knobs: Knobs, port: int) -> int:
    from runner.emulator import start  # the server's imports only when serving

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
