"""Errors shared across commands."""


class UsageError(Exception):
    """A mistake the user can fix; the CLI prints it as one sentence and exits 2."""
