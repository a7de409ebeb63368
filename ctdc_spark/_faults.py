"""Fault points: the one place where operations tests reach into Spark tasks (docs/reliability.md 2.3).

Every function ctdc_spark gives Spark to run on the executors (the ``mapInArrow`` task functions of
every stage) is decorated with :func:`fault_point` and the name of its task family, for example
``combos.count``. When a task starts, the decorator reads one environment variable,
``CTDC_FAULT_HOOK``. Production runs leave it unset, so the decorator costs one ``os.environ`` lookup
per task and does nothing else.

When the variable is set, it names a hook function that the executors can import, optionally
followed by a comma and a JSON object of keyword arguments::

    CTDC_FAULT_HOOK='faults:kill_executor,{"marker": "/abs/kill.marker", "points": ["combos.count"]}'

The task then calls ``hook(point_name, **arguments)`` before its body runs. A hook sees the point's
name and nothing else, never a record, so what it raises or prints cannot contain data. The hooks
themselves (fail a task's first attempt, SIGKILL the executor JVM) are test code in
``tests/ops/faults.py``. A test sets the variable on the executors with
``spark.executorEnv.CTDC_FAULT_HOOK`` and puts the hook's directory on their path with
``spark.executorEnv.PYTHONPATH``.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

FAULT_HOOK_ENV = "CTDC_FAULT_HOOK"

_Batches = TypeVar("_Batches")
_Output = TypeVar("_Output")


def fault_point(
    name: str,
) -> Callable[[Callable[[_Batches], _Output]], Callable[[_Batches], _Output]]:
    """Make a task function call the ``CTDC_FAULT_HOOK`` hook, if one is set, when its task starts.

    Args:
        name: The task family, ``<package>.<task>`` (e.g. ``synthesize.row_seeded``). Hooks select
            the points they act on by this name.

    Returns:
        A decorator for the function given to ``mapInArrow`` (or any other per-partition API).

    Example:
        >>> @fault_point("example.double")
        ... def double(batches):
        ...     return (2 * b for b in batches)
        >>> list(double([1, 2]))
        [2, 4]
    """

    def decorate(task: Callable[[_Batches], _Output]) -> Callable[[_Batches], _Output]:
        @functools.wraps(task)
        def at_fault_point(batches: _Batches) -> _Output:
            spec = os.environ.get(FAULT_HOOK_ENV)
            if spec:
                hook, arguments = _load_hook(spec)
                hook(name, **arguments)
            return task(batches)

        return at_fault_point

    return decorate


@functools.lru_cache(maxsize=4)
def _load_hook(spec: str) -> tuple[Callable[..., object], dict[str, Any]]:
    """Import the hook named by ``spec`` and decode its arguments. Done once per Python worker,
    because PySpark reuses its workers across tasks."""
    target, _, encoded = spec.partition(",")
    module_name, _, function_name = target.partition(":")
    arguments = json.loads(encoded) if encoded else {}
    if not module_name or not function_name or not isinstance(arguments, dict):
        raise ValueError(
            f"{FAULT_HOOK_ENV} must be module:function, optionally followed by a comma and a JSON "
            "object of the hook's keyword arguments; unset it for a production run."
        )
    hook: Callable[..., object] = getattr(importlib.import_module(module_name), function_name)
    return hook, arguments
