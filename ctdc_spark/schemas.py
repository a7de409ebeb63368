"""Declared schemas of every Delta table the pipeline writes (docs/architecture.md section 4).

Writers ``select`` columns in schema order (see :func:`ctdc_spark.io.delta.write_run_table`), so a
table's layout only changes here. Private tables hold sensitive data and never reach ``release/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T


@dataclass(frozen=True)
class TableSpec:
    """A Delta table: its name under ``tables/``, schema, partitioning and audience."""

    name: str
    schema: T.StructType
    partition_by: tuple[str, ...] = ("run_id",)
    private: bool = True


def _schema(*fields: tuple[str, T.DataType, bool]) -> T.StructType:
    return T.StructType([T.StructField(n, t, nullable) for n, t, nullable in fields])


RECORDS = TableSpec(
    "records",
    _schema(
        ("run_id", T.StringType(), False),
        ("record_id", T.LongType(), False),
        ("attrs", T.ArrayType(T.IntegerType()), False),
    ),
)
"""One row per subject after joining; ``attrs`` sorted ascending (= canonical order)."""

ATTRIBUTES = TableSpec(
    "attributes",
    _schema(
        ("run_id", T.StringType(), False),
        ("attr_id", T.IntegerType(), False),
        ("column", T.StringType(), False),
        ("value", T.StringType(), False),
        ("column_index", T.IntegerType(), False),
        ("source_column", T.StringType(), False),
        ("source_value", T.StringType(), False),
        ("count", T.LongType(), False),
    ),
)
"""The attribute dictionary; ``attr_id`` follows the byte order of ``column:value``.

``column`` is the (expanded) column of the attribute (``B_b1`` for a multi-value piece), and
``source_column``/``source_value`` what it came from (``B``/``b1``), used to re-join multi-value
columns on output. ``count`` is the attribute's sensitive support (number of records).
"""

COLUMNS = TableSpec(
    "columns",
    _schema(
        ("run_id", T.StringType(), False),
        ("column_index", T.IntegerType(), False),
        ("column", T.StringType(), False),
        ("source_column", T.StringType(), False),
        ("source_index", T.IntegerType(), False),
        ("multi_value_delimiter", T.StringType(), True),
    ),
)
"""The expanded column layout (docs/spec.md 2.5): every used column in output order, including columns
that hold no attribute, so exports can rebuild the original layout."""

REJECTED = TableSpec(
    "rejected",
    _schema(
        ("run_id", T.StringType(), False),
        ("source_file", T.StringType(), False),
        ("row_number", T.LongType(), False),
        ("reason", T.StringType(), False),
        ("raw_record", T.StringType(), True),
    ),
)
"""Quarantined malformed rows (``input.on_bad_rows: quarantine``); holds raw lines, so private."""

SENSITIVE_AGGREGATES = TableSpec(
    "sensitive_aggregates",
    _schema(
        ("run_id", T.StringType(), False),
        ("length", T.IntegerType(), False),
        ("combo", T.ArrayType(T.IntegerType()), False),
        ("count", T.LongType(), False),
        ("first_record", T.LongType(), False),
    ),
    partition_by=("run_id", "length"),
)
"""Exact counts of every combination of length <= L. ``first_record`` is the smallest record id
containing the combination; for a unique combination (count 1) it identifies the record, which
the records analysis (docs/spec.md 5.2) needs. Private."""

REPORTABLE_AGGREGATES = TableSpec(
    "reportable_aggregates",
    _schema(
        ("run_id", T.StringType(), False),
        ("length", T.IntegerType(), False),
        ("selections", T.StringType(), False),
        ("protected_count", T.LongType(), False),
        ("combo", T.ArrayType(T.IntegerType()), False),
    ),
    private=False,
)
"""Public aggregates; ``combo`` (attribute ids) is kept so later stages can join without parsing."""

DP_NOISY_CANDIDATES = TableSpec(
    "dp_noisy_candidates",
    _schema(
        ("run_id", T.StringType(), False),
        ("length", T.IntegerType(), False),
        ("combo", T.ArrayType(T.IntegerType()), False),
        ("noisy_count", T.DoubleType(), False),
        ("above_threshold", T.BooleanType(), False),
    ),
    partition_by=("run_id", "length"),
)
"""Every DP candidate of every level with its noisy count (docs/spec.md 3.4 Step B), written once per
level before anything reads it. Private: the candidates below the threshold, and length 1's
candidate set itself, are not covered by the DP guarantee."""

PRIVACY_LEDGER = TableSpec(
    "privacy_ledger",
    _schema(
        ("run_id", T.StringType(), False),
        ("dataset_id", T.StringType(), False),
        ("epsilon", T.DoubleType(), False),
        ("delta", T.DoubleType(), False),
        ("percentile_mechanism", T.StringType(), False),
    ),
)
"""Privacy budget spent per run and dataset; one row per run id, so a rerun never counts twice."""

SYNTHETIC_RECORDS = TableSpec(
    "synthetic_records",
    _schema(
        ("run_id", T.StringType(), False),
        ("record_id", T.LongType(), False),
        ("attrs", T.ArrayType(T.IntegerType()), False),
    ),
    private=False,
)
"""Synthetic records; ``record_id`` is the 0-based row of the released CSV (docs/spec.md 4.0 order)."""

RISK_BY_LENGTH = TableSpec(
    "risk_by_length",
    _schema(
        ("run_id", T.StringType(), False),
        ("length", T.IntegerType(), False),
        ("combinations", T.LongType(), False),
        ("rare_combinations", T.LongType(), False),
        ("unique_records", T.LongType(), False),
        ("rare_records", T.LongType(), False),
    ),
)
"""Sensitive-data risk analysis (docs/spec.md 3.3 rare combos and 5.2 records analysis, raw counts)."""

RUNS = TableSpec(
    "runs",
    _schema(
        ("run_id", T.StringType(), False),
        ("attempt_id", T.StringType(), False),
        ("stage", T.StringType(), False),
        ("status", T.StringType(), False),
        ("started_at", T.TimestampType(), False),
        ("ended_at", T.TimestampType(), True),
        ("elapsed_seconds", T.DoubleType(), True),
        ("input_fingerprint", T.StringType(), False),
        ("config_hash", T.StringType(), False),
        ("row_counts", T.MapType(T.StringType(), T.LongType()), True),
        ("delta_versions", T.MapType(T.StringType(), T.LongType()), True),
        ("library_versions", T.MapType(T.StringType(), T.StringType()), True),
        ("privacy", T.MapType(T.StringType(), T.DoubleType()), True),
        ("error_class", T.StringType(), True),
    ),
    partition_by=(),
)
"""The run manifest: one append-only row per stage attempt and status change (never values)."""

EVALUATION_METRICS = TableSpec(
    "evaluation_metrics",
    _schema(
        ("run_id", T.StringType(), False),
        ("audience", T.StringType(), False),
        ("metric", T.StringType(), False),
        ("length", T.IntegerType(), True),
        ("bucket", T.LongType(), True),
        ("value", T.DoubleType(), True),
    ),
)

ALL_TABLES = (
    RECORDS,
    ATTRIBUTES,
    COLUMNS,
    REJECTED,
    SENSITIVE_AGGREGATES,
    REPORTABLE_AGGREGATES,
    DP_NOISY_CANDIDATES,
    PRIVACY_LEDGER,
    SYNTHETIC_RECORDS,
    RISK_BY_LENGTH,
    RUNS,
    EVALUATION_METRICS,
)
