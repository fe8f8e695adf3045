"""Errors that carry what the user did wrong; the CLI turns them into exit code 2."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input (a file, a column, a flag value). The message names the culprit."""
