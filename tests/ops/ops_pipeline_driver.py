"""The ``ctdc-spark`` CLI with test-only driver faults, for the operations tests (not a pytest module).

Runs :func:`ctdc_spark.cli.main` on ``sys.argv[1:]`` (e.g. ``run --config ... --run-id ...``) after
installing the faults the environment asks for:

* ``CTDC_OPS_EXIT_AFTER_COMMIT=<table>``: the driver process dies (``os._exit(1)``, no cleanup, no
  manifest row, the run lock left behind) right after the commit of ``<table>``, i.e. between two
  table commits of a stage (docs/reliability.md 1.2 "kill the driver after table A's commit").
* ``CTDC_OPS_SPARK_FAILURE=<stage>``: when ``<stage>`` starts, a Spark job reads the input CSV and
  parses every cell with Python's ``int()`` inside a ``mapInPandas`` task, so on an input with a
  non-numeric cell a task fails with ``ValueError: invalid literal for int() with base 10: '<value>'``:
  a failure inside Spark whose message quotes a record value, as a bug in task code would. The value
  must never reach the driver's output, the logs, the manifest or the release.
* ``CTDC_OPS_SESSION_REPORT=<path>``: once the session is built, write its UI and event-log settings
  (``spark.ui.enabled``, ``spark.eventLog.enabled``, the UI's URL if one runs, the master) as JSON.

Local mode::

    python tests/ops/ops_pipeline_driver.py run --config conf/local.yaml --run-id r1 --set ...

On a cluster it is the application file instead of ``jobs/run_pipeline.py`` (``ctdc_spark`` comes
from ``--py-files``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

EXIT_AFTER_COMMIT_ENV = "CTDC_OPS_EXIT_AFTER_COMMIT"
SPARK_FAILURE_ENV = "CTDC_OPS_SPARK_FAILURE"
SESSION_REPORT_ENV = "CTDC_OPS_SESSION_REPORT"


def _exit_after_commit(table: str) -> None:
    from ctdc_spark.io import delta as delta_io

    real = delta_io.write_run_table

    def write_then_die(df: Any, spec: Any, **kwargs: Any) -> int:
        version = real(df, spec, **kwargs)
        if spec.name == table:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        return version

    delta_io.write_run_table = write_then_die  # stages call it through the module attribute


def _parse_cells(batches: Iterator[Any]) -> Iterator[Any]:
    import pandas as pd

    for pdf in batches:
        yield pd.DataFrame({"n": [sum(int(v) for v in row) for row in pdf.itertuples(index=False)]})


def _spark_failure(stage: str) -> None:
    from ctdc_spark import pipeline

    registry_factory = pipeline._stage_functions

    def registry() -> dict[str, Callable[..., Any]]:
        functions = registry_factory()
        real = functions[stage]

        def failing(spark: Any, ctx: Any) -> Any:
            cells = spark.read.option("header", True).csv(ctx.cfg.input.path)
            cells.mapInPandas(_parse_cells, "n long").count()
            return real(spark, ctx)

        functions[stage] = failing
        return functions

    pipeline._stage_functions = registry


def _session_report(path: str) -> None:
    import json

    from ctdc_spark import session

    real = session.build_session

    def build_and_report(*args: Any, **kwargs: Any) -> Any:
        spark = real(*args, **kwargs)
        conf = spark.sparkContext.getConf()
        report = {
            "spark.ui.enabled": conf.get("spark.ui.enabled"),
            "spark.eventLog.enabled": conf.get("spark.eventLog.enabled"),
            "ui_web_url": spark.sparkContext.uiWebUrl,
            "master": spark.sparkContext.master,
        }
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(report, handle)
        return spark

    session.build_session = build_and_report  # the CLI imports it from the module when it runs


def main() -> int:
    if os.environ.get(EXIT_AFTER_COMMIT_ENV):
        _exit_after_commit(os.environ[EXIT_AFTER_COMMIT_ENV])
    if os.environ.get(SPARK_FAILURE_ENV):
        _spark_failure(os.environ[SPARK_FAILURE_ENV])
    if os.environ.get(SESSION_REPORT_ENV):
        _session_report(os.environ[SESSION_REPORT_ENV])
    from ctdc_spark.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
