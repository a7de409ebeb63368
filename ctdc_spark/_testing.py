"""Test-only fault-injection hooks for Spark tasks (RELIABILITY.md section 2.3). Not part of the public API.

Stage code may call these hooks at the start of a task-side function (e.g. the function given to
``mapInPandas``/``mapInArrow``). They do nothing unless a test sets an environment variable **on the
executors**, so production runs are unaffected (the only cost is one ``os.environ`` lookup per call)::

    spark-submit ... \
      --conf spark.executorEnv.CTDC_TEST_KILL_EXECUTOR_MARKER=/abs/path/kill.marker \
      --conf spark.executorEnv.CTDC_TEST_KILL_EXECUTOR_STAGE=aggregate \
      --conf spark.executorEnv.CTDC_TEST_FAIL_FIRST_ATTEMPT=synthesize \
      jobs/run_pipeline.py ...

``spark.executorEnv.*`` reaches the Python workers in every mode: on a cluster through the executor JVM's
environment, in local mode because PySpark passes these settings to its workers.

* :func:`maybe_fail_task` raises :class:`InjectedTaskFailure` in the first attempt
  (``TaskContext.attemptNumber() == 0``) of every task that calls it with a stage named by
  ``CTDC_TEST_FAIL_FIRST_ATTEMPT`` (one name, or several separated by commas: ``aggregate,synthesize``).
  Use a master that retries (``local[2,2]``, any cluster): the job must succeed with the same output as a
  clean run. Plain ``local[2]`` never retries, so the job fails.
* :func:`maybe_kill_executor` SIGKILLs the executor JVM that runs the calling task, once per marker file:
  the first task to create ``CTDC_TEST_KILL_EXECUTOR_MARKER`` (an *absolute* path, because executors have
  their own working directory; on a multi-host cluster it must be on a shared file system) with
  ``O_CREAT | O_EXCL`` wins and kills its JVM; every later call sees the marker and returns. The JVM is
  found through the Python worker's parent chain (``/proc/<pid>/stat``: worker -> ``pyspark.daemon`` ->
  executor JVM) and must be an executor backend; in local mode the JVM is the driver, which is never
  killed (a clear error is raised instead). Linux only. ``CTDC_TEST_KILL_EXECUTOR_STAGE`` optionally
  restricts the kill to one stage name.

Messages name the stage and attempt only; they never contain data.

Example (inside a task-side function)::

    def _count_batches(batches):
        maybe_fail_task("aggregate")
        maybe_kill_executor("aggregate")
        for batch in batches:
            ...
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

KILL_MARKER_ENV = "CTDC_TEST_KILL_EXECUTOR_MARKER"
KILL_STAGE_ENV = "CTDC_TEST_KILL_EXECUTOR_STAGE"
FAIL_FIRST_ATTEMPT_ENV = "CTDC_TEST_FAIL_FIRST_ATTEMPT"

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
    """Raised by :func:`maybe_fail_task`; a test-only, expected failure."""


def _task_attempt() -> int | None:
    """Attempt number of the running task, or None when not inside a Spark task (e.g. on the driver)."""
    # Imported here so the module stays importable without pyspark (e.g. by the CLI on a bare host).
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return None if ctx is None else int(ctx.attemptNumber())


def maybe_fail_task(stage_name: str) -> None:
    """Fail the first attempt of the calling task if ``CTDC_TEST_FAIL_FIRST_ATTEMPT`` names this stage.

    Args:
        stage_name: the caller's stage name, compared verbatim with each comma-separated name in the
            environment variable.

    Raises:
        InjectedTaskFailure: in attempt 0 of a task, when enabled for ``stage_name``.
    """
    names = {name.strip() for name in os.environ.get(FAIL_FIRST_ATTEMPT_ENV, "").split(",")}
    if not stage_name or stage_name not in names:
        return
    attempt = _task_attempt()
    if attempt == 0:
        raise InjectedTaskFailure(
            f"injected test failure: first attempt of a task in stage {stage_name!r} "
            f"({FAIL_FIRST_ATTEMPT_ENV} is set); a retrying master runs it again"
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


def maybe_kill_executor(stage_name: str) -> bool:
    """SIGKILL the calling task's executor JVM, once per marker file, if enabled for this stage.

    Args:
        stage_name: the caller's stage name; matched against ``CTDC_TEST_KILL_EXECUTOR_STAGE`` when set.

    Returns:
        False when the hook is disabled, not inside a task, not for this stage, or the marker already exists
        (the kill already happened). It does not return after a kill: the Python worker exits at once.

    Raises:
        ValueError: if the marker path is not absolute.
        RuntimeError: if enabled but no executor JVM is in the parent chain (local mode, or not Linux).
    """
    marker = os.environ.get(KILL_MARKER_ENV)
    if not marker:
        return False
    only_stage = os.environ.get(KILL_STAGE_ENV)
    if only_stage and only_stage != stage_name:
        return False
    if _task_attempt() is None:
        return False  # on the driver: never
    if not os.path.isabs(marker):
        raise ValueError(f"{KILL_MARKER_ENV} must be an absolute path (executors have their own cwd).")
    if os.path.exists(marker):
        return False
    jvm = find_executor_jvm()
    if jvm is None:
        raise RuntimeError(
            f"{KILL_MARKER_ENV} is set but no executor JVM is among this Python worker's parents; "
            "use a cluster master (spark://..., local-cluster[2,1,1024]); local[N] runs tasks in the driver."
        )
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False  # another task won the race
    try:
        os.write(fd, f"stage={stage_name} executor_jvm_pid={jvm}\n".encode())
    finally:
        os.close(fd)
    os.kill(jvm, signal.SIGKILL)
    # The JVM is gone; end this worker now instead of computing a result nobody can receive.
    os._exit(137)
