"""Fault injection: the fault points (ctdc_spark/_faults.py) and the tests' hooks (tests/ops/faults.py).

The hooks are proved on a tiny stand-alone job (tests/ops/ops_fault_job.py). docs/reliability.md section 2.3,
task retry: ``local[2,2]`` with :func:`faults.fail_first_attempt` at the job's ``map`` point gives the
clean result; ``local[2]`` (no retries) fails. Executor loss is proved on the whole pipeline, on the
standalone cluster (tests/ops/test_ops_cluster.py), where :func:`faults.kill_executor` SIGKILLs an
executor JVM.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m pytest tests/ops/test_ops_faults.py`` (about 30 s on 2 cores;
``-m 'not slow'`` runs only the fast unit tests).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import faults
import pytest
from faults import InjectedTaskFailure, fail_first_attempt, find_executor_jvm, kill_executor, read_proc_stat

from ctdc_spark._faults import FAULT_HOOK_ENV, fault_point

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "tests" / "ops" / "ops_fault_job.py"
JOB_TIMEOUT = 900

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
needs_java = pytest.mark.skipif(
    shutil.which("java") is None and not os.environ.get("JAVA_HOME"), reason="needs a Java 17 runtime"
)


@pytest.fixture(autouse=True)
def _no_hook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULT_HOOK_ENV, raising=False)


# ------------------------------------------------------------------------------ unit: no Spark needed

calls: list[tuple[str, dict[str, object]]] = []


def recording_hook(point: str, **arguments: object) -> None:
    """A hook for the unit tests: remembers how it was called."""
    calls.append((point, arguments))


@fault_point("unit.double")
def _double(batches: list[int]) -> list[int]:
    return [2 * b for b in batches]


def test_a_fault_point_without_the_environment_variable_only_runs_its_task() -> None:
    calls.clear()
    assert _double([1, 2]) == [2, 4]
    assert calls == []
    assert _double.__name__ == "_double"


def test_a_fault_point_calls_the_named_hook_with_its_name_and_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls.clear()
    monkeypatch.setenv(FAULT_HOOK_ENV, f"{__name__}:recording_hook")
    assert _double([3]) == [6]
    monkeypatch.setenv(FAULT_HOOK_ENV, f'{__name__}:recording_hook,{{"points": ["unit.*"], "n": 1}}')
    assert _double([4]) == [8]
    assert calls == [("unit.double", {}), ("unit.double", {"points": ["unit.*"], "n": 1})]


@pytest.mark.parametrize(
    "spec",
    ["faults", ":fail_first_attempt", "faults:", "faults:fail_first_attempt,[1, 2]"],
    ids=["no_function", "no_module", "empty_function", "arguments_not_an_object"],
)
def test_a_malformed_hook_spec_is_refused_with_the_expected_shape(
    monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    monkeypatch.setenv(FAULT_HOOK_ENV, spec)
    with pytest.raises(ValueError, match="module:function, optionally"):
        _double([1])


def test_the_tests_executor_env_installs_their_hook_at_the_fault_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = faults.executor_env(faults.fail_first_attempt, points=["unit.*"])
    assert env["PYTHONPATH"] == str(REPO / "tests" / "ops")
    monkeypatch.setenv(FAULT_HOOK_ENV, env[FAULT_HOOK_ENV])
    monkeypatch.setattr(faults, "_task_attempt", lambda: 0)
    with pytest.raises(InjectedTaskFailure, match=re.escape("fault point 'unit.double'")):
        _double([1])


def test_every_task_function_of_ctdc_spark_is_a_fault_point() -> None:
    # Task functions take the partition's iterator, named `batches` throughout ctdc_spark.
    points = []
    for path in sorted((REPO / "ctdc_spark").rglob("*.py")):
        if path.name == "_faults.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.args.args and node.args.args[0].arg == "batches":
                names = [
                    ast.unparse(d.args[0])
                    for d in node.decorator_list
                    if isinstance(d, ast.Call) and ast.unparse(d.func) == "fault_point"
                ]
                assert names, f"{path.relative_to(REPO)}:{node.lineno}: {node.name} is not a fault point"
                points += names
    # counting, rare lengths, selection strings, three DP tasks, sampling, two evaluation tasks
    assert len(points) >= 9


def test_fail_hook_raises_in_first_attempt_of_the_selected_points_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(faults, "_task_attempt", lambda: 0)
    with pytest.raises(InjectedTaskFailure, match=re.escape("fault point 'combos.count'")):
        fail_first_attempt("combos.count", points=["combos.count"])
    fail_first_attempt("synthesize.row_seeded", points=["combos.count"])  # another point: untouched
    with pytest.raises(InjectedTaskFailure, match=re.escape("fault point 'synthesize.consolidate'")):
        fail_first_attempt("synthesize.consolidate", points=["combos.*", "synthesize.*"])  # patterns
    with pytest.raises(InjectedTaskFailure, match=re.escape("fault point 'evaluate.supports'")):
        fail_first_attempt("evaluate.supports")  # default: every point
    monkeypatch.setattr(faults, "_task_attempt", lambda: 1)
    fail_first_attempt("combos.count")  # the retry passes
    monkeypatch.setattr(faults, "_task_attempt", lambda: None)
    fail_first_attempt("combos.count")  # on the driver: never


def test_kill_hook_is_a_no_op_on_the_driver_and_for_other_points(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "kill.marker"
    assert kill_executor("map", marker=str(marker)) is False  # no TaskContext here: we are "the driver"
    monkeypatch.setattr(faults, "_task_attempt", lambda: 0)
    assert kill_executor("map", marker=str(marker), points=["synthesize.*"]) is False
    assert not marker.exists()


def test_kill_hook_rejects_a_relative_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "_task_attempt", lambda: 0)
    with pytest.raises(ValueError, match="absolute"):
        kill_executor("map", marker="kill.marker")


@linux_only
def test_kill_hook_refuses_without_an_executor_jvm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # pytest's parents are shells/pythons, like the driver JVM in local mode: nothing may be killed.
    marker = tmp_path / "kill.marker"
    monkeypatch.setattr(faults, "_task_attempt", lambda: 0)
    with pytest.raises(RuntimeError, match="no executor JVM"):
        kill_executor("map", marker=str(marker))
    assert not marker.exists()


@linux_only
def test_kill_hook_does_nothing_once_the_marker_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "kill.marker"
    marker.write_text("already done\n")
    monkeypatch.setattr(faults, "_task_attempt", lambda: 0)
    assert kill_executor("map", marker=str(marker)) is False


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


def _run_job_locally(
    master: str, out: Path, executor_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(JOB), "--master", master, "--out", str(out)]
    for key, value in (executor_env or {}).items():
        cmd += ["--conf", f"spark.executorEnv.{key}={value}"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env["PYSPARK_PYTHON"] = sys.executable
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT, check=False)


@pytest.mark.spark
@pytest.mark.slow
@needs_java
def test_fail_first_attempt_is_retried_by_local_n_f_and_fatal_under_local_n(tmp_path: Path) -> None:
    fail = faults.executor_env(faults.fail_first_attempt, points=["map"])
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
