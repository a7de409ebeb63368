"""The evaluation documents (public and private) and their rows in the ``evaluation_metrics`` table.

Pure Python over already-computed metrics. The public document is built from the public
statistics (:class:`~ctdc_spark.evaluate.stats.PublicEvaluation`: synthetic vs reportable), the public
parameters and the verified guarantee kind only; it has no field for a sensitive-referenced number, so
none can slip in.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ctdc_spark.combos.risk import RecordsAnalysis
from ctdc_spark.evaluate._metrics import PrivateMetrics, record_expansion_pct
from ctdc_spark.evaluate._report import private_statements, public_statements
from ctdc_spark.evaluate._verify import Verification
from ctdc_spark.evaluate.stats import PublicEvaluation, Stats

PUBLIC = "public"
PRIVATE = "private"

PUBLIC_DEFINITIONS = {
    "reference": "Every number compares the synthetic records with the official (reportable) counts; "
    "none is computed from the confidential records.",
    "coverage_pct": "Percentage of the official combinations of this length that also occur in the "
    "synthetic records.",
    "not_in_official_pct": "Percentage of the synthetic combinations of this length that are not "
    "official combinations (they describe fewer than k people, or none).",
    "mean_abs_error": "Mean of |synthetic count - official count| over the combinations in both.",
    "mean_signed_error": "Mean of (synthetic count - official count) over the combinations in both; "
    "positive means the synthetic counts are higher.",
    "by_bucket": "Official combinations grouped by official count in doubling ranges starting at k; a "
    "combination missing from the synthetic records counts as 0.",
    "mean_proportional_error": "Mean of |synthetic count - official count| / official count, as a "
    "fraction (0.12 = 12 %), over official combinations.",
    "multi": "The errors over every official combination of 2 to L characteristics (single "
    "characteristics are kept exactly by the seeded synthesis modes, combinations are not).",
    "agreement": "A synthetic count agrees with an official count a when its distance to the interval "
    "[a, a + interval - 1] of true counts that a can stand for is at most max(absolute, relative * a); "
    "agreeing_pct is the share of official combinations whose synthetic count agrees.",
}


@dataclass(frozen=True)
class RunFacts:
    """Parameters of the evaluated run."""

    resolution: int
    max_length: int
    synthesis_mode: str
    privacy_mode: str
    sensitive_records: int
    synthetic_records: int
    published_record_count: int
    """The record count as the reportable aggregates publish it (floor(n/k)k, or the DP count)."""

    def public(self) -> dict[str, Any]:
        """Public parameters (the sensitive record count rounded down like every published count).

        Also the ``parameters`` section of ``metadata.json``.
        """
        return {
            "k": self.resolution,
            "L": self.max_length,
            "synthesis_mode": self.synthesis_mode,
            "privacy_mode": self.privacy_mode,
            "reportable_record_count": self.published_record_count,
            "synthetic_records": self.synthetic_records,
        }

    def private(self) -> dict[str, Any]:
        """Parameters with the exact sensitive record count."""
        return {**self.public(), "sensitive_records": self.sensitive_records}


def public_evaluation(
    facts: RunFacts, verification: Verification, public: PublicEvaluation
) -> dict[str, Any]:
    """The content of the public ``evaluation.json`` (publish reads its ``stats`` back)."""
    statements = public_statements(
        k=facts.resolution,
        max_length=facts.max_length,
        guarantee=verification.kind,
        stats=public.stats,
        synthetic_records=facts.synthetic_records,
    )
    return {
        "audience": PUBLIC,
        "parameters": facts.public(),
        "stats": public.as_json(),
        "statements": [s.as_dict() for s in statements],
        "definitions": PUBLIC_DEFINITIONS,
    }


def private_evaluation(
    *,
    run_id: str,
    facts: RunFacts,
    verification: Verification,
    analysis: RecordsAnalysis,
    metrics: PrivateMetrics,
    rare_record_rows: int,
    public_stats: PublicEvaluation,
    attacks: Mapping[str, Any],
) -> dict[str, Any]:
    """The content of ``evaluation_private.json`` (and the input of the HTML report).

    Args:
        run_id: The run.
        facts: Run parameters.
        verification: The (passed) guarantee check, with its exact minimum support.
        analysis: docs/spec.md 5.2 records analysis.
        metrics: The sensitive-referenced metrics.
        rare_record_rows: Rows of ``synthetic_rare_combos_by_length.tsv``.
        public_stats: The public statistics (repeated, as in evaluation.json, so the report can show them).
        attacks: The measured attack risk (``_attacks``), or why the attacks did not run.
    """
    leakage, preservation = metrics.leakage, metrics.preservation
    expansion_pct = record_expansion_pct(facts.synthetic_records, facts.sensitive_records)
    evaluation: dict[str, Any] = {
        "audience": PRIVATE,
        "warning": "Computed from the confidential records and their exact counts: never publish.",
        "run_id": run_id,
        "parameters": facts.private(),
        "verification": {**verification.private_section(), "statement": verification.statement()},
        "records_analysis": {
            "summary": analysis.summary(),
            "by_length": [
                {
                    "length": b.length,
                    "unique": b.unique,
                    "rare": b.rare,
                    "risky": b.risky,
                    "unique_pct": b.pct(b.unique),
                    "rare_pct": b.pct(b.rare),
                    "risky_pct": b.pct(b.risky),
                }
                for b in analysis.by_length
            ],
        },
        "sensitive_combinations": [
            {"length": s.length, "combinations": s.combinations, "rare": s.rare} for s in metrics.sensitive
        ],
        "leakage": {
            "total": sum(r.leaks for r in leakage),
            "by_length": [
                {
                    "length": r.length,
                    "synthetic_combinations": r.syn_combinations,
                    "leaks": r.leaks,
                    "leak_proportion": r.proportion,
                }
                for r in leakage
            ],
        },
        "preservation": preservation.as_dict(),
        "synthetic_vs_sensitive": {
            **metrics.synthetic_vs_sensitive.as_dict(),
            "record_expansion_pct": expansion_pct,
            "mean_proportional_error": preservation.mean_proportional_error,
        },
        "reportable_vs_sensitive": metrics.reportable_vs_sensitive.as_dict(),
        "rare_synthetic_combinations": {
            "combinations": metrics.rare_synthetic_combinations,
            "record_rows": rare_record_rows,
        },
        "public_stats": public_stats.as_json(),
        "attacks": dict(attacks),
    }
    evaluation["statements"] = [s.as_dict() for s in private_statements(evaluation)]
    return evaluation


MetricRow = tuple[str, str, int | None, int | None, float | None]
"""``(audience, metric, length, bucket, value)``."""


def _numbers(
    audience: str,
    prefix: str,
    row: Mapping[str, Any],
    *,
    length: int | None = None,
    bucket: int | None = None,
) -> Iterator[MetricRow]:
    for key, value in row.items():
        if key in ("length", "bucket", "low") or isinstance(value, bool | str | dict | list):
            continue
        if value is None or isinstance(value, int | float):
            yield audience, f"{prefix}{key}", length, bucket, None if value is None else float(value)


def metric_rows(stats: Stats, facts: RunFacts, private: Mapping[str, Any]) -> list[MetricRow]:
    """Flatten the public statistics and parameters and the private document into ``evaluation_metrics`` rows.

    A public metric is named after its field (no value-bearing strings).
    """
    rows: list[MetricRow] = []
    for r in stats.by_length:
        rows += _numbers(PUBLIC, "", asdict(r), length=r.length)
    for b in stats.by_bucket:
        rows += _numbers(PUBLIC, "bucket_", asdict(b), bucket=b.low)
    rows += _numbers(PUBLIC, "overall_", asdict(stats.overall))
    if stats.multi is not None:
        rows += _numbers(PUBLIC, "multi_", asdict(stats.multi))
    if stats.agreement is not None:
        for a in stats.agreement.by_length:
            rows += _numbers(PUBLIC, "agreement_", asdict(a), length=a.length)
        rows += _numbers(PUBLIC, "agreement_overall_", asdict(stats.agreement.overall))
    rows += _numbers(PUBLIC, "", facts.public())

    rows.append((PRIVATE, "sensitive_records", None, None, float(private["parameters"]["sensitive_records"])))
    rows += _numbers(PRIVATE, "verification_", private["verification"])
    rows += _numbers(PRIVATE, "records_", private["records_analysis"]["summary"])
    for r in private["records_analysis"]["by_length"]:
        rows += _numbers(PRIVATE, "records_", r, length=r["length"])
    for r in private["sensitive_combinations"]:
        rows += _numbers(PRIVATE, "sensitive_", r, length=r["length"])
    for r in private["leakage"]["by_length"]:
        rows += _numbers(PRIVATE, "leakage_", r, length=r["length"])
    preservation = private["preservation"]
    rows += _numbers(PRIVATE, "preservation_", preservation)
    for r in preservation["by_length"]:
        rows += _numbers(PRIVATE, "preservation_", r, length=r["length"])
    for r in preservation["by_bucket"]:
        rows += _numbers(PRIVATE, "preservation_bucket_", r, bucket=r["bucket"])
    for name in ("synthetic_vs_sensitive", "reportable_vs_sensitive"):
        rows += _numbers(PRIVATE, f"{name}_", private[name])
        for r in private[name]["by_length"]:
            rows += _numbers(PRIVATE, f"{name}_", r, length=r["length"])
    rows += _numbers(PRIVATE, "rare_synthetic_", private["rare_synthetic_combinations"])
    for name, attack in private["attacks"].get("attacks", {}).items():
        rows += _numbers(PRIVATE, f"attack_{name}_", attack)
    return rows
