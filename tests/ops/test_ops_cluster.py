"""spark-submit, a real standalone cluster and fault tolerance of the whole pipeline.

Every run uses the same input (tests/ops/_ops.py: 1,500 CTDC-shaped rows with planted canaries), config
(conf/local.yaml, k = 5, explicit synthesis seed and release date) and run id, each under its own
output root, so their release bundles must be byte-identical:

* reference: ``spark-submit --master local[2] --py-files ctdc_spark.zip jobs/run_pipeline.py``;
* local retries: the CLI with ``spark.master=local[2,2]`` and tests/ops/faults.py's
  ``fail_first_attempt`` hook at every fault point (``spark.executorEnv.CTDC_FAULT_HOOK``): the first
  attempt of every task of every stage fails, and Spark retries it;
* cluster: ``scripts/local_cluster.py``'s standalone master and two workers on 127.0.0.1 (one core,
  1 GiB each), ``spark-submit --master spark://127.0.0.1:<port> jobs/run_pipeline.py``;
* executor loss: on the same cluster, the per-stage jobs ``jobs/aggregate.py`` (prepare, aggregate) with
  an executor JVM SIGKILLed from inside a counting task (fault point ``combos.count``), then
  ``jobs/publish.py`` (synthesize, evaluate, publish) with one killed inside a sampling task
  (``synthesize.*``), by tests/ops/faults.py's ``kill_executor`` hook.

The cluster itself (scripts/local_cluster.py) must register both workers, report them through its CLI and,
when stopped, leave none of the processes it started (daemons and executors).

spark-submit runs get no ``PYTHONPATH``: driver and executors import ``ctdc_spark`` from the zip only
(checked by a probe job). No canary may appear in any driver output, cluster log or executor work dir,
release bundle, staging file or ``_delta_log``; the rare ones must appear in the private files (the
scan's positive control). A run that fails inside Spark with a record value in the task's exception
(tests/ops/ops_pipeline_driver.py) leaves that value in no log either.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m pytest tests/ops/test_ops_cluster.py`` (the slow tests take
several minutes on 2 cores; ``-m 'not slow'`` runs only the job-shim checks).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _ops
import faults
import pytest
from pyspark.sql import SparkSession

from ctdc_spark.io.files import verify_bundle

RUN_ID = "ops-cluster-1"
TINY_CANARY = "Zq7SparkFailCanary"

needs_cluster_runtime = pytest.mark.skipif(
    not Path("/proc/self/stat").exists()
    or (shutil.which("java") is None and not os.environ.get("JAVA_HOME")),
    reason="needs Linux and a Java 17 runtime",
)
slow_cluster = [pytest.mark.slow, pytest.mark.cluster, needs_cluster_runtime, pytest.mark.timeout(3600)]


@dataclass
class Run:
    """One pipeline run: where it wrote, and what its driver printed."""

    name: str
    root: Path
    finished: list[_ops.Finished]

    @property
    def bundle(self) -> Path:
        return self.root / "release" / RUN_ID

    @property
    def output(self) -> str:
        return "".join(f.output for f in self.finished)


@dataclass
class Work:
    base: Path
    input: Path
    zip: Path


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Work:
    base = tmp_path_factory.mktemp("ops_cluster")
    return Work(
        base,
        _ops.write_ctdc_input(base / "input" / "ctdc.csv"),
        _ops.build_zip(base / "dist" / "ctdc_spark.zip"),
    )


def _print_times(run: Run) -> None:
    print(f"{run.name}: " + ", ".join(f"{f.seconds:.0f}s" for f in run.finished))


@pytest.fixture(scope="module")
def reference(work: Work) -> Run:
    root = work.base / "reference"
    cmd = _ops.spark_submit_command(
        "local[2]",
        _ops.JOBS / "run_pipeline.py",
        _ops.app_args(RUN_ID, work.input, root, "spark.master=null"),
        py_files=work.zip,
    )
    done = _ops.run(cmd, env=_ops.clean_env(pythonpath=False), cwd=work.base)
    run = Run("reference (spark-submit local[2])", root, [done])
    _print_times(run)
    assert done.returncode == 0, done.tail()
    return run


class Cluster:
    """The module's standalone cluster and how to submit to it."""

    def __init__(self, handle: Any, zip_path: Path) -> None:
        self.handle = handle
        self.zip = zip_path

    @property
    def state_dir(self) -> Path:
        return Path(self.handle.state_dir)

    def submit(
        self,
        app: Path,
        args: Sequence[str],
        *,
        executor_env: Mapping[str, str] | None = None,
        driver_env: Mapping[str, str] | None = None,
        delta: bool = True,
        cwd: Path,
    ) -> _ops.Finished:
        confs: list[str] = []
        for key, value in (executor_env or {}).items():
            confs += ["--conf", f"spark.executorEnv.{key}={value}"]
        cmd = self.handle.submit_command([*confs, str(app), *args], delta=delta, py_files=self.zip)
        env = self.handle.daemon_env(base=_ops.clean_env(pythonpath=False, **(driver_env or {})))
        env.pop("PYTHONPATH", None)
        return _ops.run(cmd, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def cluster(work: Work) -> Iterator[Cluster]:
    if not Path("/proc/self/stat").exists() or (
        shutil.which("java") is None and not os.environ.get("JAVA_HOME")
    ):
        pytest.skip("needs Linux and a Java 17 runtime")
    lc = _ops.load_local_cluster()
    with pytest.MonkeyPatch.context() as mp:
        # The daemons (hence executors) must not see this checkout on PYTHONPATH: ctdc_spark has to
        # come from --py-files.
        mp.delenv("PYTHONPATH", raising=False)
        with lc.LocalCluster(
            work.base / "cluster",
            workers=2,
            worker_cores=1,
            worker_memory="1g",
            master_port="auto",
            timeout=180,
        ) as handle:
            print(f"standalone cluster up: {handle.state.startup_seconds}s to register 2 workers")
            records = list(handle.state.processes)
            yield Cluster(handle, handle.build_pyfiles())
    # stop() must leave nothing of what it started: neither daemons nor the executors they launched.
    for rec in records:
        assert not lc._is_ours(rec), f"{rec.role} still running"
        assert lc._group_members(rec.pgid) == [], f"processes left in the group of {rec.role}"


@pytest.fixture(scope="module")
def cluster_run(work: Work, cluster: Cluster) -> Run:
    root = work.base / "cluster_run"
    done = cluster.submit(
        _ops.JOBS / "run_pipeline.py",
        _ops.app_args(RUN_ID, work.input, root, "spark.master=null"),
        cwd=work.base,
    )
    run = Run("cluster (jobs/run_pipeline.py)", root, [done])
    _print_times(run)
    assert done.returncode == 0, done.tail()
    return run


@pytest.fixture(scope="module")
def killed_run(work: Work, cluster: Cluster) -> Run:
    root = work.base / "killed_run"
    finished = []
    for job, points in (("aggregate.py", "combos.count"), ("publish.py", "synthesize.*")):
        marker = work.base / f"kill-{job}.marker"
        done = cluster.submit(
            _ops.JOBS / job,
            _ops.app_args(RUN_ID, work.input, root, "spark.master=null"),
            executor_env=faults.executor_env(faults.kill_executor, marker=str(marker), points=[points]),
            cwd=work.base,
        )
        finished.append(done)
        assert done.returncode == 0, done.tail()
        assert "executor_jvm_pid=" in marker.read_text(), f"no executor was killed at {points}"
    run = Run("cluster with executor kills (jobs/aggregate.py, jobs/publish.py)", root, finished)
    _print_times(run)
    return run


@pytest.fixture(scope="module")
def retried_run(work: Work) -> Run:
    root = work.base / "retried_run"
    # Spark's retries are logged by TaskSetManager at WARN, which the shipped local log4j config
    # silences (it can quote values); this run's own config lets them through as evidence.
    evidence = work.base / "log4j2-evidence.properties"
    evidence.write_text(
        "\n".join(
            [
                "rootLogger.level = error",
                "rootLogger.appenderRef.stderr.ref = console",
                "appender.console.type = Console",
                "appender.console.name = console",
                "appender.console.target = SYSTEM_ERR",
                "appender.console.layout.type = PatternLayout",
                "appender.console.layout.pattern = %p %c{1}: %m%n%ex{0}",
                "logger.tsm.name = org.apache.spark.scheduler.TaskSetManager",
                "logger.tsm.level = warn",
                "",
            ]
        )
    )
    spark_conf = {
        **{f"spark.executorEnv.{k}": v for k, v in faults.executor_env(faults.fail_first_attempt).items()},
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{evidence}",
    }
    args = _ops.app_args(
        RUN_ID, work.input, root, "spark.master=local[2,2]", f"spark.conf={json.dumps(spark_conf)}"
    )
    # Its own working directory: the spark-submit runs beside it leave Spark's catalog folder in
    # theirs (the platform owns that setting there), the CLI must not.
    cwd = work.base / "cli_cwd"
    cwd.mkdir()
    done = _ops.run(_ops.cli_command("run", args), env=_ops.clean_env(pythonpath=True), cwd=cwd)
    run = Run("local[2,2] with failed first attempts (CLI)", root, [done])
    _print_times(run)
    assert done.returncode == 0, done.tail()
    assert not (cwd / "spark-warehouse").exists(), "the CLI left Spark's catalog folder behind"
    return run


@pytest.fixture(scope="module")
def all_runs(reference: Run, retried_run: Run, cluster_run: Run, killed_run: Run) -> list[Run]:
    return [reference, retried_run, cluster_run, killed_run]


def _assert_same_bundle(run: Run, reference: Run) -> None:
    assert verify_bundle(run.bundle) == []
    assert (run.bundle / "SHA256SUMS").read_bytes() == (reference.bundle / "SHA256SUMS").read_bytes()
    got, want = _ops.bundle_bytes(run.bundle), _ops.bundle_bytes(reference.bundle)
    assert sorted(got) == sorted(want)
    different = [name for name in want if got[name] != want[name]]
    assert different == [], f"{run.name}: files differ from the local reference: {different}"


def _assert_one_commit_per_table(run: Run) -> None:
    for name, table in _ops.table_dirs(run.root).items():
        if name != "runs":
            assert len(_ops.run_commits(table, RUN_ID)) == 1, (run.name, name)


# ---------------------------------------------------------------------------------- job shims (fast)


@pytest.mark.parametrize(
    "stage", ["run_pipeline", "prepare", "aggregate", "synthesize", "evaluate", "publish"]
)
def test_job_shim_calls_the_cli_with_its_stage(stage: str) -> None:
    path = _ops.JOBS / f"{stage}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    assert "spark-submit" in doc and f"jobs/{stage}.py" in doc and "--py-files" in doc
    command = "run" if stage == "run_pipeline" else stage
    done = _ops.run([_ops.PYTHON, str(path), "--help"], env=_ops.clean_env(pythonpath=True), timeout=120)
    assert done.returncode == 0, done.tail()
    assert f"usage: ctdc-spark {command} " in done.stdout


# ------------------------------------------------------------------------------ spark-submit, cluster


@pytest.mark.slow
@pytest.mark.cluster
@needs_cluster_runtime
@pytest.mark.timeout(600)
def test_driver_and_executors_import_ctdc_spark_from_the_py_files_zip(work: Work, cluster: Cluster) -> None:
    probe = work.base / "probe.py"
    probe.write_text(
        "import json, sys\n"
        "import ctdc_spark\n"
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('probe').getOrCreate()\n"
        "def where(_):\n"
        "    import os\n"
        "    import ctdc_spark\n"
        "    yield os.path.abspath(ctdc_spark.__file__)\n"
        "found = spark.sparkContext.parallelize(range(4), 4).mapPartitions(where).collect()\n"
        "print(json.dumps({'driver': ctdc_spark.__file__, 'executors': sorted(set(found))}))\n"
        "spark.stop()\n"
    )
    done = cluster.submit(probe, [], delta=False, cwd=work.base)
    assert done.returncode == 0, done.tail()
    where = json.loads(done.stdout.strip().splitlines()[-1])
    assert where["driver"].endswith("ctdc_spark.zip/ctdc_spark/__init__.py"), where
    assert where["executors"] and all(
        p.endswith("ctdc_spark.zip/ctdc_spark/__init__.py") for p in where["executors"]
    )
    assert all(str(cluster.state_dir / "work") in p for p in where["executors"]), (
        where
    )  # fetched by each executor


@pytest.mark.slow
@pytest.mark.cluster
@needs_cluster_runtime
@pytest.mark.timeout(3600)
def test_full_pipeline_on_the_standalone_cluster_gives_the_local_mode_bundle(
    reference: Run, cluster_run: Run
) -> None:
    assert f"run {RUN_ID}: ran prepare, aggregate, synthesize, evaluate, publish" in cluster_run.output
    assert "master spark://127.0.0.1:" in cluster_run.output
    _assert_same_bundle(cluster_run, reference)
    _assert_one_commit_per_table(cluster_run)
    assert os.readlink(cluster_run.root / "release" / "latest") == RUN_ID


@pytest.mark.slow
@pytest.mark.cluster
@needs_cluster_runtime
@pytest.mark.timeout(3600)
def test_task_retries_under_local_2_2_give_the_same_bundle(reference: Run, retried_run: Run) -> None:
    # Task families every row_seeded run with the risk analysis goes through; each failed once.
    for point in (
        "combos.count",
        "combos.rare_lengths",
        "combos.selections",
        "synthesize.row_seeded",
        "evaluate.supports",
        "evaluate.rare_occurrences",
    ):
        assert (
            f"InjectedTaskFailure: injected test failure: first attempt of a task at fault point '{point}'"
            in retried_run.output
        ), point
    _assert_same_bundle(retried_run, reference)
    _assert_one_commit_per_table(retried_run)


@pytest.mark.slow
@pytest.mark.cluster
@needs_cluster_runtime
@pytest.mark.timeout(3600)
def test_executor_killed_mid_aggregate_and_mid_synthesize_gives_the_same_bundle(
    reference: Run, killed_run: Run, cluster: Cluster
) -> None:
    first, second = killed_run.finished
    assert "ran prepare, aggregate in" in first.stdout
    assert "ran synthesize, evaluate, publish in" in second.stdout
    assert first.output.count("Lost executor") >= 1 and second.output.count("Lost executor") >= 1
    worker_logs = "\n".join(p.read_text(errors="replace") for p in cluster.handle.worker_logs())
    exits = [
        line
        for line in worker_logs.splitlines()
        if "exitStatus 137" in line or "exited with code 137" in line
    ]
    assert len(exits) >= 2, worker_logs[-3000:]
    _assert_same_bundle(killed_run, reference)
    _assert_one_commit_per_table(killed_run)


@pytest.mark.slow
@pytest.mark.cluster
@needs_cluster_runtime
def test_local_cluster_registers_all_workers_and_its_cli_reports_them(cluster: Cluster) -> None:
    handle = cluster.handle
    info = handle.master_info()
    assert info["status"] == "ALIVE"
    assert info["url"] == handle.master_url
    alive = [w for w in info["workers"] if w["state"] == "ALIVE"]
    assert len(alive) == 2
    assert {w["host"] for w in alive} == {"127.0.0.1"}
    assert [p["alive"] for p in handle.status()["processes"]] == [True, True, True]

    script = [
        sys.executable,
        str(_ops.REPO / "scripts" / "local_cluster.py"),
        "--state-dir",
        str(cluster.state_dir),
    ]
    status = subprocess.run([*script, "status"], capture_output=True, text=True, timeout=60, check=False)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["master_url"] == handle.master_url
    assert report["alive_workers"] == 2
    no_app = subprocess.run([*script, "submit"], capture_output=True, text=True, timeout=60, check=False)
    assert no_app.returncode == 2 and "submit needs the application" in no_app.stderr


# ------------------------------------------------------------------------------------------ canaries


def _public_places(root: Path) -> list[Path]:
    places = [root / "release", root / "staging"]
    # Every _delta_log, private tables' included: no table keeps per-file statistics (min/max values).
    places += [table / "_delta_log" for table in _ops.table_dirs(root).values()]
    return [p for p in places if p.exists()]


@pytest.mark.slow
@pytest.mark.cluster
@needs_cluster_runtime
@pytest.mark.timeout(3600)
def test_no_canary_leaves_through_outputs_logs_or_work_dirs(
    spark: SparkSession, all_runs: list[Run], cluster: Cluster
) -> None:
    runs = all_runs
    rare = [v for v, _ in _ops.RARE_CANARIES.values()]
    for run in runs:
        # Positive control: the rare values are in the private sensitive aggregates.
        private = run.root / "private" / RUN_ID / "sensitive_aggregates.tsv"
        assert len(_ops.find_text([private], rare)) == len(rare), run.name
        assert _ops.find_text([private], [_ops.UNUSED_CANARY[1]]) == []
        assert _ops.find_text([run.output, *_public_places(run.root)], _ops.CANARIES) == [], run.name
        manifest = spark.read.format("delta").load(str(run.root / "tables" / "runs")).toJSON().collect()
        assert _ops.find_text(["\n".join(manifest)], _ops.CANARIES) == [], run.name
    # The cluster's own logs: master, workers, and every executor's stdout/stderr.
    assert _ops.find_text([cluster.state_dir / "logs", cluster.state_dir / "work"], _ops.CANARIES) == []


@pytest.mark.slow
@pytest.mark.cluster
@needs_cluster_runtime
@pytest.mark.timeout(1800)
def test_a_task_failure_quoting_a_value_reaches_no_cluster_log(work: Work, cluster: Cluster) -> None:
    data = _ops.write_tiny_input(work.base / "tiny" / "tiny.csv", TINY_CANARY)
    root = work.base / "tiny_out"
    report = work.base / "tiny_session.json"
    done = cluster.submit(
        _ops.DRIVER,
        ["run", *_ops.tiny_args("tiny-1", data, root, "spark.master=null")],
        driver_env={"CTDC_OPS_SPARK_FAILURE": "prepare", "CTDC_OPS_SESSION_REPORT": str(report)},
        cwd=work.base,
    )
    assert done.returncode == 3, done.tail()
    # spark-submit's PythonRunner merges the driver's stderr into its stdout.
    assert "error: stage prepare failed in Spark (PythonException)" in done.output
    # The session the pipeline built under spark-submit on the cluster: no UI, no event log.
    session = json.loads(report.read_text())
    assert session["master"] == cluster.handle.master_url
    assert (session["spark.ui.enabled"], session["spark.eventLog.enabled"], session["ui_web_url"]) == (
        "false",
        "false",
        None,
    )
    # The executors did fail on the value (positive control) ...
    assert "ERROR Executor: Exception in task" in "".join(
        p.read_text(errors="replace") for p in (cluster.state_dir / "work").rglob("stderr")
    )
    # ... and the value is in no output, log or work dir.
    assert (
        _ops.find_text([done.output, cluster.state_dir / "logs", cluster.state_dir / "work"], [TINY_CANARY])
        == []
    )
    assert not (root / "release").exists()
