"""Fault-injection hooks (ctdc_spark/_testing.py), proved on a tiny stand-alone job
(tests/ops/ops_fault_job.py).

RELIABILITY.md section 2.3: task retry: ``local[2,2]`` + ``CTDC_TEST_FAIL_FIRST_ATTEMPT=map`` gives the
clean result; ``local[2]`` (no retries) fails. Executor loss is proved on the whole pipeline, on the
standalone cluster (tests/ops/test_ops_cluster.py), where the kill hook SIGKILLs an executor JVM.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m pytest tests/ops/test_ops_faults.py`` (about 30 s on 2 cores;
``-m 'not slow'`` runs only the fast unit tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ctdc_spark import _testing
from ctdc_spark._testing import (
    FAIL_FIRST_ATTEMPT_ENV,
    KILL_MARKER_ENV,
    KILL_STAGE_ENV,
    InjectedTaskFailure,
    find_executor_jvm,
    maybe_fail_task,
    maybe_kill_executor,
    read_proc_stat,
)

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "tests" / "ops" / "ops_fault_job.py"
JOB_TIMEOUT = 900

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
needs_java = pytest.mark.skipif(
    shutil.which("java") is None and not os.environ.get("JAVA_HOME"), reason="needs a Java 17 runtime"
)


@pytest.fixture(autouse=True)
def _no_hook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (FAIL_FIRST_ATTEMPT_ENV, KILL_MARKER_ENV, KILL_STAGE_ENV):
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------------------------------ unit: no Spark needed


def test_hooks_are_inert_without_their_environment_variables() -> None:
    maybe_fail_task("map")
    assert maybe_kill_executor("map") is False


def test_fail_hook_raises_in_first_attempt_of_the_named_stage_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAIL_FIRST_ATTEMPT_ENV, "aggregate")
    monkeypatch.setattr(_testing, "_task_attempt", lambda: 0)
    with pytest.raises(InjectedTaskFailure, match="stage 'aggregate'"):
        maybe_fail_task("aggregate")
    maybe_fail_task("synthesize")  # another stage: untouched
    monkeypatch.setenv(FAIL_FIRST_ATTEMPT_ENV, "aggregate,synthesize")
    with pytest.raises(InjectedTaskFailure, match="stage 'synthesize'"):
        maybe_fail_task("synthesize")  # several stages, comma-separated
    maybe_fail_task("evaluate")
    maybe_fail_task("")  # no empty name matches
    monkeypatch.setattr(_testing, "_task_attempt", lambda: 1)
    maybe_fail_task("aggregate")  # the retry passes
    monkeypatch.setattr(_testing, "_task_attempt", lambda: None)
    maybe_fail_task("aggregate")  # on the driver: never


def test_kill_hook_is_a_no_op_on_the_driver_and_for_other_stages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "kill.marker"
    monkeypatch.setenv(KILL_MARKER_ENV, str(marker))
    assert maybe_kill_executor("map") is False  # no TaskContext here: we are "the driver"
    monkeypatch.setattr(_testing, "_task_attempt", lambda: 0)
    monkeypatch.setenv(KILL_STAGE_ENV, "synthesize")
    assert maybe_kill_executor("map") is False
    assert not marker.exists()


def test_kill_hook_rejects_a_relative_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KILL_MARKER_ENV, "kill.marker")
    monkeypatch.setattr(_testing, "_task_attempt", lambda: 0)
    with pytest.raises(ValueError, match="absolute"):
        maybe_kill_executor("map")


@linux_only
def test_kill_hook_refuses_without_an_executor_jvm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # pytest's parents are shells/pythons, like the driver JVM in local mode: nothing may be killed.
    marker = tmp_path / "kill.marker"
    monkeypatch.setenv(KILL_MARKER_ENV, str(marker))
    monkeypatch.setattr(_testing, "_task_attempt", lambda: 0)
    with pytest.raises(RuntimeError, match="no executor JVM"):
        maybe_kill_executor("map")
    assert not marker.exists()


@linux_only
def test_kill_hook_does_nothing_once_the_marker_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "kill.marker"
    marker.write_text("already done\n")
    monkeypatch.setenv(KILL_MARKER_ENV, str(marker))
    monkeypatch.setattr(_testing, "_task_attempt", lambda: 0)
    assert maybe_kill_executor("map") is False


@linux_only
def test_read_proc_stat_matches_os() -> None:
    comm, ppid, pgrp, session, starttime = read_proc_stat(os.getpid())
    assert ppid == os.getppid()
    assert pgrp == os.getpgrp()
    assert session == os.getsid(0)
    assert starttime > 0 and comm


@linux_only
def test_find_executor_jvm_walks_the_parent_chain() -> None:
    # A stand-in "executor": a process whose command line names the executor backend, with a child
    # standing in for the Python worker.
    script = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n"
    )
    fake = subprocess.Popen(
        [sys.executable, "-c", script, "org.apache.spark.executor.CoarseGrainedExecutorBackend"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        child = int(fake.stdout.readline())
        try:
            assert find_executor_jvm(child) == fake.pid
            assert find_executor_jvm(os.getpid()) is None
        finally:
            os.kill(child, 9)
    finally:
        fake.wait(timeout=30)


# ------------------------------------------------------------------------- local mode: task retries


def _run_job_locally(master: str, out: Path, *confs: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(JOB), "--master", master, "--out", str(out)]
    for conf in confs:
        cmd += ["--conf", conf]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env["PYSPARK_PYTHON"] = sys.executable
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT, check=False)


@pytest.mark.spark
@pytest.mark.slow
@needs_java
def test_fail_first_attempt_is_retried_by_local_n_f_and_fatal_under_local_n(tmp_path: Path) -> None:
    fail = f"spark.executorEnv.{FAIL_FIRST_ATTEMPT_ENV}=map"
    clean = _run_job_locally("local[2]", tmp_path / "clean.json")
    assert clean.returncode == 0, clean.stderr[-3000:]

    retried = _run_job_locally("local[2,2]", tmp_path / "retried.json", fail)
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert "InjectedTaskFailure" in retried.stderr  # the first attempts really failed ...
    assert json.loads((tmp_path / "retried.json").read_text()) == json.loads(
        (tmp_path / "clean.json").read_text()
    )

    no_retry = _run_job_locally("local[2]", tmp_path / "no_retry.json", fail)
    assert no_retry.returncode != 0
    assert "InjectedTaskFailure" in no_retry.stderr
    assert not (tmp_path / "no_retry.json").exists()
