"""The evaluate stage: verify the synthetic data's privacy guarantee, then measure its fidelity.

Order of work (SPEC.md section 5, ARCHITECTURE.md 3.3 and 7):

1. Withdraw any public evaluation output of an earlier attempt of this run, then **verify** the
   guarantee independently of the synthesizer (:mod:`._verify`). A violation raises
   :class:`~ctdc_spark.errors.VerificationError` (exit 3) before anything is written, so nothing is
   published.
2. Count the synthetic records' combinations with the aggregate stage's engine (same L) and join
   the sensitive (SEN), reportable (REP) and synthetic (SYN) aggregates once
   (:func:`._compare.combine_counts`). With apriori pruning the sensitive table lacks rare
   combinations, so the exact counts are recomputed with the engine instead.
3. Reduce the joined frame to a few rows per length and per count bucket and derive every SPEC.md
   5.2 metric from them (:mod:`._metrics`).

Outputs:

* public, ``staging/<run_id>/`` (published as ``release/<run_id>/``): ``evaluation.json`` (synthetic
  vs reportable only, with the explorer's ``stats``) and the ``guarantee``/``parameters`` sections of
  ``metadata.json``;
* private, ``private/<run_id>/``: ``evaluation_private.json``, the SDS TSVs of SPEC.md 5.3 and
  ``evaluation_report.html``;
* Delta ``evaluation_metrics`` (one row per metric, tagged public or private).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark.aggregate import PreparedRun, load_prepared, sensitive_counts
from ctdc_spark.aggregate._counting import count_supports, enumeration_partitions
from ctdc_spark.aggregate._export import with_selections, write_aggregates_tsv
from ctdc_spark.aggregate._risk import RiskByLength, records_analysis, risk_by_length
from ctdc_spark.errors import StageFailedError, VerificationError
from ctdc_spark.evaluate._compare import (
    combine_counts,
    private_by_bucket,
    private_by_length,
    public_by_bucket,
    public_by_length,
    rare_synthetic_combinations,
)
from ctdc_spark.evaluate._metrics import (
    ComparisonSummary,
    CountComparison,
    Leakage,
    Preservation,
    PreservationResult,
    leakage_lines,
    official_buckets,
    parameter_lines,
    public_stats,
    record_expansion_pct,
    synthetic_stats_lines,
)
from ctdc_spark.evaluate._outputs import (
    RunFacts,
    SensitiveCombinations,
    metric_rows,
    private_evaluation,
    public_evaluation,
)
from ctdc_spark.evaluate._rare import rare_members
from ctdc_spark.evaluate._report import render_report
from ctdc_spark.evaluate._verify import Verification, verify_k_synthetic, verify_reportable_combinations
from ctdc_spark.io import delta as delta_io
from ctdc_spark.io.exports import write_sorted_lines
from ctdc_spark.io.files import atomic_text_writer, update_metadata, write_json, write_lines
from ctdc_spark.schemas import (
    EVALUATION_METRICS,
    REPORTABLE_AGGREGATES,
    RISK_BY_LENGTH,
    SENSITIVE_AGGREGATES,
    SYNTHETIC_RECORDS,
)
from ctdc_spark.stage import RunContext, StageResult

__all__ = ["run_evaluate"]

log = logging.getLogger(__name__)

EVALUATION_JSON = "evaluation.json"
PRIVATE_JSON = "evaluation_private.json"
REPORT_HTML = "evaluation_report.html"
RARE_COMBOS_TSV = "synthetic_rare_combos_by_length.tsv"
RECORDS_ANALYSIS_TSV = "sensitive_analysis_by_length.tsv"


def _read_synthetic(spark: SparkSession, ctx: RunContext) -> DataFrame:
    if not delta_io.run_has_rows(spark, SYNTHETIC_RECORDS, root=ctx.root, run_id=ctx.run_id):
        raise StageFailedError(
            f"evaluate: run {ctx.run_id} has no synthetic records; run the synthesize stage first "
            "(ctdc-spark synthesize with the same --run-id)."
        )
    return delta_io.read_run_table(spark, SYNTHETIC_RECORDS, root=ctx.root, run_id=ctx.run_id).select(
        "record_id", "attrs"
    )


def _withdraw_public_outputs(staging: Path) -> None:
    """Remove an earlier attempt's public evaluation, so a failed check never leaves one behind."""
    (staging / EVALUATION_JSON).unlink(missing_ok=True)
    update_metadata(staging, "guarantee", None)


def _records_analysis_rows(
    spark: SparkSession, ctx: RunContext, prepared: PreparedRun, sensitive: DataFrame, *, complete_table: bool
) -> list[RiskByLength]:
    """The aggregate stage's risk rows when it wrote them, else computed now from ``sensitive``.

    The aggregate stage skips its risk analysis with apriori pruning (or when disabled); then the
    engine's rare-record pass runs here on the exact counts.
    """
    if complete_table and delta_io.run_has_rows(spark, RISK_BY_LENGTH, root=ctx.root, run_id=ctx.run_id):
        rows = delta_io.read_run_table(spark, RISK_BY_LENGTH, root=ctx.root, run_id=ctx.run_id).collect()
        return sorted(
            (
                RiskByLength(
                    r["length"],
                    r["combinations"],
                    r["rare_combinations"],
                    r["unique_records"],
                    r["rare_records"],
                )
                for r in rows
            ),
            key=lambda r: r.length,
        )
    return risk_by_length(
        spark,
        sensitive,
        prepared.records,
        layout=prepared.layout,
        max_length=prepared.max_length,
        resolution=ctx.cfg.privacy.resolution,
        partitions=prepared.partitions,
    )


def run_evaluate(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Stage entry point (see the module docstring).

    Raises:
        VerificationError: a synthetic record (or, for aggregate_seeded, a combination of length
            <= L) describes fewer than k sensitive records; nothing is written.
        StageFailedError: the synthesize stage has not written this run's synthetic records.
        ConfigError: the verification's bitmap index exceeds ``synthesis.max_broadcast_mb``.
    """
    cfg = ctx.cfg
    k, mode = cfg.privacy.resolution, cfg.synthesis.mode
    prepared = load_prepared(spark, ctx)
    layout, max_length = prepared.layout, prepared.max_length
    synthetic = _read_synthetic(spark, ctx)
    n_synthetic = synthetic.count()
    partitions = enumeration_partitions(n_synthetic, spark.sparkContext.defaultParallelism)
    reportable = delta_io.read_run_table(spark, REPORTABLE_AGGREGATES, root=ctx.root, run_id=ctx.run_id)
    _withdraw_public_outputs(ctx.staging_dir)

    if mode == "aggregate_seeded":
        verification = verify_reportable_combinations(
            synthetic, reportable, layout=layout, resolution=k, max_length=max_length, partitions=partitions
        )
    else:
        verification = verify_k_synthetic(
            synthetic,
            prepared.records,
            n_attributes=prepared.n_attributes,
            resolution=k,
            max_length=max_length,
            max_broadcast_mb=cfg.synthesis.max_broadcast_mb,
            partitions=partitions,
        )
    if not verification.passed:
        raise VerificationError(
            f"k-synthetic verification failed: {verification.violating_records} of "
            f"{verification.checked_records} synthetic records {_violation(verification)} fewer than "
            f"k = {k} records of the sensitive data. Nothing was published; rerun the synthesize stage "
            "and report this as a bug if it persists."
        )
    log.info(
        "guarantee verified (%s) for %d synthetic records", verification.kind, verification.checked_records
    )

    result = StageResult()
    persisted: list[DataFrame] = []
    try:
        syn_counts = count_supports(
            synthetic, layout=layout, max_length=max_length, partitions=partitions
        ).persist()  # joined below and exported
        persisted.append(syn_counts)
        pruned = cfg.aggregation.apriori_pruning
        if pruned:
            # The pruned table lacks rare combinations, which leakage, suppression and the records
            # analysis need: recount exactly with the engine.
            sensitive = sensitive_counts(prepared, resolution=k, apriori_pruning=False, persisted=persisted)
            sensitive = sensitive.persist()
            persisted.append(sensitive)
        else:
            sensitive = delta_io.read_run_table(spark, SENSITIVE_AGGREGATES, root=ctx.root, run_id=ctx.run_id)
        joined = combine_counts(sensitive, synthetic=syn_counts, reportable=reportable).persist()
        persisted.append(joined)

        by_length = private_by_length(joined, resolution=k).collect()
        by_bucket = private_by_bucket(joined, resolution=k).collect()
        public_lengths = public_by_length(joined).collect()
        public_buckets = public_by_bucket(joined, resolution=k).collect()
        if verification.kind != "k-synthetic":
            smallest = joined.where(F.col("syn").isNotNull()).agg(F.min("sen")).collect()[0][0]
            verification = dataclasses.replace(verification, minimum_support=smallest)

        facts = RunFacts(
            resolution=k,
            max_length=max_length,
            synthesis_mode=mode,
            privacy_mode="differential-privacy" if cfg.privacy.dp is not None else "k-anonymity",
            sensitive_records=prepared.n_records,
            synthetic_records=n_synthetic,
        )
        stats = public_stats(
            [CountComparison.from_row(r.asDict()) for r in public_lengths],
            official_buckets(
                [
                    (r["bucket"], r["combinations"], r["abs_error"], r["proportional_error"])
                    for r in public_buckets
                ],
                k,
            ),
            max_length,
        )
        public = public_evaluation(facts, verification, stats)

        rows = [r.asDict() for r in by_length]
        found = {r["length"]: r for r in rows}
        synthetic_vs_sensitive = ComparisonSummary.of(
            [CountComparison.from_row(r, "sen_syn_") for r in rows], max_length
        )
        reportable_vs_sensitive = ComparisonSummary.of(
            [CountComparison.from_row(r, "sen_rep_") for r in rows], max_length
        )
        leakage = [
            Leakage(
                length,
                int(found[length]["sen_syn_tgt_combinations"]) if length in found else 0,
                int(found[length]["leaks"]) if length in found else 0,
            )
            for length in range(1, max_length + 1)
        ]
        preservation = PreservationResult.of(
            [Preservation.from_row(r, "length") for r in rows],
            [Preservation.from_row(r.asDict(), "sds_bucket") for r in by_bucket],
            max_length,
        )
        expansion = record_expansion_pct(n_synthetic, prepared.n_records)

        private = ctx.private_dir
        outputs = result.outputs
        named_syn = with_selections(syn_counts, prepared.attributes)
        outputs.append(
            str(
                write_aggregates_tsv(
                    named_syn,
                    private / "synthetic_aggregates.tsv",
                    count_col="count",
                    header_label="count",
                    record_count=n_synthetic,
                )
            )
        )
        members = rare_members(
            synthetic, layout=layout, max_length=max_length, resolution=k, partitions=partitions
        )
        rare = rare_synthetic_combinations(
            joined, members=members, attributes=prepared.attributes, resolution=k
        )
        rare_path = private / RARE_COMBOS_TSV
        write_sorted_lines(
            rare.orderBy("length", "combo", "record_id").select(
                F.concat_ws(
                    "\t",
                    *(
                        F.col(c).cast("string")
                        for c in ("length", "combo", "record_id", "syn_count", "sen_count")
                    ),
                ).alias("line")
            ),
            rare_path,
            header=["combo_length\tcombo\trecord_id\tsyn_count\tsen_count"],
        )
        outputs.append(str(rare_path))

        risk_rows = _records_analysis_rows(spark, ctx, prepared, sensitive, complete_table=not pruned)
        analysis = records_analysis(risk_rows, n_records=prepared.n_records, resolution=k)
        if not (private / RECORDS_ANALYSIS_TSV).exists():
            outputs.append(str(write_lines(private / RECORDS_ANALYSIS_TSV, analysis.lines())))

        with rare_path.open(encoding="utf-8") as handle:
            rare_rows = sum(1 for _ in handle) - 1
        evaluation = private_evaluation(
            run_id=ctx.run_id,
            facts=facts,
            verification=verification,
            analysis=analysis,
            sensitive=[
                SensitiveCombinations(
                    length,
                    int(found[length]["sen_syn_src_combinations"]) if length in found else 0,
                    int(found[length]["sen_rare"]) if length in found else 0,
                )
                for length in range(1, max_length + 1)
            ],
            leakage=leakage,
            preservation=preservation,
            synthetic_vs_sensitive=synthetic_vs_sensitive,
            reportable_vs_sensitive=reportable_vs_sensitive,
            expansion_pct=expansion,
            rare_synthetic={
                "combinations": sum(int(r["syn_rare"]) for r in rows),
                "record_rows": rare_rows,
            },
            public_stats=stats,
        )
        files = {
            "parameters.tsv": parameter_lines(analysis.summary()),
            "synthetic_leakage_by_length.tsv": leakage_lines(leakage),
            "preservation_by_count.tsv": preservation.bucket_lines(),
            "preservation_by_length.tsv": preservation.length_lines(),
            "stats_synthetic_data.tsv": synthetic_stats_lines(
                synthetic_vs_sensitive,
                expansion_pct=expansion,
                mean_proportional_error=preservation.mean_proportional_error,
            ),
            "stats_aggregate_counts.tsv": reportable_vs_sensitive.lines(),
        }
        for name, lines in files.items():
            outputs.append(str(write_lines(private / name, lines)))
        outputs.append(str(write_json(private / PRIVATE_JSON, evaluation)))
        with atomic_text_writer(private / REPORT_HTML) as handle:
            handle.write(render_report(evaluation))
        outputs.append(str(private / REPORT_HTML))

        metrics = spark.createDataFrame(
            [(ctx.run_id, *row) for row in metric_rows(public, evaluation)], EVALUATION_METRICS.schema
        )
        result.delta_versions[EVALUATION_METRICS.name] = delta_io.write_run_table(
            metrics, EVALUATION_METRICS, root=ctx.root, run_id=ctx.run_id, stage="evaluate"
        )
        # Public files last: they exist only once everything else succeeded.
        staging = ctx.staging_dir
        outputs.append(str(write_json(staging / EVALUATION_JSON, public)))
        update_metadata(staging, "parameters", facts.public())
        outputs.append(str(update_metadata(staging, "guarantee", verification.public_section())))
    finally:
        for df in persisted:
            df.unpersist()

    result.row_counts.update(
        {
            "synthetic_records": n_synthetic,
            "synthetic_combinations": sum(int(r["sen_syn_tgt_combinations"]) for r in rows),
            "rare_synthetic_rows": rare_rows,
        }
    )
    result.privacy["verified_resolution"] = float(k)
    result.privacy["leaked_combinations"] = float(evaluation["leakage"]["total"])
    return result


def _violation(verification: Verification) -> str:
    if verification.kind == "k-synthetic":
        return "have a full attribute combination shared by"
    return f"have a combination of at most {verification.max_length} attributes shared by"
