"""Errors that users see: each names the problem and, where it can, the file, line or key."""

from __future__ import annotations


class SemidError(Exception):
    """Base class for errors reported to the user without a traceback."""


class ConfigError(SemidError):
    """A config file or override is invalid (unknown key, bad value)."""


class Interrupted(SemidError):
    """The user stopped a run (Ctrl-C); the message says what was kept and how to continue."""

    exit_code = 130


class DataError(SemidError):
    """Input data is missing, empty or malformed."""

    def __init__(self, message: str, *, path: object = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.reason = message
