"""Airflow DAG: scheduled ctdc-spark refresh with ``SparkSubmitOperator`` (example; adapt the constants).

One task spark-submits ``jobs/run_pipeline.py`` in client mode against a Spark cluster; the run id is derived
from the data interval, so a retry or a manual re-run of the same interval reuses the same run id and the
pipeline's idempotent Delta writes make it a no-op for whatever already committed (docs/reliability.md 1.2,
5.2). The run id is a UTC timestamp (``20260803T000000Z``), so it sorts, and anything derived from it (e.g. a
Delta ``txnVersion``) increases monotonically with the schedule.

What the task runs (client mode; exit code 0/2/3/1 of ctdc-spark becomes the task state)::

    spark-submit --master <connection> --deploy-mode client \
      --packages $DELTA_PACKAGE \
      --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
      --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \
      --conf spark.ui.enabled=false --conf spark.eventLog.enabled=false \
      --py-files $CTDC_SPARK_HOME/dist/ctdc_spark.zip \
      $CTDC_SPARK_HOME/jobs/run_pipeline.py --config $CTDC_SPARK_HOME/conf/cluster.yaml \
        --run-id 20260803T000000Z --set input.path=... --set output.root=...

Deployment:

1. ``pip install apache-airflow-providers-apache-spark`` on the Airflow workers (which need Java and the
   ``spark-submit`` of Spark 4.1.x, and the same Python deps as the cluster for client mode).
2. Check out this repository at ``$CTDC_SPARK_HOME`` on every Airflow worker and build the executor zip
   at deploy time: ``python scripts/build_pyfiles.py --output $CTDC_SPARK_HOME/dist/ctdc_spark.zip``.
3. Create the connection ``spark_ctdc`` (type Spark; host ``spark://<master>``, port 7077, or ``yarn`` /
   ``k8s://...``); set ``CTDC_INPUT_PATH`` and ``CTDC_OUTPUT_ROOT`` (paths every executor sees).
4. Drop this file in the DAGs folder. A manual run for a chosen run id: trigger with config
   ``{"run_id": "20260803T000000Z"}``.

Privacy: Airflow keeps every spark-submit output line in the task log, and on failure the provider appends the
last log lines to the exception. ctdc-spark never prints data values, and ``conf/log4j2-cluster.properties``
keeps Spark at WARN (at INFO Delta logs column statistics); keep the task logs under the access control of
the raw data anyway. ``max_active_runs=1`` keeps a single writer per table (docs/reliability.md 1.1, 5.2).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

try:  # Airflow 3
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.4+
    from airflow import DAG
    from airflow.models.param import Param

CTDC_SPARK_HOME = os.environ.get("CTDC_SPARK_HOME", "/opt/ctdc-spark")
INPUT_PATH = os.environ.get("CTDC_INPUT_PATH", "/shared/ctdc/input/ctdc.csv")
OUTPUT_ROOT = os.environ.get("CTDC_OUTPUT_ROOT", "/shared/ctdc/output")

# ctdc_spark.session.DELTA_PACKAGE, written out because the DAG must parse on schedulers without
# ctdc_spark (tests/ops/test_ops_scheduler.py checks that the two agree).
DELTA_PACKAGE = "io.delta:delta-spark_4.1_2.13:4.3.1"
APPLICATION = f"{CTDC_SPARK_HOME}/jobs/run_pipeline.py"
CONFIG_FILE = f"{CTDC_SPARK_HOME}/conf/cluster.yaml"
PY_FILES = f"{CTDC_SPARK_HOME}/dist/ctdc_spark.zip"  # built by scripts/build_pyfiles.py at deploy time
LOG4J2 = f"-Dlog4j2.configurationFile=file:{CTDC_SPARK_HOME}/conf/log4j2-cluster.properties"

# One run id per data interval (Airflow keeps these timestamps in UTC). A manual trigger may pass
# {"run_id": ...}; Airflow 3 manual runs may have no data interval, so fall back to the time the run was
# queued for.
RUN_ID = "{{ params.run_id or (data_interval_start or dag_run.run_after).strftime('%Y%m%dT%H%M%SZ') }}"

SPARK_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.ui.enabled": "false",
    "spark.eventLog.enabled": "false",
    "spark.driver.extraJavaOptions": LOG4J2,
    "spark.executor.extraJavaOptions": LOG4J2,
}

with DAG(
    dag_id="ctdc_spark_refresh",
    description="Refresh k-synthetic microdata, reportable aggregates and the explorer (ctdc-spark)",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 5, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one writer per Delta table at a time
    params={"run_id": Param("", type="string", description="override the run id (default: data interval)")},
    default_args={
        "owner": "data-platform",
        "retries": 2,  # safe: same interval -> same run id -> idempotent writes
        "retry_delay": timedelta(minutes=15),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(hours=6),
    },
    tags=["ctdc", "spark", "privacy"],
    doc_md=__doc__,
) as dag:
    run_pipeline = SparkSubmitOperator(
        task_id="run_pipeline",
        conn_id="spark_ctdc",
        deploy_mode="client",
        application=APPLICATION,
        application_args=[
            "--config",
            CONFIG_FILE,
            "--run-id",
            RUN_ID,
            "--set",
            f"input.path={INPUT_PATH}",
            "--set",
            f"output.root={OUTPUT_ROOT}",
        ],
        py_files=PY_FILES,
        packages=DELTA_PACKAGE,
        conf=SPARK_CONF,
        name="ctdc-spark-refresh",
    )
