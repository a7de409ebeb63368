"""A tiny stand-alone PySpark job used by tests/ops/test_ops_faults.py to prove the fault-injection hooks.

It is not a pytest module (no ``test_`` prefix). Map stage: ``mapInPandas`` over ``spark.range`` whose
function is the fault point ``map`` (:func:`ctdc_spark._faults.fault_point`), like every task function
of ctdc_spark; then one shuffle (``groupBy``) and a sorted collect. Every value is a pure function of
the row id, so a recomputed task produces the same rows and the result must equal a clean run.

Run directly (the master is set here; the hooks are tests/ops/faults.py's)::

    python tests/ops/ops_fault_job.py --master 'local[2,2]' --out /tmp/a.json \
        --conf spark.executorEnv.CTDC_FAULT_HOOK=faults:fail_first_attempt \
        --conf spark.executorEnv.PYTHONPATH=$PWD/tests/ops

or on the standalone dev cluster (``python scripts/local_cluster.py submit -- tests/ops/ops_fault_job.py
--out /tmp/b.json``), where the master and confs come from spark-submit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ctdc_spark._faults import fault_point

ROWS = 20_000
MAP_PARTITIONS = 8
KEYS = 97


@fault_point("map")
def _map_stage(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for pdf in batches:
        ids = pdf["id"]
        yield pd.DataFrame({"k": ids % KEYS, "v": (ids * 2_654_435_761) % 1_000})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", default=None, help="only for direct runs; spark-submit sets it otherwise")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, type=Path, help="JSON file for the collected result")
    args = parser.parse_args(argv)

    builder = SparkSession.builder.appName("ctdc-ops-fault-job")
    if args.master:
        builder = builder.master(args.master)
    builder = builder.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
    for item in args.conf:
        key, value = item.split("=", 1)
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        result = (
            spark.range(0, ROWS, numPartitions=MAP_PARTITIONS)
            .mapInPandas(_map_stage, "k long, v long")
            .groupBy("k")
            .agg(F.count("*").alias("n"), F.sum("v").alias("s"))
            .orderBy("k")
        )
        rows = [r.asDict() for r in result.collect()]
        args.out.write_text(json.dumps(rows), encoding="utf-8")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
