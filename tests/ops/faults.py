"""Fault hooks for the operations tests: what ``CTDC_FAULT_HOOK`` names (ctdc_spark/_faults.py).

Every task function of ctdc_spark is a fault point (``@fault_point("<package>.<task>")``). These hooks
run at the start of a task when the executors' environment names one of them::

    spark-submit ... \
      --conf 'spark.executorEnv.CTDC_FAULT_HOOK=faults:fail_first_attempt,{"points": ["synthesize.*"]}' \
      --conf spark.executorEnv.PYTHONPATH=/abs/path/to/tests/ops \
      jobs/run_pipeline.py ...

:func:`executor_env` builds both settings. ``spark.executorEnv.*`` reaches the Python workers in every
mode: on a cluster through the executor JVM's environment, in local mode because PySpark passes these
settings to its workers. PySpark adds that ``PYTHONPATH`` to the workers' own path, after the
``--py-files``, so ctdc_spark still comes from the zip.

* :func:`fail_first_attempt` raises :class:`InjectedTaskFailure` in the first attempt
  (``TaskContext.attemptNumber() == 0``) of every task at a selected point. Use a master that
  retries (``local[2,2]``, any cluster): the job must succeed with the same output as a clean run.
  Plain ``local[2]`` never retries, so the job fails.
* :func:`kill_executor` SIGKILLs the executor JVM that runs the task, once per marker file. The
  first task at a selected point to create the marker wins: it creates the file with
  ``O_CREAT | O_EXCL`` and kills its JVM. Every later call sees the marker and returns. The marker
  must be an *absolute* path, because executors have their own working directory; on a multi-host
  cluster it must be on a shared file system. The JVM is found through the Python worker's parent
  chain (``/proc/<pid>/stat``: worker -> ``pyspark.daemon`` -> executor JVM) and must be an
  executor backend. In local mode the JVM is the driver, which is never killed: the hook raises a
  clear error instead. Linux only.

``points`` are ``fnmatch`` patterns over point names (``["combos.count"]``, ``["synthesize.*"]``;
default ``["*"]``, every point). Messages name the point and the attempt only; a hook never sees data.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ctdc_spark._faults import FAULT_HOOK_ENV

HERE = Path(__file__).resolve().parent
"""The directory executors need on their ``PYTHONPATH`` to import this module as ``faults``."""

# Main classes of executor JVMs (standalone/local-cluster, YARN, Kubernetes). The driver's JVM
# (org.apache.spark.deploy.SparkSubmit) is deliberately not in this list.
_EXECUTOR_MAIN_CLASSES = (
    "org.apache.spark.executor.CoarseGrainedExecutorBackend",
    "org.apache.spark.executor.YarnCoarseGrainedExecutorBackend",
    "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
)
# worker -> daemon -> JVM is two steps; allow a little slack (e.g. a wrapper shell) but stay bounded.
_MAX_PARENT_STEPS = 4


class InjectedTaskFailure(RuntimeError):
    """Raised by :func:`fail_first_attempt`; a test-only, expected failure."""


def hook_spec(hook: Callable[..., object], **arguments: Any) -> str:
    """The ``CTDC_FAULT_HOOK`` value that runs ``hook(point, **arguments)`` (one of this module's hooks)."""
    # By file name, not __module__: pytest may have imported this file as tests.ops.faults, executors
    # import it from HERE as faults.
    target = f"{Path(__file__).stem}:{hook.__name__}"
    return f"{target},{json.dumps(arguments)}" if arguments else target


def executor_env(hook: Callable[..., object], **arguments: Any) -> dict[str, str]:
    """``spark.executorEnv`` entries (without that prefix) that install ``hook`` on the executors."""
    return {FAULT_HOOK_ENV: hook_spec(hook, **arguments), "PYTHONPATH": str(HERE)}


def _task_attempt() -> int | None:
    """Attempt number of the running task, or None when not inside a Spark task (e.g. on the driver)."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return None if ctx is None else int(ctx.attemptNumber())


def _selected(point: str, points: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(point, pattern) for pattern in points)


def fail_first_attempt(point: str, *, points: Sequence[str] = ("*",)) -> None:
    """Fail the first attempt of the calling task if ``point`` matches one of ``points``.

    Raises:
        InjectedTaskFailure: in attempt 0 of a task at a selected point.
    """
    if _selected(point, points) and _task_attempt() == 0:
        raise InjectedTaskFailure(
            f"injected test failure: first attempt of a task at fault point {point!r} "
            f"({FAULT_HOOK_ENV} is set); a retrying master runs it again"
        )


def read_proc_stat(pid: int) -> tuple[str, int, int, int, int]:
    """Parse ``/proc/<pid>/stat``.

    Returns:
        ``(comm, ppid, pgrp, session, starttime)``; ``starttime`` is in clock ticks since boot and, with the
        pid, identifies a process even after its pid is reused.

    Raises:
        OSError: if the process does not exist (or this is not Linux).
    """
    raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    # comm is in parentheses and may itself contain spaces or ')': split at the last ')'.
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state) of proc(5); ppid=4, pgrp=5, session=6, starttime=22.
    return comm, int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")


def find_executor_jvm(start_pid: int | None = None) -> int | None:
    """Walk up the parent chain from ``start_pid`` (default: this process) to the executor JVM.

    Returns:
        The pid of the first ancestor whose command line runs an executor backend, or None if the chain
        reaches another JVM (e.g. the driver in local mode), init, or is longer than expected.
    """
    pid = os.getpid() if start_pid is None else start_pid
    for _ in range(_MAX_PARENT_STEPS):
        try:
            ppid = read_proc_stat(pid)[1]
        except OSError:
            return None
        if ppid <= 1:
            return None
        try:
            args = _cmdline(ppid)
        except OSError:
            return None
        if any(cls in args for cls in _EXECUTOR_MAIN_CLASSES):
            return ppid
        if args and os.path.basename(args[0]) == "java":
            return None  # a JVM that is not an executor: the driver (local mode) or a daemon
        pid = ppid
    return None


def kill_executor(point: str, *, marker: str, points: Sequence[str] = ("*",)) -> bool:
    """SIGKILL the calling task's executor JVM, once per marker file, if ``point`` is selected.

    Args:
        point: The fault point's name.
        marker: Absolute path of the marker file that records the kill.
        points: Patterns of the points to act on.

    Returns:
        False when not inside a task, not a selected point, or the marker already exists (the kill
        already happened). It does not return after a kill: the Python worker exits at once.

    Raises:
        ValueError: if the marker path is not absolute.
        RuntimeError: if no executor JVM is in the parent chain (local mode, or not Linux).
    """
    if not _selected(point, points):
        return False
    if _task_attempt() is None:
        return False  # on the driver: never
    if not os.path.isabs(marker):
        raise ValueError("the kill marker must be an absolute path (executors have their own cwd).")
    if os.path.exists(marker):
        return False
    jvm = find_executor_jvm()
    if jvm is None:
        raise RuntimeError(
            "kill_executor is installed but no executor JVM is among this Python worker's parents; "
            "use a cluster master (spark://..., local-cluster[2,1,1024]); local[N] runs tasks in the driver."
        )
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False  # another task won the race
    try:
        os.write(fd, f"point={point} executor_jvm_pid={jvm}\n".encode())
    finally:
        os.close(fd)
    os.kill(jvm, signal.SIGKILL)
    # The JVM is gone; end this worker now instead of computing a result nobody can receive.
    os._exit(137)
