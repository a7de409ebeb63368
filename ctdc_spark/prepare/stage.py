"""The prepare stage: read the sensitive input and write the ``records``, ``attributes`` and
``columns`` Delta tables (plus ``rejected`` when bad rows are quarantined).

Applies every input rule of docs/spec.md section 2. Bad input fails with exit code 2 and a message that
names the problem, the rows (numbers only) and the fix, before anything is written, so earlier
outputs stay untouched.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Iterator, Mapping, Sequence

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from ctdc_spark._caching import cached
from ctdc_spark.config import InputConfig
from ctdc_spark.errors import InputDataError
from ctdc_spark.io import delta as delta_io
from ctdc_spark.prepare._attributes import (
    CellRules,
    attribute_entries,
    attribute_values,
    attributes_table,
    bin_problems,
    columns_table,
    conflicting_columns,
    records_table,
    subject_key,
)
from ctdc_spark.prepare._layout import InputLayout, inspect_input, list_input_files, resolve_layout
from ctdc_spark.prepare._read import allow_charset, read_raw
from ctdc_spark.schemas import ATTRIBUTES, COLUMNS, RECORDS, REJECTED, TableSpec
from ctdc_spark.stage import RunContext, StageResult

__all__ = ["prepare_tables", "run_prepare"]

log = logging.getLogger(__name__)

_EXAMPLE_ROWS = 5
_REASONS = {
    "fields": "have the wrong number of fields (expected {n})",
    "encoding": "contain bytes that are not valid {encoding}",
}
_FIXES = {
    "fields": "fix the quoting or delimiters of those rows",
    "encoding": "save the file as UTF-8 or set input.encoding (e.g. latin-1)",
}


def _remote_layout(spark: SparkSession, cfg: InputConfig) -> InputLayout:
    """Resolve the layout of an input the driver cannot open directly (e.g. s3://), via Spark."""
    files = list_input_files(cfg)
    if cfg.format in ("parquet", "delta"):
        header = spark.read.format(cfg.format).load(cfg.path).columns
    else:
        allow_charset(spark, cfg)
        first = spark.read.option("encoding", cfg.java_charset).text(cfg.path).head(1)
        if not first:
            raise InputDataError(f"input.path {cfg.path} is empty; it needs a header row and data rows.")
        header = next(csv.reader([first[0][0]], delimiter=cfg.field_delimiter))
    return resolve_layout(cfg, files, header)


def _describe_rows(bad: DataFrame) -> str:
    rows = bad.orderBy("row_number").select("source_file", "file_row").limit(_EXAMPLE_ROWS).collect()
    by_file: dict[str, list[str]] = {}
    for r in rows:
        by_file.setdefault(r["source_file"], []).append(str(r["file_row"]))
    return "; ".join(f"data rows {', '.join(nums)} of {name}" for name, nums in by_file.items())


def _check_bad_rows(checked: DataFrame, cfg: InputConfig, layout: InputLayout) -> DataFrame | None:
    """Fail on bad rows, or return them for quarantine (``input.on_bad_rows``)."""
    counts = {
        r["problem"]: r["n"] for r in checked.groupBy("problem").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    total = sum(counts.values())
    if total == 0:
        raise InputDataError(f"input.path {cfg.path} has a header but no data rows; add records to the file.")
    problems = {k: v for k, v in counts.items() if k is not None}
    if not problems:
        return None
    bad = checked.where(F.col("problem").isNotNull())
    if cfg.on_bad_rows == "quarantine":
        log.warning(
            "quarantining %d bad rows of %d to the private rejected table", sum(problems.values()), total
        )
        return bad
    parts = []
    for problem, n in sorted(problems.items()):
        where = _describe_rows(bad.where(F.col("problem") == F.lit(problem)))
        reason = _REASONS.get(problem, "have a {problem}").format(
            n=layout.n_fields, encoding=cfg.encoding, problem=problem
        )
        fix = _FIXES.get(problem, "fix or remove those values")
        parts.append(f"{n} row(s) {reason} (e.g. {where}); {fix}")
    raise InputDataError(
        "bad input rows: "
        + " | ".join(parts)
        + ". Or set input.on_bad_rows: quarantine to move them to the private `rejected` table."
    )


def _raise_subject_errors(rows: DataFrame, entries: DataFrame, layout: InputLayout) -> None:
    missing = rows.where(subject_key(layout).isNull())
    n_missing = missing.count()
    if n_missing:
        raise InputDataError(
            f"records with missing/empty Subject ID: {n_missing} row(s) (e.g. {_describe_rows(missing)}); "
            "give every row an id in that column or remove those rows."
        )
    conflicts = sorted(r["source_index"] for r in conflicting_columns(entries).collect())
    if conflicts:
        names = ", ".join(layout.header[i] for i in conflicts)
        raise InputDataError(
            "records with duplicated IDs, please set the following columns as multi value if you want "
            f"to join records with duplicated IDs: {names}"
        )


@contextlib.contextmanager
def prepare_tables(
    spark: SparkSession, cfg: InputConfig, *, run_id: str
) -> Iterator[tuple[DataFrame, DataFrame, DataFrame, DataFrame | None]]:
    """Read and check the input, and build the prepared tables (not yet written).

    Caches the parsed rows and the attribute entries (each about the size of the input) until the
    ``with`` block ends: write the tables inside it.

    Args:
        spark: Session.
        cfg: The ``input`` config section.
        run_id: Run id to tag rows with.

    Yields:
        ``(records, attributes, columns, rejected_or_None)``.

    Raises:
        InputDataError, ConfigError: bad input or a config that does not fit it.
    """
    layout = inspect_input(cfg) or _remote_layout(spark, cfg)
    rules = CellRules.from_config(cfg.unknown_values)
    raw = read_raw(spark, cfg, layout)
    if cfg.record_limit:
        raw = raw.where(F.col("row_number") <= F.lit(cfg.record_limit))
    checked = raw.withColumn("problem", F.coalesce("problem", bin_problems(raw, layout=layout, rules=rules)))
    with contextlib.ExitStack() as caches:
        # Parsed once and reused by the checks and every table below (docs/reliability.md 4.1: malformed-row
        # accounting must run on materialised rows, not on re-parsed, column-pruned scans). A file is
        # one ordered split (multiLine), so everything downstream would run in a single task: spread
        # the numbered rows over the cores, by row number so a recomputed partition holds the same rows.
        spread = checked.repartition(spark.sparkContext.defaultParallelism, "row_number")
        checked = caches.enter_context(cached(spread, StorageLevel.MEMORY_AND_DISK))
        bad = _check_bad_rows(checked, cfg, layout)
        rejected = None
        if bad is not None:
            rejected = bad.select(
                F.lit(run_id).alias("run_id"),
                "source_file",
                "row_number",
                F.coalesce(
                    F.when(
                        F.col("problem") == "fields",
                        F.lit(f"wrong number of fields (expected {layout.n_fields})"),
                    ),
                    F.when(F.col("problem") == "encoding", F.lit(f"bytes not valid in {cfg.encoding}")),
                    F.col("problem"),
                ).alias("reason"),
                "raw_record",
            )
        good = checked.where(F.col("problem").isNull())

        if layout.subject_id_index is not None:
            key = subject_key(layout)
            values = attribute_values(good, layout=layout, rules=rules, key=key)
            entries = attribute_entries(values, layout=layout)
            _raise_subject_errors(good, entries, layout)
            entries = entries.distinct()
            keys = values.select("key").distinct()
            # Subjects sorted by their normalised id (docs/spec.md 2.6); one row per subject.
            record_id = F.dense_rank().over(Window.orderBy("key")) - 1
        else:
            values = attribute_values(good, layout=layout, rules=rules, key=F.col("row_number"))
            entries = attribute_entries(values, layout=layout)
            keys = values.select("key")
            record_id = F.col("key") - 1
        entries = caches.enter_context(cached(entries, StorageLevel.MEMORY_AND_DISK))

        source_columns = spark.createDataFrame(
            [
                (
                    c.file_index,
                    None if c.role == "multi" else c.name,
                    c.name,
                    c.multi_value_delimiter,
                )
                for c in layout.columns
            ],
            "source_index int, column string, source_column string, multi_value_delimiter string",
        )
        # The expanded layout has one row per column: collect it once, check it on the driver and
        # reuse the collected rows, so neither the check nor later joins recompute it.
        layout_rows = columns_table(source_columns, entries, run_id=run_id).collect()
        _check_column_clash(layout_rows)
        columns = spark.createDataFrame(layout_rows, COLUMNS.schema)
        attributes = attributes_table(entries, columns, run_id=run_id)
        records = records_table(keys, entries, attributes, run_id=run_id, record_id=record_id)
        yield records, attributes, columns, rejected


def _check_column_clash(layout_rows: Sequence[Row]) -> None:
    seen: dict[str, int] = {}
    for row in layout_rows:
        if row["column"] in seen:
            first = min(seen[row["column"]], row["source_index"])
            raise InputDataError(
                "a multi-value column expands into an indicator column whose name is already used by "
                f"input column {first + 1}; rename that column or exclude it with input.use_columns."
            )
        seen[row["column"]] = row["source_index"]


def wide_columns(distinct_values: Mapping[str, int], *, n_records: int, resolution: int) -> list[str]:
    """Columns with more distinct values than ``n / k``: most of their values cannot reach k.

    Such a column (a case id, free text, an exact date) adds nothing to the release, since a value held
    by fewer than k records appears in no reportable combination and no synthetic record, yet every
    one of its values multiplies the combinations aggregation counts.

    Example:
        >>> wide_columns({"case_id": 1000, "gender": 3}, n_records=1000, resolution=10)
        ['case_id']
    """
    limit = n_records / resolution
    return sorted(column for column, n in distinct_values.items() if n > limit)


def _warn_about_wide_columns(
    spark: SparkSession, ctx: RunContext, *, n_records: int, resolution: int
) -> None:
    per_column = ctx.tables.read(spark, ATTRIBUTES).groupBy("column").agg(F.count("*").alias("n"))
    distinct = {r["column"]: int(r["n"]) for r in per_column.collect()}
    for column in wide_columns(distinct, n_records=n_records, resolution=resolution):
        log.warning(
            "column %s has %d distinct values for %d records, more than n / k = %d: values held by fewer "
            "than k = %d records never reach the release, and each one multiplies the work of aggregation. "
            "Drop the column (leave it out of input.use_columns) or bin it (input.bins, or coarser values).",
            column,
            distinct[column],
            n_records,
            n_records // resolution,
            resolution,
        )


def run_prepare(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Stage entry point: build and write the prepared tables for ``ctx.run_id``."""
    result = StageResult()
    with prepare_tables(spark, ctx.cfg.input, run_id=ctx.run_id) as (records, attributes, columns, rejected):
        written: Sequence[tuple[TableSpec, DataFrame | None]] = [
            (RECORDS, records),
            (ATTRIBUTES, attributes),
            (COLUMNS, columns),
            (REJECTED, rejected),
        ]
        for spec, df in written:
            if df is None:
                continue
            version = ctx.tables.write(df, spec, stage="prepare")
            result.delta_versions[spec.name] = version
            result.outputs.append(delta_io.table_path(ctx.root, spec.name))
    for spec in (RECORDS, ATTRIBUTES, REJECTED):
        if spec.name in result.delta_versions:
            result.row_counts[spec.name] = ctx.tables.rows_written(spark, spec)
    _warn_about_wide_columns(
        spark, ctx, n_records=result.row_counts[RECORDS.name], resolution=ctx.cfg.privacy.resolution
    )
    return result
