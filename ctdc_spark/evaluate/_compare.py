"""Distributed comparison of the sensitive (SEN), reportable (REP) and synthetic (SYN) aggregates.

All three are joined once on the combination (a full outer join, so every combination of any of
them is one row with nullable ``sen``/``rep``/``syn`` counts); every docs/spec.md 5.2 metric is then a
``groupBy`` over that frame by length or by count bucket, whose few result rows are collected by
the caller. No aggregate table is ever collected to the driver.

Audience separation (docs/architecture.md 7) is structural: the public transforms select ``rep`` and
``syn`` before anything else, so nothing they compute can depend on a sensitive count.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ctdc_spark.combos.export import with_selections
from ctdc_spark.evaluate._metrics import SDS_FIRST_BUCKET
from ctdc_spark.evaluate.stats import AgreementRule

RARE_COMBINATION_DELIMITER = " AND "
"""SDS joins the attributes of a rare synthetic combination with " AND " (docs/spec.md 2.4)."""


def combine_counts(sensitive: DataFrame, *, synthetic: DataFrame, reportable: DataFrame) -> DataFrame:
    """Full outer join of the three aggregates on the combination.

    Args:
        sensitive: ``combo``, ``count`` (exact counts; every combination of length <= L).
        synthetic: ``combo``, ``count`` (counted from the synthetic records with the same engine).
        reportable: ``combo``, ``protected_count``.

    Returns:
        Columns ``length``, ``combo``, ``sen``, ``syn``, ``rep`` (counts null where absent).
    """
    sen = sensitive.select("combo", F.col("count").alias("sen"))
    syn = synthetic.select("combo", F.col("count").alias("syn"))
    rep = reportable.select("combo", F.col("protected_count").alias("rep"))
    joined = sen.join(syn, "combo", "full_outer").join(rep, "combo", "full_outer")
    return joined.select(F.size("combo").cast("int").alias("length"), "combo", "sen", "syn", "rep")


def comparison_aggregates(src: str, tgt: str, prefix: str = "") -> list[Column]:
    """Aggregates comparing two nullable count columns (read by ``CountComparison.from_row``).

    Returns:
        ``<prefix>src_combinations``, ``tgt_combinations``, ``common``, ``src_total``, and the
        absolute and signed (``tgt - src``) error sums over combinations present in both.
    """
    s, t = F.col(src), F.col(tgt)
    both = s.isNotNull() & t.isNotNull()
    zero = F.lit(0).cast("long")
    return [
        F.count(s).alias(f"{prefix}src_combinations"),
        F.count(t).alias(f"{prefix}tgt_combinations"),
        F.count(F.when(both, 1)).alias(f"{prefix}common"),
        F.coalesce(F.sum(s), zero).alias(f"{prefix}src_total"),
        F.coalesce(F.sum(F.when(both, F.abs(t - s))), zero).alias(f"{prefix}abs_error"),
        F.coalesce(F.sum(F.when(both, t - s)), zero).alias(f"{prefix}signed_error"),
    ]


def _bit_length(value: Column) -> Column:
    """Bits needed for a non-negative long, exactly (``log2`` in floating point is not)."""
    return F.when(value <= 0, F.lit(0)).otherwise(F.length(F.bin(value)))


def with_preservation(df: DataFrame, *, resolution: int) -> DataFrame:
    """Add the per-combination terms of docs/spec.md 5.2 preservation.

    Returns:
        ``df`` plus ``in_population`` (P = SEN >= k or in SYN), ``sen0``/``syn0`` (0 when absent),
        ``preservation`` (``min(syn/sen, 1)``, 0 without sen), ``proportional_error``
        (``|syn - sen| / sen``, 1 without sen) and ``sds_bucket`` (index i of the smallest SDS bin
        ``10 * 2^i >= syn``).
    """
    sen0 = F.coalesce(F.col("sen"), F.lit(0).cast("long"))
    syn0 = F.coalesce(F.col("syn"), F.lit(0).cast("long"))
    # Smallest i with 10 * 2^i >= syn: i = bit_length(ceil(syn / 10) - 1), computed on integers.
    bucket = _bit_length(F.floor((syn0 - 1) / SDS_FIRST_BUCKET).cast("long"))
    return df.select(
        "*",
        ((F.col("sen") >= resolution) | F.col("syn").isNotNull()).alias("in_population"),
        sen0.alias("sen0"),
        syn0.alias("syn0"),
        F.when(sen0 > 0, F.least(syn0 / sen0, F.lit(1.0))).otherwise(0.0).alias("preservation"),
        F.when(sen0 > 0, F.abs(syn0 - sen0) / sen0).otherwise(1.0).alias("proportional_error"),
        bucket.cast("int").alias("sds_bucket"),
    )


def preservation_aggregates() -> list[Column]:
    """Sums over the population rows (read by ``Preservation.from_row``)."""
    member = F.col("in_population")

    def total(column: Column) -> Column:
        return F.coalesce(F.sum(F.when(member, column)), F.lit(0))

    return [
        F.count(F.when(member, 1)).alias("p_combinations"),
        total(F.col("syn0")).alias("p_syn_total"),
        total(F.col("length")).alias("p_length_total"),
        total(F.col("preservation")).alias("p_preservation_total"),
        total(F.col("proportional_error")).alias("p_error_total"),
    ]


def private_by_length(joined: DataFrame, *, resolution: int) -> DataFrame:
    """Every sensitive-referenced per-length metric in one pass (one row per length).

    Returns:
        ``length``; SEN vs SYN (``sen_syn_*``) and SEN vs REP (``sen_rep_*``) comparison sums;
        ``sen_rare``/``syn_rare`` (combinations with count < k); ``leaks`` (SEN < k and present with
        SYN < k, docs/spec.md 5.2); and the preservation sums ``p_*``.
    """
    k = F.lit(resolution)
    return (
        joined.transform(with_preservation, resolution=resolution)
        .groupBy("length")
        .agg(
            *comparison_aggregates("sen", "syn", "sen_syn_"),
            *comparison_aggregates("sen", "rep", "sen_rep_"),
            F.count(F.when(F.col("sen") < k, 1)).alias("sen_rare"),
            F.count(F.when(F.col("syn") < k, 1)).alias("syn_rare"),
            F.count(F.when((F.col("sen") < k) & (F.col("syn") < k), 1)).alias("leaks"),
            *preservation_aggregates(),
        )
    )


def private_by_bucket(joined: DataFrame, *, resolution: int) -> DataFrame:
    """Preservation sums per SDS count bucket (one row per non-empty bucket index ``sds_bucket``)."""
    return (
        joined.transform(with_preservation, resolution=resolution)
        .where(F.col("in_population"))
        .groupBy("sds_bucket")
        .agg(*preservation_aggregates())
    )


def public_by_length(joined: DataFrame) -> DataFrame:
    """Official (reportable) vs synthetic comparison sums per length; reads no sensitive count.

    Returns:
        ``length`` and the :func:`comparison_aggregates` of src = ``rep``, tgt = ``syn``.
    """
    return joined.select("length", "rep", "syn").groupBy("length").agg(*comparison_aggregates("rep", "syn"))


def public_by_length_and_bucket(joined: DataFrame, *, resolution: int, agreement: AgreementRule) -> DataFrame:
    """Errors and agreement of synthetic counts per length and official-count bucket.

    Buckets are the doubling ranges ``[k 2^j, k 2^(j+1) - 1]``.

    Every official combination counts; a combination missing from the synthetic data has a
    synthetic count of 0. Official counts below k (possible only with noisy DP counts) fall in the
    first bucket.

    Returns:
        ``length``, ``bucket`` (j), ``combinations``, ``abs_error`` and ``proportional_error`` sums,
        and ``agreeing``: combinations whose synthetic count agrees with the official one under
        ``agreement`` (see :class:`AgreementRule`).
    """
    official = joined.select("length", "rep", "syn").where(F.col("rep").isNotNull())
    rep = F.col("rep")
    syn0 = F.coalesce(F.col("syn"), F.lit(0).cast("long"))
    error = F.abs(syn0 - rep)
    # j = floor(log2(rep / k)) = bit_length(rep div k) - 1, on integers.
    bucket = F.greatest(_bit_length(F.floor(rep / resolution).cast("long")) - 1, F.lit(0))
    outside = F.greatest(rep - syn0, syn0 - (rep + agreement.interval - 1), F.lit(0))
    tolerance = F.greatest(F.lit(float(agreement.absolute)), rep * agreement.relative)
    return official.groupBy("length", bucket.cast("int").alias("bucket")).agg(
        F.count(F.lit(1)).alias("combinations"),
        F.sum(error).alias("abs_error"),
        F.sum(F.when(rep > 0, error / rep).otherwise(1.0)).alias("proportional_error"),
        F.count(F.when(outside <= tolerance, 1)).alias("agreeing"),
    )


def rare_synthetic_combinations(
    joined: DataFrame, *, members: DataFrame, attributes: DataFrame, resolution: int
) -> DataFrame:
    """docs/spec.md 5.2 rare synthetic combinations: one row per (combination with SYN < k, record).

    Args:
        joined: :func:`combine_counts` output.
        members: ``combo``, ``record_id`` for (at least) every rare synthetic combination.
        attributes: The attribute dictionary (to name the combinations).
        resolution: k.

    Returns:
        ``length``, ``combo`` (attributes joined by " AND "), ``record_id``, ``syn_count`` and
        ``sen_count`` (the sensitive count rounded down to a multiple of k, as SDS reports it).
    """
    k = F.lit(resolution).cast("long")
    rare = joined.where(F.col("syn") < k).select("combo", "length", "syn", "sen")
    named = with_selections(rare.join(members, "combo"), attributes)
    return named.select(
        "length",
        F.replace(F.col("selections"), F.lit(";"), F.lit(RARE_COMBINATION_DELIMITER)).alias("combo"),
        "record_id",
        F.col("syn").alias("syn_count"),
        (F.floor(F.coalesce(F.col("sen"), F.lit(0).cast("long")) / k) * k).alias("sen_count"),
    )
