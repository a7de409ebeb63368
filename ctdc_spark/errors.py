"""Typed errors; ``cli.main`` maps them to exit codes so a scheduler can tell them apart.

Messages must never contain a raw cell value: they name columns, row numbers, files and settings.
"""

from __future__ import annotations


class CtdcError(Exception):
    """Base class of every error this library raises on purpose."""

    exit_code = 1


class ConfigError(CtdcError):
    """The configuration is invalid; the message says which key and how to fix it (exit 2)."""

    exit_code = 2


class InputDataError(CtdcError):
    """The input data breaks a rule; the message names columns/rows, never values (exit 2)."""

    exit_code = 2


class SchemaMismatchError(InputDataError):
    """A table or file does not have the columns or types a stage expects (exit 2)."""


class RunConflictError(CtdcError):
    """A run id already exists with a different input or config, or another run holds the lock (exit 2)."""

    exit_code = 2


class StageFailedError(CtdcError):
    """A stage failed for a reason that is not bad input, e.g. a failed privacy check (exit 3)."""

    exit_code = 3


class VerificationError(StageFailedError):
    """The independent k-synthetic (or DP) verification failed; nothing is published (exit 3)."""


class CtdcInternalError(CtdcError):
    """An invariant of the library itself was violated: a bug (exit 1)."""

    exit_code = 1
