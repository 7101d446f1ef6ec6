"""Errors that carry their own exit code and a hint for the operator.

The code that does the work raises these and handles nothing; ``cli.main`` turns them into
one readable line on stderr and the exit code (pip-audit's shape).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit code kvmigrate uses, in one place."""

    OK = 0
    FINDINGS = 1  # the command worked and found something at or above the threshold
    USAGE = 2  # bad arguments or unreadable input
    CONNECT = 3  # cannot connect to or authenticate with a server
    FAILED = 4  # an operation failed part way (the message says what state is left)
    INTERRUPTED = 130


class KvmError(Exception):
    """An error the operator can act on: ``message`` says what, ``hint`` what to do next."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None, exit_code: ExitCode | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(KvmError):
    exit_code = ExitCode.USAGE


class ConnectError(KvmError):
    exit_code = ExitCode.CONNECT


class LabError(KvmError):
    exit_code = ExitCode.FAILED
