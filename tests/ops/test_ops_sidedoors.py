"""Side doors closed (docs/reliability.md 3.6, docs/architecture.md 7): no UI, no event log, no values in
failures.

* Every default keeps Spark's application UI and event log off: the session defaults, conf/local.yaml,
  conf/cluster.yaml, the shared test session, ``scripts/local_cluster.py``'s spark-submit line, the
  docker-compose pipeline service and the Airflow DAG. (The standalone cluster run in
  tests/ops/test_ops_cluster.py checks the session the pipeline builds under spark-submit.)
* Failing runs of the real CLI in a subprocess (real driver stdout/stderr and log4j output, with the
  shipped ``ctdc_spark/resources/log4j2.properties``) on tiny inputs with a planted canary:
  a malformed row holding the canary (exit 2), and a Spark task failing with the canary in its exception
  (exit 3). The canary must be in no output, manifest row, file or ``_delta_log`` under the output root.
  A positive control shows the task's exception really quotes the value.
* Quarantine mode keeps the malformed row in the private ``rejected`` table, and only there.
  (Rare values on the full CTDC-shaped data, on a cluster, are scanned in tests/ops/test_ops_cluster.py.)

Run: ``PYTHONPATH=$PWD .venv/bin/python -m pytest tests/ops/test_ops_sidedoors.py``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import _ops
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ctdc_spark.config import load_config
from ctdc_spark.pipeline import run_pipeline
from ctdc_spark.session import SAFE_DEFAULT_CONF

BAD_ROW_CANARY = "Zq7BadRowCanary"
TASK_CANARY = "Zq7TaskFailureCanary"
OFF = {"spark.ui.enabled": "false", "spark.eventLog.enabled": "false"}


# ------------------------------------------------------------------------------------ configuration


def test_session_defaults_turn_the_ui_and_event_log_off() -> None:
    assert {k: SAFE_DEFAULT_CONF[k] for k in OFF} == OFF


@pytest.mark.parametrize("name", ["local.yaml", "cluster.yaml", "ctdc_global.yaml"])
def test_shipped_configs_never_turn_them_on(name: str) -> None:
    cfg = load_config(_ops.REPO / "conf" / name, overrides=["input.path=x.csv"])
    for key in OFF:
        assert cfg.spark.conf.get(key, "false") == "false", (name, key)
    if name == "cluster.yaml":
        assert {k: cfg.spark.conf[k] for k in OFF} == OFF  # explicit, for a platform with other defaults


@pytest.mark.spark
def test_the_test_session_runs_without_ui_and_event_log(spark: SparkSession) -> None:
    conf = spark.sparkContext.getConf()
    assert {k: conf.get(k) for k in OFF} == OFF
    assert spark.sparkContext.uiWebUrl is None
    # No per-file min/max statistics in _delta_log (they would copy cell values of private tables).
    assert conf.get("spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols") == "0"


def _submit_confs(command: list[str]) -> dict[str, str]:
    return dict(command[i + 1].split("=", 1) for i, a in enumerate(command[:-1]) if a == "--conf")


def test_spark_submit_commands_turn_them_off(tmp_path: Path) -> None:
    lc = _ops.load_local_cluster()
    cluster = lc.LocalCluster(tmp_path)
    cluster.state = lc.ClusterState(
        master_url="spark://127.0.0.1:7077",
        master_port=7077,
        master_webui_port=8080,
        python=_ops.PYTHON,
        spark_home=str(tmp_path),
        state_dir=str(tmp_path),
        workers=2,
        worker_cores=1,
        worker_memory="1g",
    )
    commands = {
        "local_cluster.py submit": cluster.submit_command(
            ["jobs/run_pipeline.py"], py_files=tmp_path / "z.zip"
        ),
        "tests' spark-submit": _ops.spark_submit_command(
            "local[2]", _ops.JOBS / "run_pipeline.py", [], py_files=tmp_path
        ),
    }
    import test_ops_compose

    commands["docker-compose pipeline"] = test_ops_compose._compose()["services"]["pipeline"]["command"]
    for name, command in commands.items():
        confs = _submit_confs(command)
        assert {k: confs[k] for k in OFF} == OFF, name
    import test_ops_scheduler

    (operator,) = test_ops_scheduler._calls("SparkSubmitOperator")
    assert {k: operator["conf"][k] for k in OFF} == OFF


# ------------------------------------------------------------------------------------ failing runs


def _scan_run(spark: SparkSession, root: Path, canary: str, *texts: str) -> list[str]:
    """Hits of ``canary`` in captured output, the manifest rows and every non-Parquet file under ``root``."""
    hits = (
        _ops.find_text([*texts, root], [canary]) if root.exists() else _ops.find_text(list(texts), [canary])
    )
    runs = root / "tables" / "runs"
    if runs.exists():
        rows = spark.read.format("delta").load(str(runs)).toJSON().collect()
        hits += [f"manifest: {h}" for h in _ops.find_text(["\n".join(rows)], [canary])]
    return hits


def _manifest(spark: SparkSession, root: Path) -> list[dict[str, Any]]:
    return [r.asDict() for r in spark.read.format("delta").load(str(root / "tables" / "runs")).collect()]


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_malformed_row_with_a_canary_exits_2_and_the_value_is_nowhere(
    spark: SparkSession, tmp_path: Path
) -> None:
    data = _ops.write_tiny_input(tmp_path / "bad.csv", BAD_ROW_CANARY, extra_field=True)
    root = tmp_path / "out"
    args = _ops.tiny_args("bad-1", data, root, "spark.master=local[2]")
    done = _ops.run(_ops.cli_command("run", args), env=_ops.clean_env(pythonpath=True), cwd=tmp_path)
    assert done.returncode == 2, done.tail()
    # Names the data row (row 7 after the header), not the value.
    assert "error: bad input rows: " in done.stderr and "data rows 7 of bad.csv" in done.stderr, done.tail()
    assert _scan_run(spark, root, BAD_ROW_CANARY, done.stdout, done.stderr) == []
    (failed,) = [r for r in _manifest(spark, root) if r["status"] == "FAILED"]
    assert (failed["stage"], failed["error_class"]) == ("prepare", "InputDataError")
    assert not (root / "release").exists()


@pytest.mark.spark
def test_the_injected_task_failure_quotes_the_value(spark: SparkSession, tmp_path: Path) -> None:
    # Positive control for the next test: the failing job's exception text carries the canary.
    import ops_pipeline_driver
    from pyspark import cloudpickle

    data = _ops.write_tiny_input(tmp_path / "t.csv", TASK_CANARY)
    cells = spark.read.option("header", True).csv(str(data))
    # Python workers cannot import the tests folder: ship the driver module's function by value,
    # as the driver script (run as __main__) does.
    cloudpickle.register_pickle_by_value(ops_pipeline_driver)
    try:
        with pytest.raises(Exception, match=TASK_CANARY):
            cells.mapInPandas(ops_pipeline_driver._parse_cells, "n long").count()
    finally:
        cloudpickle.unregister_pickle_by_value(ops_pipeline_driver)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_task_failure_with_a_value_in_its_exception_exits_3_and_the_value_is_nowhere(
    spark: SparkSession, tmp_path: Path
) -> None:
    data = _ops.write_tiny_input(tmp_path / "t.csv", TASK_CANARY)
    root = tmp_path / "out"
    report = tmp_path / "session.json"
    args = _ops.tiny_args("task-1", data, root, "spark.master=local[2]")
    env = _ops.clean_env(
        pythonpath=True, CTDC_OPS_SPARK_FAILURE="prepare", CTDC_OPS_SESSION_REPORT=str(report)
    )
    done = _ops.run(_ops.cli_command("run", args), env=env, cwd=tmp_path)
    assert done.returncode == 3, done.tail()
    assert "error: stage prepare failed in Spark (PythonException); rerun the same command" in done.stderr
    assert "Traceback" not in done.stderr and "ValueError" not in done.stderr
    assert _scan_run(spark, root, TASK_CANARY, done.stdout, done.stderr) == []
    (failed,) = [r for r in _manifest(spark, root) if r["status"] == "FAILED"]
    assert failed["error_class"] == "PythonException"
    assert not (root / "release").exists()
    session = json.loads(report.read_text())
    assert (session["spark.ui.enabled"], session["spark.eventLog.enabled"], session["ui_web_url"]) == (
        "false",
        "false",
        None,
    )


@pytest.mark.spark
@pytest.mark.timeout(900)
@pytest.mark.slow
def test_quarantined_row_stays_in_the_private_rejected_table(spark: SparkSession, tmp_path: Path) -> None:
    data = _ops.write_tiny_input(tmp_path / "bad.csv", BAD_ROW_CANARY, extra_field=True)
    root = tmp_path / "out"
    cfg = load_config(
        _ops.CONFIG,
        overrides=[
            f"input.path={data}",
            f"output.root={root}",
            "input.use_columns=[]",
            "input.on_bad_rows=quarantine",
        ],
    )
    summary = run_pipeline(spark, cfg, stages=["prepare"], run_id="quarantine-1")
    assert summary.stages_run == ["prepare"]
    rejected = spark.read.format("delta").load(str(root / "tables" / "rejected"))
    assert rejected.where(F.col("raw_record").contains(BAD_ROW_CANARY)).count() == 1  # private, by design
    hits = _scan_run(spark, root, BAD_ROW_CANARY)
    assert hits == []  # not in the manifest, no statistics in _delta_log, no file
