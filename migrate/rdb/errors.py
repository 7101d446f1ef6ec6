"""The one error the RDB reader raises: what is wrong, and at which byte of the input."""

from __future__ import annotations

from migrate.errors import UsageError


class RdbFormatError(UsageError):
    """The input is not a valid RDB stream (exit 2): ``offset`` is the byte where it fails."""

    def __init__(self, offset: int, reason: str, hint: str | None = None):
        super().__init__(f"invalid RDB at byte {offset}: {reason}", hint)
        self.offset = offset
        self.reason = reason


class NotWalked(Exception):
    """A value or file the fast steps over RDB bytes do not cover, or one that fails the
    checks a server makes as it loads it (``reason``): read it fully, with the reader."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
