"""The evaluate stage: verify the synthetic data's privacy guarantee, then measure its fidelity.

Order of work (docs/spec.md section 5, docs/architecture.md 3.3 and 7):

1. Withdraw any public evaluation output of an earlier attempt of this run, then **verify** the
   guarantee independently of the synthesizer (:mod:`._verify`). A violation raises
   :class:`~ctdc_spark.errors.VerificationError` (exit 3) before anything is written, so nothing is
   published.
2. Count the synthetic records' combinations with the aggregate stage's engine (same L) and join
   the sensitive (SEN), reportable (REP) and synthetic (SYN) aggregates once
   (:func:`._compare.combine_counts`). With apriori pruning the sensitive table lacks rare
   combinations, so the exact counts are recomputed with the engine instead.
3. Reduce the joined frame to a few rows per length and per count bucket and derive every docs/spec.md
   5.2 metric from them (:mod:`._metrics`).
4. **Attack** the synthetic records with anonymeter's singling-out, linkability and inference
   attacks against the records synthesis used and the held-out control records (:mod:`._attacks`,
   :mod:`ctdc_spark._holdout`). The results go to the private report only; when a risk's lower
   95% bound exceeds ``evaluation.attacks.max_risk`` the stage raises
   :class:`~ctdc_spark.errors.VerificationError` after writing the private report, so the data
   owner sees why and nothing is published.

Outputs:

* public, ``staging/<run_id>/`` (published as ``release/<run_id>/``): ``evaluation.json`` (synthetic
  vs reportable only, with the explorer's ``stats``), the ``guarantee``/``parameters`` sections of
  ``metadata.json``, and the synthetic CSV exports, moved there from ``private/<run_id>/pending/``
  only once verified;
* private, ``private/<run_id>/``: ``evaluation_private.json``, the SDS TSVs of docs/spec.md 5.3 and
  ``evaluation_report.html``;
* Delta ``evaluation_metrics`` (one row per metric, tagged public or private).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark._caching import cached
from ctdc_spark._holdout import control_record_ids, control_size
from ctdc_spark.aggregate.stage import PreparedRun, load_prepared, sensitive_counts
from ctdc_spark.combos.counting import count_supports, enumeration_partitions, risk_by_length
from ctdc_spark.combos.export import with_selections, write_aggregates_tsv
from ctdc_spark.combos.risk import RecordsAnalysis, RiskByLength, records_analysis
from ctdc_spark.errors import StageFailedError, VerificationError
from ctdc_spark.evaluate._attacks import (
    CONFIDENCE,
    AttackFrames,
    AttackResult,
    anonymeter_available,
    exceeding,
    not_run,
    run_attacks,
)
from ctdc_spark.evaluate._compare import (
    combine_counts,
    private_by_bucket,
    private_by_length,
    public_by_length,
    public_by_length_and_bucket,
    rare_synthetic_combinations,
)
from ctdc_spark.evaluate._metrics import (
    CountComparison,
    PrivateMetrics,
    leakage_lines,
    official_buckets,
    parameter_lines,
    public_stats,
    synthetic_stats_lines,
)
from ctdc_spark.evaluate._outputs import RunFacts, metric_rows, private_evaluation, public_evaluation
from ctdc_spark.evaluate._rare import rare_members
from ctdc_spark.evaluate._report import render_report
from ctdc_spark.evaluate._verify import (
    DP_AGGREGATES,
    K_ANONYMOUS_COMBINATIONS,
    Verification,
    verify_k_synthetic,
    verify_reportable_combinations,
)
from ctdc_spark.evaluate.stats import EVALUATION_JSON, AgreementRule, PublicEvaluation, Stats
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

PRIVATE_JSON = "evaluation_private.json"
REPORT_HTML = "evaluation_report.html"
RARE_COMBOS_TSV = "synthetic_rare_combos_by_length.tsv"
RECORDS_ANALYSIS_TSV = "sensitive_analysis_by_length.tsv"
SYNTHETIC_EXPORTS = ("synthetic_microdata.csv", "synthetic_microdata_long.csv")
"""The synthesize stage's exports: held in ``private/<run_id>/pending/`` until verified here."""


def _read_synthetic(spark: SparkSession, ctx: RunContext) -> tuple[DataFrame, int]:
    """This run's synthetic records and their number (one count, which the stage needs anyway)."""
    try:
        synthetic = ctx.tables.read(spark, SYNTHETIC_RECORDS)
        n_synthetic = synthetic.count()
    except FileNotFoundError:
        n_synthetic = 0
    if n_synthetic == 0:
        raise StageFailedError(
            f"evaluate: run {ctx.run_id} has no synthetic records; run the synthesize stage first "
            "(ctdc-spark synthesize with the same --run-id)."
        )
    return synthetic.select("record_id", "attrs"), n_synthetic


def _wide_frame(
    table: pa.Table, names: list[str], column_of: npt.NDArray[np.int64], value_of: npt.NDArray[Any]
) -> pd.DataFrame:
    """``record_id, attrs`` rows as one string column per source column (``""``: no attribute)."""
    attrs = table.column("attrs").combine_chunks()
    rows = attrs.value_parent_indices().to_numpy()
    values = attrs.flatten().to_numpy()
    cells = np.full((table.num_rows, len(names)), "", dtype=object)
    cells[rows, column_of[values]] = value_of[values]
    index = pd.Index(table.column("record_id").to_numpy(), name="record_id")
    return pd.DataFrame(cells, columns=names, index=index)


def attack_frames(
    prepared: PreparedRun, synthetic: DataFrame, control_ids: npt.NDArray[np.int64]
) -> AttackFrames:
    """What the attacks see: training, control and synthetic records as wide pandas frames.

    Collects the sensitive and the synthetic records through Arrow (4 bytes per attribute plus
    8 per record: about 20 MB for 200k CTDC-shaped records and their 350k synthetic ones) and the
    attribute dictionary. The frames hold values, so they live on the driver only and are never
    logged or written.
    """
    info = prepared.attributes.select("attr_id", "column", "value", "column_index").collect()
    names = [c for _, c in sorted({(r["column_index"], r["column"]) for r in info})]
    position = {name: i for i, name in enumerate(names)}
    column_of = np.zeros(prepared.n_attributes, dtype=np.int64)
    value_of = np.empty(prepared.n_attributes, dtype=object)
    for r in info:
        column_of[r["attr_id"]], value_of[r["attr_id"]] = position[r["column"]], r["value"]
    records = _wide_frame(prepared.records.select("record_id", "attrs").toArrow(), names, column_of, value_of)
    held_out = records.index.isin(control_ids)
    return AttackFrames(
        training=records[~held_out],
        control=records[held_out],
        synthetic=_wide_frame(synthetic.select("record_id", "attrs").toArrow(), names, column_of, value_of),
    )


def _attack_evaluation(
    ctx: RunContext, prepared: PreparedRun, synthetic: DataFrame
) -> tuple[dict[str, Any], list[AttackResult]]:
    """The private report's ``attacks`` section and the attacks above the threshold.

    Raises:
        StageFailedError: ``evaluation.attacks.required`` is set and anonymeter is not installed.
    """
    attacks = ctx.cfg.evaluation.attacks
    if not attacks.enabled:
        return not_run("evaluation.attacks.enabled is false."), []
    size = control_size(prepared.n_records, attacks)
    if size == 0:
        smallest = math.ceil(attacks.min_control / attacks.control_share)
        return not_run(
            f"{prepared.n_records} sensitive records give fewer than evaluation.attacks.min_control = "
            f"{attacks.min_control} control records (control_share {attacks.control_share}); nothing "
            f"was held out or attacked. Attacks run from about {smallest:,} records."
        ), []
    if not anonymeter_available():
        message = "anonymeter is not installed, so the attacks did not run."
        if attacks.required:
            raise StageFailedError(
                f"evaluate: {message} Install it (see README, Privacy evidence) or set "
                "evaluation.attacks.required=false."
            )
        log.warning("%s The private report says how to install it.", message)
        return not_run(message, install=True), []
    seed = ctx.synthesis_seed()
    frames = attack_frames(prepared, synthetic, control_record_ids(prepared.n_records, attacks, seed=seed))
    results = run_attacks(frames, attacks, seed=seed)
    over = exceeding(results, attacks.max_risk)
    section = {
        "status": "run",
        "confidence": CONFIDENCE,
        "max_risk": attacks.max_risk,
        "training_records": len(frames.training),
        "control_records": len(frames.control),
        "synthetic_records": len(frames.synthetic),
        # Synthesis from published aggregates only: they count every record alike.
        "control_held_out_of": "published aggregates only"
        if ctx.cfg.synthesis_reads_only_aggregates
        else "the synthesizer's row index (official 1-counts still count them)",
        "attacks": {r.name: r.as_dict() for r in results},
        "exceeding_max_risk": [r.name for r in over],
    }
    return section, over


def _withdraw_public_outputs(ctx: RunContext) -> None:
    """Take back an earlier attempt's public outputs before verifying again.

    The evaluation and the guarantee are removed; synthetic exports return to ``pending/`` (unless
    a newer export already waits there), so staging only ever holds synthetic data that passed
    this stage's check, and a failed check leaves nothing publishable behind.
    """
    staging, pending = ctx.staging_dir, ctx.pending_dir
    (staging / EVALUATION_JSON).unlink(missing_ok=True)
    update_metadata(staging, "guarantee", None)
    for name in SYNTHETIC_EXPORTS:
        released = staging / name
        if not released.exists():
            continue
        if (pending / name).exists():
            released.unlink()
        else:
            pending.mkdir(parents=True, exist_ok=True)
            os.replace(released, pending / name)


def _release_synthetic_exports(ctx: RunContext) -> list[str]:
    """Move the verified synthetic exports from ``pending/`` into staging (renames on one disk)."""
    moved = []
    for name in SYNTHETIC_EXPORTS:
        waiting = ctx.pending_dir / name
        if waiting.exists():
            ctx.staging_dir.mkdir(parents=True, exist_ok=True)
            os.replace(waiting, ctx.staging_dir / name)
            moved.append(str(ctx.staging_dir / name))
    return moved


def _records_analysis_rows(
    spark: SparkSession, ctx: RunContext, prepared: PreparedRun, sensitive: DataFrame, *, complete_table: bool
) -> list[RiskByLength]:
    """The aggregate stage's risk rows when it wrote them, else computed now from ``sensitive``.

    The aggregate stage skips its risk analysis with apriori pruning (or when disabled); then the
    engine's rare-record pass runs here on the exact counts.
    """
    if complete_table and ctx.tables.has_rows(spark, RISK_BY_LENGTH):
        rows = ctx.tables.read(spark, RISK_BY_LENGTH).collect()
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


def _verify_guarantee(
    ctx: RunContext, prepared: PreparedRun, synthetic: DataFrame, reportable: DataFrame, partitions: int
) -> Verification:
    """Run the mode's guarantee check; raise before anything is written when it fails."""
    cfg = ctx.cfg
    k = cfg.privacy.resolution
    if cfg.synthesis_reads_only_aggregates:
        verification = verify_reportable_combinations(
            synthetic,
            reportable,
            layout=prepared.layout,
            resolution=k,
            max_length=prepared.max_length,
            partitions=partitions,
            kind=DP_AGGREGATES if cfg.privacy.dp is not None else K_ANONYMOUS_COMBINATIONS,
        )
        violation = (
            f"have a combination of at most {prepared.max_length} attributes that is not among the "
            "published aggregates"
        )
    else:
        verification = verify_k_synthetic(
            synthetic,
            prepared.records,
            n_attributes=prepared.n_attributes,
            resolution=k,
            max_length=prepared.max_length,
            max_broadcast_mb=cfg.synthesis.max_broadcast_mb,
            partitions=partitions,
        )
        violation = (
            f"have a full attribute combination shared by fewer than k = {k} records of the sensitive data"
        )
    if not verification.passed:
        raise VerificationError(
            f"privacy verification ({verification.kind}) failed: {verification.violating_records} of "
            f"{verification.checked_records} synthetic records {violation}. Nothing was published; rerun "
            "the synthesize stage and report this as a bug if it persists."
        )
    log.info(
        "guarantee verified (%s) for %d synthetic records", verification.kind, verification.checked_records
    )
    return verification


@contextlib.contextmanager
def _exact_sensitive(spark: SparkSession, ctx: RunContext, prepared: PreparedRun) -> Iterator[DataFrame]:
    """Exact counts of every sensitive combination of length <= L, for the ``with`` block.

    With apriori pruning the aggregate stage's table lacks rare combinations, which leakage,
    suppression and the records analysis need, so they are recounted with the engine and cached
    until the block ends.
    """
    if not ctx.cfg.aggregation.apriori_pruning:
        yield ctx.tables.read(spark, SENSITIVE_AGGREGATES)
        return
    resolution = ctx.cfg.privacy.resolution
    with (
        sensitive_counts(prepared, resolution=resolution, apriori_pruning=False) as counts,
        cached(counts) as kept,
    ):
        yield kept


def _public_statistics(joined: DataFrame, *, resolution: int, max_length: int, dp: bool) -> PublicEvaluation:
    """The explorer's statistics and their agreement rule (two small Spark jobs over the joined frame)."""
    agreement = AgreementRule.for_release(resolution=resolution, dp=dp)
    lengths = [CountComparison.from_row(r.asDict()) for r in public_by_length(joined).collect()]
    rows = public_by_length_and_bucket(joined, resolution=resolution, agreement=agreement).collect()
    buckets = official_buckets((r.asDict() for r in rows), resolution)
    stats = public_stats(lengths, buckets, resolution=resolution, max_length=max_length)
    return PublicEvaluation(stats=stats, agreement_rule=agreement)


def _write_rare_combinations(rare: DataFrame, path: Path) -> int:
    """Write ``synthetic_rare_combos_by_length.tsv`` (sorted by length, combination, record); rows."""
    columns = ("length", "combo", "record_id", "syn_count", "sen_count")
    line = F.concat_ws("\t", *(F.col(c).cast("string") for c in columns)).alias("line")
    write_sorted_lines(
        rare.orderBy("length", "combo", "record_id").select(line),
        path,
        header=["combo_length\tcombo\trecord_id\tsyn_count\tsen_count"],
    )
    # Counting the written lines costs no Spark job.
    with path.open(encoding="utf-8") as handle:
        return sum(1 for _ in handle) - 1


def _write_private_files(
    private: Path,
    evaluation: dict[str, Any],
    metrics: PrivateMetrics,
    analysis: RecordsAnalysis,
    public_stats: Stats,
) -> list[str]:
    """The SDS TSVs of docs/spec.md 5.3, ``evaluation_private.json`` and the HTML report."""
    preservation = metrics.preservation
    files = {
        "parameters.tsv": parameter_lines(analysis.summary()),
        "synthetic_leakage_by_length.tsv": leakage_lines(metrics.leakage),
        "preservation_by_count.tsv": preservation.bucket_lines(),
        "preservation_by_length.tsv": preservation.length_lines(),
        "stats_synthetic_data.tsv": synthetic_stats_lines(
            metrics.synthetic_vs_sensitive,
            expansion_pct=evaluation["synthetic_vs_sensitive"]["record_expansion_pct"],
            mean_proportional_error=preservation.mean_proportional_error,
        ),
        "stats_aggregate_counts.tsv": metrics.reportable_vs_sensitive.lines(),
    }
    if not (private / RECORDS_ANALYSIS_TSV).exists():  # the aggregate stage's risk analysis did not run
        files[RECORDS_ANALYSIS_TSV] = analysis.lines()
    written = [str(write_lines(private / name, lines)) for name, lines in files.items()]
    written.append(str(write_json(private / PRIVATE_JSON, evaluation)))
    with atomic_text_writer(private / REPORT_HTML) as handle:
        handle.write(render_report(evaluation, public_stats))
    written.append(str(private / REPORT_HTML))
    return written


def run_evaluate(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Stage entry point (see the module docstring).

    Raises:
        VerificationError: a synthetic record (or, for aggregate_seeded, a combination of length
            <= L) describes fewer than k sensitive records; nothing is written.
        StageFailedError: the synthesize stage has not written this run's synthetic records.
        ConfigError: the verification's bitmap index exceeds ``synthesis.max_broadcast_mb``.
    """
    cfg = ctx.cfg
    k = cfg.privacy.resolution
    prepared = load_prepared(spark, ctx)
    max_length = prepared.max_length
    synthetic, n_synthetic = _read_synthetic(spark, ctx)
    partitions = enumeration_partitions(n_synthetic, spark.sparkContext.defaultParallelism)
    reportable = ctx.tables.read(spark, REPORTABLE_AGGREGATES)
    _withdraw_public_outputs(ctx)
    verification = _verify_guarantee(ctx, prepared, synthetic, reportable, partitions)

    result = StageResult()
    syn_supports = count_supports(
        synthetic, layout=prepared.layout, max_length=max_length, partitions=partitions
    )
    # Cached: the synthetic counts are joined and exported, the joined frame feeds every metric.
    with (
        cached(syn_supports) as syn_counts,
        _exact_sensitive(spark, ctx, prepared) as sensitive,
        cached(combine_counts(sensitive, synthetic=syn_counts, reportable=reportable)) as joined,
    ):
        metrics = PrivateMetrics.from_rows(
            [r.asDict() for r in private_by_length(joined, resolution=k).collect()],
            [r.asDict() for r in private_by_bucket(joined, resolution=k).collect()],
            max_length,
        )
        evaluated = _public_statistics(
            joined, resolution=k, max_length=max_length, dp=ctx.cfg.privacy.dp is not None
        )
        if verification.minimum_support is None:
            # aggregate_seeded: the smallest true group behind a synthetic combination of length <= L.
            smallest = joined.where(F.col("syn").isNotNull()).agg(F.min("sen")).collect()[0][0]
            verification = dataclasses.replace(verification, minimum_support=smallest)
        facts = RunFacts(
            resolution=k,
            max_length=max_length,
            synthesis_mode=cfg.synthesis.mode,
            privacy_mode="differential-privacy" if cfg.privacy.dp is not None else "k-anonymity",
            sensitive_records=prepared.n_records,
            synthetic_records=n_synthetic,
            published_record_count=ctx.tables.release_facts(spark).published_record_count,
        )

        private = ctx.private_dir
        result.outputs.append(
            str(
                write_aggregates_tsv(
                    with_selections(syn_counts, prepared.attributes),
                    private / "synthetic_aggregates.tsv",
                    count_col="count",
                    header_label="count",
                    record_count=n_synthetic,
                )
            )
        )
        members = rare_members(
            synthetic, layout=prepared.layout, max_length=max_length, resolution=k, partitions=partitions
        )
        rare = rare_synthetic_combinations(
            joined, members=members, attributes=prepared.attributes, resolution=k
        )
        rare_rows = _write_rare_combinations(rare, private / RARE_COMBOS_TSV)
        result.outputs.append(str(private / RARE_COMBOS_TSV))
        analysis = records_analysis(
            _records_analysis_rows(
                spark, ctx, prepared, sensitive, complete_table=not cfg.aggregation.apriori_pruning
            ),
            n_records=prepared.n_records,
            resolution=k,
        )

    attacks, too_risky = _attack_evaluation(ctx, prepared, synthetic)
    public = public_evaluation(facts, verification, evaluated)
    evaluation = private_evaluation(
        run_id=ctx.run_id,
        facts=facts,
        verification=verification,
        analysis=analysis,
        metrics=metrics,
        rare_record_rows=rare_rows,
        public_stats=evaluated,
        attacks=attacks,
    )
    result.outputs += _write_private_files(ctx.private_dir, evaluation, metrics, analysis, evaluated.stats)
    if too_risky:
        limit = ctx.cfg.evaluation.attacks.max_risk
        raise VerificationError(
            "measured attack risk: "
            + ", ".join(f"{r.name} {r.risk:.3f} [{r.ci[0]:.3f}, {r.ci[1]:.3f}]" for r in too_risky)
            + f" has a 95% lower bound above evaluation.attacks.max_risk = {limit}. Nothing was "
            f"published; see {ctx.private_dir / PRIVATE_JSON}."
        )
    table = spark.createDataFrame(
        [(ctx.run_id, *row) for row in metric_rows(evaluated.stats, facts, evaluation)],
        EVALUATION_METRICS.schema,
    )
    result.delta_versions[EVALUATION_METRICS.name] = ctx.tables.write(
        table, EVALUATION_METRICS, stage="evaluate"
    )
    # Public files last: they exist only once everything else succeeded.
    result.outputs += _release_synthetic_exports(ctx)
    result.outputs.append(str(write_json(ctx.staging_dir / EVALUATION_JSON, public)))
    update_metadata(ctx.staging_dir, "parameters", facts.public())
    result.outputs.append(str(update_metadata(ctx.staging_dir, "guarantee", verification.public_section())))

    result.row_counts.update(
        {
            "synthetic_records": n_synthetic,
            "synthetic_combinations": metrics.synthetic_combinations,
            "rare_synthetic_rows": rare_rows,
        }
    )
    result.privacy["verified_resolution"] = float(k)
    result.privacy["leaked_combinations"] = float(sum(r.leaks for r in metrics.leakage))
    return result
