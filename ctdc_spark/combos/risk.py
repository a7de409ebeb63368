"""Sensitive-data risk analysis (private): rare combinations and linkable records by length.

The per-length numbers come from Spark (:func:`ctdc_spark.combos.counting.risk_by_length`); this
module protects them and writes the SDS TSV lines of docs/spec.md 3.3 and 5.3, in plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctdc_spark.combos.sds_format import fmt_number


@dataclass(frozen=True)
class RiskByLength:
    """Raw (unprotected) risk numbers of one combination length."""

    length: int
    combinations: int
    rare_combinations: int
    unique_records: int
    rare_records: int


def floor_to(value: int, k: int) -> int:
    """Round down to a multiple of k (docs/spec.md 3.2)."""
    return (value // k) * k


def rare_by_length_lines(rows: list[RiskByLength]) -> list[str]:
    """``sensitive_rare_by_length.tsv`` (docs/spec.md 3.3): raw distinct and rare combination counts."""
    lines = ["sen_combo_length\tcombo_count\trare_count\trare_proportion"]
    for r in rows:
        proportion = r.rare_combinations / r.combinations if r.combinations else 0.0
        lines.append(f"{r.length}\t{r.combinations}\t{r.rare_combinations}\t{fmt_number(proportion)}")
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
    """docs/spec.md 5.2 records analysis with ``protect=True``."""

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
        """The ``parameters`` of docs/spec.md 5.2."""
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
        """``sensitive_analysis_by_length.tsv`` (docs/spec.md 5.3)."""
        lines = ["combo_length\tsen_rare\tsen_rare_pct\tsen_unique\tsen_unique_pct\tsen_risky\tsen_risky_pct"]
        for b in self.by_length:
            lines.append(
                f"{b.length}\t{b.rare}\t{fmt_number(b.pct(b.rare))}\t{b.unique}\t{fmt_number(b.pct(b.unique))}"
                f"\t{b.risky}\t{fmt_number(b.pct(b.risky))}"
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
