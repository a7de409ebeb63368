"""The aggregate stage: exact sensitive counts of every combination of length <= L, the reportable
aggregates (k-protected, or differentially private when ``privacy.dp`` is set), their SDS-format
exports, and the private risk analysis.

Outputs (docs/architecture.md 3.3/4): Delta ``sensitive_aggregates`` (private), ``reportable_aggregates``
(public) and ``risk_by_length`` (private); ``private/<run_id>/sensitive_aggregates.tsv``,
``sensitive_rare_by_length.tsv``, ``sensitive_analysis_by_length.tsv``, ``risk_summary.json``;
``reportable_aggregates.tsv`` and ``.csv`` in the release bundle. In DP mode (:mod:`._dp`) also the
private ``dp_noisy_candidates`` and ``privacy_ledger`` tables and ``private/<run_id>/dp_state.json``,
the manifest's ``privacy`` map and the ``privacy`` section of the bundle's ``metadata.json``; the
exact aggregates and risk analysis are still computed, for private evaluation only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark._caching import cached
from ctdc_spark.aggregate._dp import (
    manifest_privacy,
    metadata_privacy,
    release_record_count,
    run_dp_marginals,
)
from ctdc_spark.combos.counting import count_supports, enumeration_partitions, lookup_of, risk_by_length
from ctdc_spark.combos.export import (
    TIDY_AGGREGATES_CSV,
    with_selections,
    write_aggregates_csv,
    write_aggregates_tidy_csv,
    write_aggregates_tsv,
)
from ctdc_spark.combos.keys import KeyLayout
from ctdc_spark.combos.risk import rare_by_length_lines, records_analysis
from ctdc_spark.io.files import update_metadata, write_json, write_lines
from ctdc_spark.schemas import (
    ATTRIBUTES,
    COLUMNS,
    RECORDS,
    REPORTABLE_AGGREGATES,
    RISK_BY_LENGTH,
    SENSITIVE_AGGREGATES,
)
from ctdc_spark.stage import ReleaseFacts, RunContext, StageResult

__all__ = ["PreparedRun", "load_prepared", "protect", "run_aggregate", "sensitive_counts"]

log = logging.getLogger(__name__)


def effective_length(reporting_length: int, n_columns: int) -> int:
    """docs/spec.md 3.1: L = 0 means all lengths (= number of expanded columns); larger L is capped."""
    if reporting_length == 0:
        return max(n_columns, 1)
    return max(1, min(reporting_length, n_columns))


@dataclass(frozen=True)
class PreparedRun:
    """The prepared tables of a run and the numbers derived from them.

    ``n_columns`` counts the expanded columns of the layout, including columns without any
    attribute: it comes from the schema, so the DP stage may use it as public information.
    """

    records: DataFrame
    attributes: DataFrame
    n_records: int
    n_attributes: int
    max_length: int
    partitions: int
    n_columns: int

    @property
    def layout(self) -> KeyLayout:
        """Key packing for this run's attributes and L."""
        return KeyLayout(max(self.n_attributes, 1), self.max_length)


def load_prepared(spark: SparkSession, ctx: RunContext) -> PreparedRun:
    """Read a run's prepared tables (written by the prepare stage)."""
    read = {spec.name: ctx.tables.read(spark, spec) for spec in (RECORDS, ATTRIBUTES, COLUMNS)}
    n_records = read["records"].count()
    n_attributes = read["attributes"].count()
    n_columns = read["columns"].count()
    return PreparedRun(
        records=read["records"],
        attributes=read["attributes"],
        n_records=n_records,
        n_attributes=n_attributes,
        max_length=effective_length(ctx.cfg.privacy.reporting_length, n_columns),
        partitions=enumeration_partitions(n_records, spark.sparkContext.defaultParallelism),
        n_columns=n_columns,
    )


@contextlib.contextmanager
def sensitive_counts(prepared: PreparedRun, *, resolution: int, apriori_pruning: bool) -> Iterator[DataFrame]:
    """Exact supports; with pruning, only combinations whose every shorter parent reaches k.

    Pruning runs one counting pass per length with the frequent combinations of the previous
    length in the task closure; the reportable output is identical, rare combinations are only
    counted when all their parents are frequent (docs/spec.md 3.2 downward closure). Each length's
    counts are cached (they are read twice: for the next length's frequent table and for the
    union) until the ``with`` block ends, so use the frame inside it.

    Args:
        prepared: The run's prepared tables.
        resolution: k.
        apriori_pruning: Count level by level with pruning.

    Yields:
        Columns ``length``, ``combo``, ``count``, ``first_record``.
    """
    layout, length = prepared.layout, prepared.max_length
    if not apriori_pruning:
        yield count_supports(
            prepared.records, layout=layout, max_length=length, partitions=prepared.partitions
        )
        return
    with contextlib.ExitStack() as caches:
        levels: list[DataFrame] = []
        frequent = None
        for level in range(1, length + 1):
            counted = count_supports(
                prepared.records,
                layout=layout,
                max_length=length,
                partitions=prepared.partitions,
                lengths=(level,),
                keep=frequent,
            )
            levels.append(caches.enter_context(cached(counted)))
            frequent = lookup_of(counted.where(F.col("count") >= resolution), layout)
            if len(frequent) == 0:
                break
        result = levels[0]
        for level_df in levels[1:]:
            result = result.unionByName(level_df)
        yield result


def protect(sensitive: DataFrame, *, resolution: int) -> DataFrame:
    """k-anonymity protection (docs/spec.md 3.2): floor counts to multiples of k, drop those below k.

    Returns:
        ``sensitive`` rows with count >= k plus ``protected_count``.
    """
    k = F.lit(resolution).cast("long")
    return sensitive.where(F.col("count") >= k).withColumn("protected_count", F.floor(F.col("count") / k) * k)


def run_aggregate(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Stage entry point.

    ``result.timings`` holds the wall seconds of its phases: ``load``, ``sensitive_aggregates``
    (enumeration, the shuffle and the Delta write), ``reportable_aggregates``, ``exports`` and
    ``risk_analysis``.
    """
    cfg = ctx.cfg
    k = cfg.privacy.resolution
    result = StageResult()
    with result.timed("load"):
        prepared = load_prepared(spark, ctx)
    pruning = cfg.aggregation.apriori_pruning

    with (
        result.timed("sensitive_aggregates"),
        sensitive_counts(prepared, resolution=k, apriori_pruning=pruning) as sensitive,
    ):
        result.delta_versions["sensitive_aggregates"] = ctx.tables.write(
            sensitive.withColumn("run_id", F.lit(ctx.run_id)), SENSITIVE_AGGREGATES, stage="aggregate"
        )
    # Everything below reads the materialised table, never re-enumerates.
    with result.timed("reportable_aggregates"):
        sensitive, named, reportable, header_label, record_count = _write_reportable(
            spark, ctx, prepared, result
        )
    with result.timed("exports"):
        _write_exports(
            ctx,
            prepared,
            named=named,
            reportable=reportable,
            header_label=header_label,
            record_count=record_count,
            result=result,
        )
    if cfg.aggregation.risk_analysis and not pruning:
        with result.timed("risk_analysis"):
            _write_risk(spark, ctx, prepared, sensitive, result)
    elif cfg.aggregation.risk_analysis:
        log.info("risk analysis skipped: apriori pruning does not count every rare combination")
    return result


def _write_reportable(
    spark: SparkSession, ctx: RunContext, prepared: PreparedRun, result: StageResult
) -> tuple[DataFrame, DataFrame, DataFrame, str, int]:
    """Write ``reportable_aggregates`` from the materialised sensitive table (k-anon or DP).

    Returns:
        The sensitive table, it with selection strings, the written reportable table, and the
        header label and record count of the reportable export.
    """
    cfg, k = ctx.cfg, ctx.cfg.privacy.resolution
    sensitive = ctx.tables.read(spark, SENSITIVE_AGGREGATES)
    named = with_selections(sensitive, prepared.attributes)
    if cfg.privacy.dp is None:
        reportable = protect(named, resolution=k)
        header_label, record_count = "protected_count", (prepared.n_records // k) * k
    else:
        release = run_dp_marginals(spark, ctx, prepared)
        reportable = with_selections(release.aggregates, prepared.attributes).select(
            F.lit(ctx.run_id).alias("run_id"),
            "length",
            "selections",
            F.col("count").alias("protected_count"),
            "combo",
        )
        header_label, record_count = release_record_count(release, n_records=prepared.n_records)
        result.privacy.update(manifest_privacy(release))
        result.outputs.append(str(update_metadata(ctx.staging_dir, "privacy", metadata_privacy(release))))
    result.delta_versions["reportable_aggregates"] = ctx.tables.write(
        reportable, REPORTABLE_AGGREGATES, stage="aggregate"
    )
    reportable = ctx.tables.read(spark, REPORTABLE_AGGREGATES)
    for spec in (SENSITIVE_AGGREGATES, REPORTABLE_AGGREGATES):
        result.row_counts[spec.name] = ctx.tables.rows_written(spark, spec)
    result.row_counts["records"] = prepared.n_records
    result.row_counts.update(ReleaseFacts(published_record_count=record_count).row_counts())
    return sensitive, named, reportable, header_label, record_count


def _write_exports(
    ctx: RunContext,
    prepared: PreparedRun,
    *,
    named: DataFrame,
    reportable: DataFrame,
    header_label: str,
    record_count: int,
    result: StageResult,
) -> None:
    """The sensitive TSV (private; not with pruning) and the reportable TSV and CSVs (staging)."""
    private, staging = ctx.private_dir, ctx.staging_dir
    if not ctx.cfg.aggregation.apriori_pruning:
        result.outputs.append(
            str(
                write_aggregates_tsv(
                    named,
                    private / "sensitive_aggregates.tsv",
                    count_col="count",
                    header_label="count",
                    record_count=prepared.n_records,
                )
            )
        )
    result.outputs.append(
        str(
            write_aggregates_tsv(
                reportable,
                staging / "reportable_aggregates.tsv",
                count_col="protected_count",
                header_label=header_label,
                record_count=record_count,
            )
        )
    )
    result.outputs.append(
        str(
            write_aggregates_csv(
                reportable, staging / "reportable_aggregates.csv", count_col="protected_count"
            )
        )
    )
    result.outputs.append(
        str(
            write_aggregates_tidy_csv(
                reportable,
                staging / TIDY_AGGREGATES_CSV,
                count_col="protected_count",
                max_length=prepared.max_length,
            )
        )
    )


def _write_risk(
    spark: SparkSession, ctx: RunContext, prepared: PreparedRun, sensitive: DataFrame, result: StageResult
) -> None:
    k = ctx.cfg.privacy.resolution
    rows = risk_by_length(
        spark,
        sensitive,
        prepared.records,
        layout=prepared.layout,
        max_length=prepared.max_length,
        resolution=k,
        partitions=prepared.partitions,
    )
    risk_df = spark.createDataFrame(
        [
            (ctx.run_id, r.length, r.combinations, r.rare_combinations, r.unique_records, r.rare_records)
            for r in rows
        ],
        RISK_BY_LENGTH.schema,
    )
    result.delta_versions["risk_by_length"] = ctx.tables.write(risk_df, RISK_BY_LENGTH, stage="aggregate")
    analysis = records_analysis(rows, n_records=prepared.n_records, resolution=k)
    private = ctx.private_dir
    result.outputs.append(
        str(write_lines(private / "sensitive_rare_by_length.tsv", rare_by_length_lines(rows)))
    )
    result.outputs.append(str(write_lines(private / "sensitive_analysis_by_length.tsv", analysis.lines())))
    result.outputs.append(str(write_json(private / "risk_summary.json", analysis.summary())))
