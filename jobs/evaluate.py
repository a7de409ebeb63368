"""spark-submit entry point of the evaluate stage (and any missing earlier stage of the run).

    spark-submit --master spark://HOST:7077 --packages "$DELTA_PACKAGE" \
      --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
      --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \
      --py-files dist/ctdc_spark.zip jobs/evaluate.py --config conf/cluster.yaml --run-id RUN_ID

``$DELTA_PACKAGE`` is :data:`ctdc_spark.session.DELTA_PACKAGE`, the Delta artifact of the pinned Spark.
"""

import sys

from ctdc_spark.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["evaluate", *sys.argv[1:]]))
