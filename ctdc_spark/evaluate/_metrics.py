"""Evaluation metrics from small, already-collected Spark results (pure Python, no Spark).

Spark reduces the joined aggregates to a few rows per combination length and per count bucket
(:mod:`._compare`); this module turns those sums into the docs/spec.md 5.2 metrics, the SDS-format TSV
lines of docs/spec.md 5.3 and the explorer's public :class:`~ctdc_spark.evaluate.stats.Stats`. Means are
computed here, from sums and counts, so empty groups never divide by zero inside Spark.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ctdc_spark.combos.sds_format import fmt_number
from ctdc_spark.evaluate.stats import (
    AgreementCount,
    AgreementStats,
    BucketStats,
    LengthAgreement,
    LengthStats,
    MultiStats,
    OverallStats,
    Stats,
)

SDS_FIRST_BUCKET = 10
"""SDS's preservation-by-count bins start at 10 whatever k is (docs/spec.md 5.2)."""

_JSON_DIGITS = 6


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _pct(numerator: float, denominator: float) -> float | None:
    ratio = _ratio(numerator, denominator)
    return None if ratio is None else 100.0 * ratio


def _json_number(value: float | None) -> float | None:
    """Round for stable JSON bytes (the explorer shows at most 2-3 decimals)."""
    return None if value is None else round(value, _JSON_DIGITS)


@dataclass(frozen=True)
class CountComparison:
    """Sums comparing the counts of a source and a target aggregate at one combination length.

    ``src``/``tgt`` are, e.g., sensitive/synthetic (SDS's "synthetic data stats"),
    sensitive/reportable ("aggregate counts stats") or reportable/synthetic (the public stats).
    Errors are signed ``tgt - src``, summed over the combinations present in both.
    """

    length: int
    src_combinations: int
    tgt_combinations: int
    common: int
    src_total: int
    abs_error: int
    signed_error: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any], prefix: str = "") -> CountComparison:
        """Read the columns produced by :func:`._compare.comparison_aggregates` with ``prefix``."""
        return cls(
            length=int(row["length"]),
            **{f: int(row[prefix + f] or 0) for f in _COMPARISON_FIELDS},
        )

    @classmethod
    def empty(cls, length: int) -> CountComparison:
        """A length with no combination on either side."""
        return cls(length, 0, 0, 0, 0, 0, 0)


_COMPARISON_FIELDS = (
    "src_combinations",
    "tgt_combinations",
    "common",
    "src_total",
    "abs_error",
    "signed_error",
)


def _by_length(rows: Iterable[CountComparison], max_length: int) -> list[CountComparison]:
    found = {r.length: r for r in rows}
    return [found.get(length, CountComparison.empty(length)) for length in range(1, max_length + 1)]


@dataclass(frozen=True)
class ComparisonSummary:
    """docs/spec.md 5.2 suppressed/fabricated %, mean absolute error and mean value, by length and overall."""

    by_length: tuple[CountComparison, ...]

    @classmethod
    def of(cls, rows: Iterable[CountComparison], max_length: int) -> ComparisonSummary:
        """Zero-fill lengths 1..L that have no row."""
        return cls(tuple(_by_length(rows, max_length)))

    def _total(self, field: str) -> int:
        return sum(int(getattr(r, field)) for r in self.by_length)

    @property
    def src_combinations(self) -> int:
        """Distinct source combinations, all lengths."""
        return self._total("src_combinations")

    @property
    def suppressed_pct(self) -> float:
        """Share of source combinations missing from the target (0 when the source is empty)."""
        return _pct(self.src_combinations - self._total("common"), self.src_combinations) or 0.0

    @property
    def fabricated_pct(self) -> float:
        """Target combinations missing from the source, over the number of *source* combinations."""
        return _pct(self._total("tgt_combinations") - self._total("common"), self.src_combinations) or 0.0

    @property
    def mean_abs_error(self) -> float:
        """Mean ``|tgt - src|`` over the combinations present in both."""
        return _ratio(self._total("abs_error"), self._total("common")) or 0.0

    @property
    def mean_value(self) -> float:
        """Mean source count over all source combinations."""
        return _ratio(self._total("src_total"), self.src_combinations) or 0.0

    def mean_abs_error_of(self, row: CountComparison) -> float:
        """Mean absolute error at one length."""
        return _ratio(row.abs_error, row.common) or 0.0

    def mean_value_of(self, row: CountComparison) -> float:
        """Mean source count at one length."""
        return _ratio(row.src_total, row.src_combinations) or 0.0

    def lines(self) -> list[str]:
        """The first rows of SDS's ``stats_*.tsv`` (``Metric<TAB>Value``, SDS's own formatting)."""
        lines = [
            "Metric\tValue",
            f"Suppressed combinations %\t{self.suppressed_pct:.2f} %",
            f"Fabricated combinations %\t{self.fabricated_pct:.2f} %",
        ]
        for row in self.by_length:
            if row.src_combinations:
                lines.append(
                    f"{row.length}-counts mean value +/- mean error\t"
                    f"{self.mean_value_of(row):.2f} +/- {self.mean_abs_error_of(row):.2f}"
                )
        lines.append(f"Mean value +/- Mean error\t{self.mean_value:.2f} +/- {self.mean_abs_error:.2f}")
        return lines

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the private evaluation file."""
        return {
            "suppressed_pct": self.suppressed_pct,
            "fabricated_pct": self.fabricated_pct,
            "mean_abs_error": self.mean_abs_error,
            "mean_value": self.mean_value,
            "by_length": [
                {
                    "length": r.length,
                    "combinations": r.src_combinations,
                    "mean_value": self.mean_value_of(r),
                    "mean_abs_error": self.mean_abs_error_of(r),
                }
                for r in self.by_length
            ],
        }


@dataclass(frozen=True)
class Preservation:
    """Sums over the shared population P of docs/spec.md 5.2 for one group (a length or a count bucket)."""

    key: int
    combinations: int
    syn_total: int
    length_total: int
    preservation_total: float
    error_total: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any], key: str) -> Preservation:
        """Read the columns produced by :func:`._compare.preservation_aggregates`."""
        return cls(
            key=int(row[key]),
            combinations=int(row["p_combinations"] or 0),
            syn_total=int(row["p_syn_total"] or 0),
            length_total=int(row["p_length_total"] or 0),
            preservation_total=float(row["p_preservation_total"] or 0.0),
            error_total=float(row["p_error_total"] or 0.0),
        )

    @property
    def mean_combo_count(self) -> float:
        """Mean synthetic count (0 for an empty group)."""
        return _ratio(self.syn_total, self.combinations) or 0.0

    @property
    def mean_combo_length(self) -> float:
        """Mean combination length."""
        return _ratio(self.length_total, self.combinations) or 0.0

    @property
    def count_preservation(self) -> float:
        """Mean ``min(syn/sen, 1)``."""
        return _ratio(self.preservation_total, self.combinations) or 0.0

    @property
    def mean_proportional_error(self) -> float:
        """Mean ``|syn - sen| / sen`` (1 for combinations absent from the sensitive data)."""
        return _ratio(self.error_total, self.combinations) or 0.0


def _zero_filled(rows: Iterable[Preservation], keys: Iterable[int]) -> list[Preservation]:
    found = {r.key: r for r in rows}
    return [found.get(key, Preservation(key, 0, 0, 0, 0.0, 0.0)) for key in keys]


def sds_bucket(index: int) -> int:
    """Upper bound of SDS count bucket ``index``: 10, 20, 40, ..."""
    return SDS_FIRST_BUCKET << index


@dataclass(frozen=True)
class PreservationResult:
    """Preservation by length (1..L) and by SDS count bucket, zero-filled, and the MPE."""

    by_length: tuple[Preservation, ...]
    by_bucket: tuple[Preservation, ...]  # keyed by bucket upper bound, ascending

    @classmethod
    def of(
        cls, by_length: Iterable[Preservation], by_bucket_index: Iterable[Preservation], max_length: int
    ) -> PreservationResult:
        """Zero-fill lengths 1..L and every bucket up to the highest one present (docs/spec.md 5.2).

        The highest bucket present holds the largest synthetic count, because every synthetic
        combination belongs to the population.
        """
        indexed = list(by_bucket_index)
        top = max((r.key for r in indexed), default=0)
        buckets = [
            Preservation(
                sds_bucket(r.key),
                r.combinations,
                r.syn_total,
                r.length_total,
                r.preservation_total,
                r.error_total,
            )
            for r in _zero_filled(indexed, range(top + 1))
        ]
        return cls(tuple(_zero_filled(by_length, range(1, max_length + 1))), tuple(buckets))

    @property
    def mean_proportional_error(self) -> float:
        """SDS's MPE: the unweighted mean over all buckets (empty ones included) of their mean error."""
        return _ratio(sum(b.mean_proportional_error for b in self.by_bucket), len(self.by_bucket)) or 0.0

    def length_lines(self) -> list[str]:
        """``preservation_by_length.tsv``."""
        lines = ["syn_combo_length\tmean_combo_count\tcount_preservation\tmean_proportional_error"]
        for r in self.by_length:
            lines.append(
                f"{r.key}\t{fmt_number(r.mean_combo_count)}\t{fmt_number(r.count_preservation)}"
                f"\t{fmt_number(r.mean_proportional_error)}"
            )
        return lines

    def bucket_lines(self) -> list[str]:
        """``preservation_by_count.tsv``, in SDS's descending bucket order."""
        lines = [
            "syn_count_bucket\tmean_combo_count\tmean_combo_length\tcount_preservation\tmean_proportional_error"
        ]
        for r in reversed(self.by_bucket):
            lines.append(
                f"{r.key}\t{fmt_number(r.mean_combo_count)}\t{fmt_number(r.mean_combo_length)}"
                f"\t{fmt_number(r.count_preservation)}\t{fmt_number(r.mean_proportional_error)}"
            )
        return lines

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the private evaluation file."""

        def rows(items: Sequence[Preservation], key: str) -> list[dict[str, Any]]:
            return [
                {
                    key: r.key,
                    "combinations": r.combinations,
                    "mean_combo_count": r.mean_combo_count,
                    "mean_combo_length": r.mean_combo_length,
                    "count_preservation": r.count_preservation,
                    "mean_proportional_error": r.mean_proportional_error,
                }
                for r in items
            ]

        return {
            "mean_proportional_error": self.mean_proportional_error,
            "by_length": rows(self.by_length, "length"),
            "by_bucket": rows(self.by_bucket, "bucket"),
        }


@dataclass(frozen=True)
class Leakage:
    """Synthetic combinations of one length, and those that are rare in both datasets."""

    length: int
    syn_combinations: int
    leaks: int

    @property
    def proportion(self) -> float:
        """Leaks over synthetic combinations of this length."""
        return _ratio(self.leaks, self.syn_combinations) or 0.0


def leakage_lines(rows: Sequence[Leakage]) -> list[str]:
    """``synthetic_leakage_by_length.tsv``."""
    lines = ["syn_combo_length\tcombo_count\tleak_count\tleak_proportion"]
    lines += [f"{r.length}\t{r.syn_combinations}\t{r.leaks}\t{fmt_number(r.proportion)}" for r in rows]
    return lines


@dataclass(frozen=True)
class OfficialBucket:
    """Official combinations of one length whose count lies in ``[low, high]``, with error sums."""

    length: int
    low: int
    high: int
    combinations: int
    abs_error: int
    proportional_error: float
    agreeing: int


def official_buckets(rows: Iterable[Mapping[str, Any]], resolution: int) -> list[OfficialBucket]:
    """Doubling bins ``[k, 2k-1], [2k, 4k-1], ...`` per length, non-empty ones only.

    Args:
        rows: ``length``, ``bucket`` (index j), ``combinations``, ``abs_error``, ``proportional_error``
            and ``agreeing`` sums, as :func:`._compare.public_by_length_and_bucket` returns them.
        resolution: k.
    """
    return sorted(
        (
            OfficialBucket(
                length=int(r["length"]),
                low=resolution * 2 ** int(r["bucket"]),
                high=resolution * 2 ** (int(r["bucket"]) + 1) - 1,
                combinations=int(r["combinations"]),
                abs_error=int(r["abs_error"]),
                proportional_error=float(r["proportional_error"]),
                agreeing=int(r["agreeing"]),
            )
            for r in rows
        ),
        key=lambda b: (b.length, b.low),
    )


class _Errors(NamedTuple):
    """The errors of a set of official combinations (a missing synthetic count counting as 0)."""

    combinations: int
    mean_abs_error: float | None
    mean_proportional_error: float | None

    @classmethod
    def of(cls, buckets: Sequence[OfficialBucket]) -> _Errors:
        combinations = sum(b.combinations for b in buckets)
        return cls(
            combinations,
            _json_number(_ratio(sum(b.abs_error for b in buckets), combinations)),
            _json_number(_ratio(sum(b.proportional_error for b in buckets), combinations)),
        )


def _agreement(buckets: Sequence[OfficialBucket]) -> AgreementCount:
    compared = sum(b.combinations for b in buckets)
    agreeing = sum(b.agreeing for b in buckets)
    return AgreementCount(
        compared=compared, agreeing=agreeing, agreeing_pct=_json_number(_pct(agreeing, compared))
    )


def _length_agreement(length: int, buckets: Sequence[OfficialBucket]) -> LengthAgreement:
    count = _agreement(buckets)
    return LengthAgreement(
        length=length, compared=count.compared, agreeing=count.agreeing, agreeing_pct=count.agreeing_pct
    )


def public_stats(
    by_length: Sequence[CountComparison],
    buckets: Sequence[OfficialBucket],
    *,
    resolution: int,
    max_length: int,
) -> Stats:
    """The explorer's statistics: synthetic vs *reportable* counts only.

    ``by_length`` compares src = reportable (official) with tgt = synthetic. Mean absolute/signed
    errors are over combinations present in both (SDS's convention; coverage says how many);
    proportional errors (by length, by bucket, for ``multi`` = lengths 2..L, and overall) and
    ``agreement`` (counted in Spark under the release's :class:`~.stats.AgreementRule`) are over every
    official combination, a missing synthetic count counting as 0 (SDS's preservation convention).
    """
    lengths = _by_length(by_length, max_length)
    of_length = {r.length: [b for b in buckets if b.length == r.length] for r in lengths}
    official = sum(r.src_combinations for r in lengths)
    synthetic = sum(r.tgt_combinations for r in lengths)
    common = sum(r.common for r in lengths)
    # Zero-filled doubling ranges up to the largest official count, all lengths together.
    top = max((b.low for b in buckets), default=0)
    by_bucket = []
    low = resolution
    while low <= top:
        errors = _Errors.of([b for b in buckets if b.low == low])
        by_bucket.append(
            BucketStats(
                low=low,
                high=2 * low - 1,
                combinations=errors.combinations,
                mean_abs_error=errors.mean_abs_error,
                mean_proportional_error=errors.mean_proportional_error,
            )
        )
        low *= 2
    multi = _Errors.of([b for b in buckets if b.length >= 2])  # lengths 2..L
    return Stats(
        by_length=tuple(
            LengthStats(
                length=r.length,
                official_combinations=r.src_combinations,
                synthetic_combinations=r.tgt_combinations,
                common=r.common,
                coverage_pct=_json_number(_pct(r.common, r.src_combinations)),
                not_in_official_pct=_json_number(_pct(r.tgt_combinations - r.common, r.tgt_combinations)),
                mean_abs_error=_json_number(_ratio(r.abs_error, r.common)),
                mean_signed_error=_json_number(_ratio(r.signed_error, r.common)),
                mean_proportional_error=_Errors.of(of_length[r.length]).mean_proportional_error,
            )
            for r in lengths
        ),
        by_bucket=tuple(by_bucket),
        overall=OverallStats(
            mean_abs_error=_json_number(_ratio(sum(r.abs_error for r in lengths), common)),
            mean_proportional_error=_Errors.of(buckets).mean_proportional_error,
            coverage_pct=_json_number(_pct(common, official)),
            not_in_official_pct=_json_number(_pct(synthetic - common, synthetic)),
        ),
        multi=None
        if max_length < 2
        else MultiStats(
            min_length=2,
            max_length=max_length,
            combinations=multi.combinations,
            mean_abs_error=multi.mean_abs_error,
            mean_proportional_error=multi.mean_proportional_error,
        ),
        agreement=AgreementStats(
            by_length=tuple(_length_agreement(r.length, of_length[r.length]) for r in lengths),
            overall=_agreement(buckets),
        ),
    )


@dataclass(frozen=True)
class SensitiveCombinations:
    """Distinct and rare (count < k) sensitive combinations of one length (docs/spec.md 3.3)."""

    length: int
    combinations: int
    rare: int


@dataclass(frozen=True)
class PrivateMetrics:
    """Every sensitive-referenced metric of docs/spec.md 5.2 except the records analysis."""

    synthetic_vs_sensitive: ComparisonSummary
    reportable_vs_sensitive: ComparisonSummary
    leakage: tuple[Leakage, ...]
    sensitive: tuple[SensitiveCombinations, ...]
    preservation: PreservationResult
    rare_synthetic_combinations: int

    @classmethod
    def from_rows(
        cls,
        by_length: Sequence[Mapping[str, Any]],
        by_bucket: Sequence[Mapping[str, Any]],
        max_length: int,
    ) -> PrivateMetrics:
        """Build from the rows of ``_compare.private_by_length`` and ``private_by_bucket``."""
        found = {int(r["length"]): r for r in by_length}

        def count(length: int, column: str) -> int:
            return int(found[length][column]) if length in found else 0

        lengths = range(1, max_length + 1)
        return cls(
            synthetic_vs_sensitive=ComparisonSummary.of(
                [CountComparison.from_row(r, "sen_syn_") for r in by_length], max_length
            ),
            reportable_vs_sensitive=ComparisonSummary.of(
                [CountComparison.from_row(r, "sen_rep_") for r in by_length], max_length
            ),
            leakage=tuple(
                Leakage(n, count(n, "sen_syn_tgt_combinations"), count(n, "leaks")) for n in lengths
            ),
            sensitive=tuple(
                SensitiveCombinations(n, count(n, "sen_syn_src_combinations"), count(n, "sen_rare"))
                for n in lengths
            ),
            preservation=PreservationResult.of(
                [Preservation.from_row(r, "length") for r in by_length],
                [Preservation.from_row(r, "sds_bucket") for r in by_bucket],
                max_length,
            ),
            rare_synthetic_combinations=sum(count(n, "syn_rare") for n in lengths),
        )

    @property
    def synthetic_combinations(self) -> int:
        """Distinct synthetic combinations of length <= L."""
        return sum(r.syn_combinations for r in self.leakage)


def record_expansion_pct(n_synthetic: int, n_sensitive: int) -> float:
    """docs/spec.md 5.2 record expansion: ``100 (n_syn / n_sen - 1)``."""
    return 100.0 * (n_synthetic / n_sensitive - 1.0) if n_sensitive else 0.0


def synthetic_stats_lines(
    summary: ComparisonSummary, *, expansion_pct: float, mean_proportional_error: float
) -> list[str]:
    """``stats_synthetic_data.tsv``: SEN vs SYN rows plus expansion and MPE (SDS's labels)."""
    return [
        *summary.lines(),
        f"Expansion Ratio\t{expansion_pct:.2f} %",
        f"Mean Proportional error %\t{100.0 * mean_proportional_error:.2f} %",
    ]


def parameter_lines(summary: Mapping[str, float | int]) -> list[str]:
    """``parameters.tsv`` (``parameter<TAB>value``) from the records-analysis summary."""
    return ["parameter\tvalue", *(f"{key}\t{value}" for key, value in summary.items())]
