"""The emulator of the 1min.ai Flux Dev API: a package of its own, apart from the pipeline.

    knobs.py     how it behaves (light: the command line declares its flags from them)
    server.py    the aiohttp application and `start`
    pictures.py  the pictures it draws
    cli.py       `flux-batch emulator`

No module of the pipeline imports it: only the command line (`--emulator`, `emulator`) and the
tests do.
"""
