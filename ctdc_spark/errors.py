"""Typed errors; ``cli.main`` maps them to exit codes so a scheduler can tell them apart.

Messages must never contain a raw cell value: they name columns, row numbers, files and settings.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path


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


def error_class_of(exc: BaseException) -> str:
    """A value-free label for an exception: its type and, for Spark errors, the error class."""
    label = type(exc).__name__
    getter = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    if callable(getter):
        with contextlib.suppress(Exception):
            condition = getter()
            if condition:
                label = f"{label}:{condition}"
    return label


def safe_traceback(exc: BaseException) -> str:
    """The exception's frames (file, line, function) without any message text."""
    frames = traceback.extract_tb(exc.__traceback__)
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in reversed(frames[-8:]))
