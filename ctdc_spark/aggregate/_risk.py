"""Sensitive-data risk analysis (private): rare combinations and linkable records by length.

Computed distributedly, never by collecting records (ARCHITECTURE.md 5):

* rare/distinct combinations per length: a ``groupBy`` over the sensitive aggregates;
* records made unique at length l (SPEC.md 5.2): a combination with count 1 identifies its only
  record (``first_record``), so a ``groupBy(first_record).min(length)`` gives each record's
  shortest unique length without revisiting records;
* records made rare at length l: a record has a combination with count < k at length l exactly
  when not all of its ``C(m, l)`` combinations are frequent, which a second enumeration pass checks
  against the (small) frequent set in ``mapInArrow`` tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark.aggregate._counting import RARE_LENGTHS_SCHEMA, lookup_of, rare_lengths_task
from ctdc_spark.aggregate._keys import KeyLayout


@dataclass(frozen=True)
class RiskByLength:
    """Raw (unprotected) risk numbers of one combination length."""

    length: int
    combinations: int
    rare_combinations: int
    unique_records: int
    rare_records: int


def floor_to(value: int, k: int) -> int:
    """Round down to a multiple of k (SPEC.md 3.2)."""
    return (value // k) * k


def risk_by_length(
    spark: SparkSession,
    sensitive: DataFrame,
    records: DataFrame,
    *,
    layout: KeyLayout,
    max_length: int,
    resolution: int,
    partitions: int,
) -> list[RiskByLength]:
    """Compute the risk table for lengths 1..L.

    Args:
        spark: Session.
        sensitive: Sensitive aggregates (``length``, ``combo``, ``count``, ``first_record``).
        records: ``record_id``, ``attrs``.
        layout: Key layout of the run.
        max_length: L.
        resolution: k.
        partitions: Enumeration tasks for the rare-record pass.

    Returns:
        One row per length (collected: L rows).
    """
    combos = {
        r["length"]: (r["n"], r["rare"])
        for r in sensitive.groupBy("length")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.when(F.col("count") < resolution, 1).otherwise(0)).alias("rare"),
        )
        .collect()
    }
    unique = (
        sensitive.where(F.col("count") == 1)
        .groupBy(F.col("first_record").alias("record_id"))
        .agg(F.min("length").alias("unique_length"))
    )
    frequent = lookup_of(sensitive.where(F.col("count") >= resolution), layout)
    rare = (
        records.select("record_id", "attrs")
        .repartition(partitions)
        .mapInArrow(rare_lengths_task(layout, max_length, frequent), RARE_LENGTHS_SCHEMA)
    )
    # SPEC.md 5.2: a record counts as rare only if it is not unique at any length.
    rare_only = rare.join(unique, "record_id", "left_anti")
    unique_counts: dict[int, int] = {r[0]: r[1] for r in unique.groupBy("unique_length").count().collect()}
    rare_counts: dict[int, int] = {r[0]: r[1] for r in rare_only.groupBy("rare_length").count().collect()}
    return [
        RiskByLength(
            length=length,
            combinations=int(combos.get(length, (0, 0))[0]),
            rare_combinations=int(combos.get(length, (0, 0))[1] or 0),
            unique_records=int(unique_counts.get(length, 0)),
            rare_records=int(rare_counts.get(length, 0)),
        )
        for length in range(1, max_length + 1)
    ]


def _fmt(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x else "0"


def rare_by_length_lines(rows: list[RiskByLength]) -> list[str]:
    """``sensitive_rare_by_length.tsv`` (SPEC.md 3.3): raw distinct and rare combination counts."""
    lines = ["sen_combo_length\tcombo_count\trare_count\trare_proportion"]
    for r in rows:
        proportion = r.rare_combinations / r.combinations if r.combinations else 0.0
        lines.append(f"{r.length}\t{r.combinations}\t{r.rare_combinations}\t{_fmt(proportion)}")
    return lines


@dataclass(frozen=True)
class LinkableRecords:
    """Records linkable at one length, protected (floored to k), with their share of all records."""

    length: int
    unique: int
    rare: int
    total: int

    @property
    def risky(self) -> int:
        """Unique plus rare."""
        return self.unique + self.rare

    def pct(self, x: int) -> float:
        """Percentage of the protected record count."""
        return 100.0 * x / self.total if self.total else 0.0


@dataclass(frozen=True)
class RecordsAnalysis:
    """SPEC.md 5.2 records analysis with ``protect=True``."""

    resolution: int
    total_sensitive_records: int
    by_length: tuple[LinkableRecords, ...]

    @property
    def unique_identifiable(self) -> int:
        """Records unique at some length."""
        return sum(b.unique for b in self.by_length)

    @property
    def rare_identifiable(self) -> int:
        """Records rare (but not unique) at some length."""
        return sum(b.rare for b in self.by_length)

    def summary(self) -> dict[str, float | int]:
        """The ``parameters`` of SPEC.md 5.2."""
        risky = self.unique_identifiable + self.rare_identifiable
        total = self.total_sensitive_records
        return {
            "resolution": self.resolution,
            "limit": len(self.by_length),
            "total_sensitive_records": total,
            "unique_identifiable": self.unique_identifiable,
            "rare_identifiable": self.rare_identifiable,
            "risky_identifiable": risky,
            "risky_identifiable_pct": 100.0 * risky / total if total else 0.0,
        }

    def lines(self) -> list[str]:
        """``sensitive_analysis_by_length.tsv`` (SPEC.md 5.3)."""
        lines = ["combo_length\tsen_rare\tsen_rare_pct\tsen_unique\tsen_unique_pct\tsen_risky\tsen_risky_pct"]
        for b in self.by_length:
            lines.append(
                f"{b.length}\t{b.rare}\t{_fmt(b.pct(b.rare))}\t{b.unique}\t{_fmt(b.pct(b.unique))}"
                f"\t{b.risky}\t{_fmt(b.pct(b.risky))}"
            )
        return lines


def records_analysis(rows: list[RiskByLength], *, n_records: int, resolution: int) -> RecordsAnalysis:
    """Protect the raw linkable-record counts: floor each to k, percentages of floor(n/k)k."""
    total = floor_to(n_records, resolution)
    return RecordsAnalysis(
        resolution=resolution,
        total_sensitive_records=total,
        by_length=tuple(
            LinkableRecords(
                r.length, floor_to(r.unique_records, resolution), floor_to(r.rare_records, resolution), total
            )
            for r in rows
        ),
    )
