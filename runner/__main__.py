"""`python -m runner`, and the `flux-batch` command (pyproject's [project.scripts])."""

from __future__ import annotations

import gc


def main() -> int:
    # Start-up makes a hundred thousand objects that live as long as the process, and the
    # cyclic collector would walk them over and over while they are made. runner.cli turns it
    # back on, with them frozen out of its way, once the verb's imports are done.
    gc.disable()
    from runner.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
