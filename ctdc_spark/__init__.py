"""ctdc-spark: publish k-synthetic microdata, reportable aggregates and an offline explorer.

The library is importable without a cluster; Spark work happens only in the stage functions,
which receive a SparkSession built by :func:`ctdc_spark.session.build_session`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
