"""flux-batch: a batch runner for the Flux Dev image generator behind the 1min.ai API."""

__version__ = "0.1.0"
