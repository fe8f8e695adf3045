"""Command-line entry points: one module per command, each with ``register`` and ``run``."""
