"""Exceptions for bad user input.

The CLI prints a :class:`FerKaggleError` as one line on stderr and exits with status 2,
so its message must name the file (and row or key), what was expected and how to fix it.
"""


class FerKaggleError(Exception):
    """Invalid user input: a data file, a config, or a command-line value."""


class DataError(FerKaggleError):
    """A data file that cannot be read or does not have the expected content."""


class ConfigError(FerKaggleError):
    """A config file or option with a missing, unknown or invalid value."""
