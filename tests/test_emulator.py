"""The emulator command (runner/emulator/)."""

from __future__ import annotations

from tests.conftest import (
    EmulatorProcesses,
)


def test_the_emulator_command_serves_on_loopback(emulator_process: EmulatorProcesses) -> None:
    served = emulator_process("--latency", "0.01,0.02", "--credits", "3")
    assert served.url.startswith("http://127.0.0.1:")
    assert served.stats()["requests"] == {}
