"""The public evaluation statistics: what the evaluate stage hands the publish stage, as typed values.

The evaluate stage computes them (``_metrics.public_stats``) and writes them as the ``stats`` object of the
public ``evaluation.json`` (:meth:`PublicEvaluation.as_json`), with the :class:`AgreementRule` their agreement
counts applied. The publish stage reads them back into these dataclasses with the explorer payload's typed
reader (``publish/_explorer/model.py``, ``read_evaluation``), which reads every field by its declared type,
and embeds them in the payload, whose contract re-exports them. Pure Python: no Spark.

Every number compares the synthetic data with the official (reportable) counts, never with the
confidential records. Lists may be empty and metrics null (no combination to average over); ``*_pct`` are
percentages (0-100), ``*_proportional_error`` fractions (0.12 = 12 %).

Errors are ``ValueError`` naming the field by its path (``stats.by_length[0].common``); they never quote
a value.

Example:
    >>> PublicEvaluation(stats=EMPTY_STATS, agreement_rule=None).as_json()["by_length"]
    []
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "AGREEMENT_RELATIVE",
    "EMPTY_STATS",
    "EVALUATION_JSON",
    "AgreementCount",
    "AgreementRule",
    "AgreementStats",
    "BucketStats",
    "LengthAgreement",
    "LengthStats",
    "MultiStats",
    "OverallStats",
    "PublicEvaluation",
    "Stats",
]

#: The public evaluation document in ``staging/<run_id>/`` (published as ``release/<run_id>/``).
EVALUATION_JSON = "evaluation.json"

#: An official count within 10 % (or within k records) of the synthetic one "agrees" (see AgreementRule).
AGREEMENT_RELATIVE = 0.10


def _fail(document: str, path: str, problem: str) -> ValueError:
    return ValueError(f"{document}: {path}: {problem}")


def _at_least(value: float, minimum: int, document: str, path: str) -> None:
    if value < minimum:
        raise _fail(document, path, f"must be >= {minimum}")


@dataclass(frozen=True)
class AgreementRule:
    """When a synthetic count agrees with an official one (the page, its export and evaluation.json).

    An official count ``a`` stands for the interval ``[a, a + interval - 1]`` of true counts it can
    come from (``interval`` = k for counts rounded down to multiples of k, 1 for DP counts). A
    synthetic count ``s`` agrees with ``a`` when its distance to that interval is at most
    ``max(absolute, relative * a)``: within 10 % for large counts, within k records for small ones,
    so 6,234 vs 6,360 agrees while 92 vs 470 does not.

    Example:
        >>> rule = AgreementRule(interval=10, relative=0.1, absolute=10)
        >>> rule.agrees(6234, 6360), rule.agrees(92, 470), rule.agrees(29, 10), rule.agrees(30, 10)
        (True, False, True, False)
    """

    #: >= 1.
    interval: int
    #: >= 0.
    relative: float
    #: >= 0.
    absolute: float

    @classmethod
    def for_release(cls, *, resolution: int, dp: bool) -> AgreementRule:
        """The rule of a release with resolution k (DP counts are not rounded, so their interval is 1)."""
        return cls(interval=1 if dp else resolution, relative=AGREEMENT_RELATIVE, absolute=float(resolution))

    def agrees(self, synthetic: int, official: int) -> bool:
        """Whether ``synthetic`` agrees with ``official`` (the reference the Spark form is tested against)."""
        outside = max(official - synthetic, synthetic - (official + self.interval - 1), 0)
        return outside <= max(self.absolute, self.relative * official)

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as ``evaluation.json`` states it and the explorer reads it."""
        return {"interval": self.interval, "relative": self.relative, "absolute": self.absolute}

    def check(self, path: str, *, document: str) -> None:
        """Check the bounds the fields' comments state.

        Args:
            path: Where the rule sits in ``document``, e.g. ``payload.meta.agreement``.
            document: What holds it, for the message, e.g. ``explorer payload``.

        Raises:
            ValueError: ``<document>: <path of the field>: <problem>``.
        """
        _at_least(self.interval, 1, document, f"{path}.interval")
        for name, number in (("relative", self.relative), ("absolute", self.absolute)):
            if number < 0:
                raise _fail(document, f"{path}.{name}", "must be a number >= 0")


# The fields are declared in the page's order of keys (the explorer's compile.py turns each row into a JSON
# object with dataclasses.asdict) and, but for LengthAgreement's length, in evaluation.json's order.


@dataclass(frozen=True)
class LengthStats:
    """The comparison of all combinations of one length."""

    length: int
    official_combinations: int
    synthetic_combinations: int
    common: int
    coverage_pct: float | None
    not_in_official_pct: float | None
    mean_abs_error: float | None
    mean_signed_error: float | None
    #: Absent from evaluation.json files older than contract v2.
    mean_proportional_error: float | None = None


@dataclass(frozen=True)
class BucketStats:
    """The errors of the official combinations whose count lies in ``[low, high]``."""

    low: int
    #: None for an open last bucket.
    high: int | None
    combinations: int
    mean_abs_error: float | None
    mean_proportional_error: float | None


@dataclass(frozen=True)
class OverallStats:
    """The comparison over every length."""

    mean_abs_error: float | None
    mean_proportional_error: float | None
    coverage_pct: float | None
    not_in_official_pct: float | None


@dataclass(frozen=True)
class MultiStats:
    """The errors over all combinations of ``min_length..max_length`` (2..L) characteristics."""

    min_length: int
    max_length: int
    combinations: int
    mean_abs_error: float | None
    mean_proportional_error: float | None


@dataclass(frozen=True)
class AgreementCount:
    """How many official counts the synthetic data agree with (under :class:`AgreementRule`)."""

    compared: int
    #: <= compared.
    agreeing: int
    agreeing_pct: float | None


@dataclass(frozen=True)
class LengthAgreement(AgreementCount):
    """:class:`AgreementCount` of the combinations of one length (>= 1)."""

    length: int


@dataclass(frozen=True)
class AgreementStats:
    """The share of official counts the synthetic data agree with, per length and overall."""

    by_length: tuple[LengthAgreement, ...]
    overall: AgreementCount


@dataclass(frozen=True)
class Stats:
    """Public-only fidelity statistics: the synthetic data against the reportable aggregates."""

    by_length: tuple[LengthStats, ...]
    by_bucket: tuple[BucketStats, ...]
    overall: OverallStats
    #: None when L < 2 (and in evaluation.json files older than contract v2).
    multi: MultiStats | None = None
    agreement: AgreementStats | None = None

    def check(self, path: str, *, document: str) -> None:
        """Check the bounds: counts >= 0, ``2 <= min_length <= max_length``, agreeing <= compared.

        Args:
            path: Where the statistics sit in ``document``, e.g. ``payload.stats``.
            document: What holds them, for the message, e.g. ``explorer payload``.

        Raises:
            ValueError: ``<document>: <path of the field>: <problem>``.
        """
        for i, row in enumerate(self.by_length):
            for name in ("length", "official_combinations", "synthetic_combinations", "common"):
                _at_least(getattr(row, name), 0, document, f"{path}.by_length[{i}].{name}")
        for i, bucket in enumerate(self.by_bucket):
            _at_least(bucket.low, 0, document, f"{path}.by_bucket[{i}].low")
            if bucket.high is not None:
                _at_least(bucket.high, 0, document, f"{path}.by_bucket[{i}].high")
            _at_least(bucket.combinations, 0, document, f"{path}.by_bucket[{i}].combinations")
        if self.multi is not None:
            multi, mpath = self.multi, f"{path}.multi"
            _at_least(multi.min_length, 2, document, f"{mpath}.min_length")
            _at_least(multi.max_length, 2, document, f"{mpath}.max_length")
            _at_least(multi.combinations, 0, document, f"{mpath}.combinations")
            if multi.max_length < multi.min_length:
                raise _fail(document, f"{mpath}.max_length", "must be >= min_length")
        if self.agreement is not None:
            apath = f"{path}.agreement"
            for i, length_row in enumerate(self.agreement.by_length):
                _check_agreement_count(length_row, document, f"{apath}.by_length[{i}]")
                _at_least(length_row.length, 1, document, f"{apath}.by_length[{i}].length")
            _check_agreement_count(self.agreement.overall, document, f"{apath}.overall")


def _check_agreement_count(count: AgreementCount, document: str, path: str) -> None:
    _at_least(count.compared, 0, document, f"{path}.compared")
    _at_least(count.agreeing, 0, document, f"{path}.agreeing")
    if count.agreeing > count.compared:
        raise _fail(document, f"{path}.agreeing", "must be <= compared")


#: Statistics of a release without an evaluation.json: no rows, no metrics.
EMPTY_STATS = Stats(
    by_length=(),
    by_bucket=(),
    overall=OverallStats(
        mean_abs_error=None, mean_proportional_error=None, coverage_pct=None, not_in_official_pct=None
    ),
)


@dataclass(frozen=True)
class PublicEvaluation:
    """What the publish stage takes from ``evaluation.json``: the statistics and the rule they applied.

    Raises:
        ValueError: ``agreement_rule`` is given without ``stats.agreement`` (evaluation.json states the rule
            inside the agreement statistics, so it could not be written).
    """

    stats: Stats
    #: The rule ``stats.agreement`` counted with; None when the document states none (its agreement
    #: statistics, if any, are then read under the release's default rule).
    agreement_rule: AgreementRule | None

    def __post_init__(self) -> None:
        if self.agreement_rule is not None and self.stats.agreement is None:
            raise ValueError("public evaluation: an agreement_rule needs the stats.agreement it applies to")

    def as_json(self) -> dict[str, Any]:
        """The ``stats`` object of ``evaluation.json``: the statistics, the rule at ``agreement.rule``."""
        stats = self.stats
        # Keys in the order evaluation.json has always had them (multi before overall, a length first).
        return {
            "by_length": [asdict(r) for r in stats.by_length],
            "by_bucket": [asdict(b) for b in stats.by_bucket],
            "multi": None if stats.multi is None else asdict(stats.multi),
            "overall": asdict(stats.overall),
            "agreement": None if stats.agreement is None else self._agreement_json(stats.agreement),
        }

    def _agreement_json(self, agreement: AgreementStats) -> dict[str, Any]:
        stated = {} if self.agreement_rule is None else {"rule": self.agreement_rule.as_dict()}
        return {
            **stated,
            "by_length": [{"length": r.length, **_agreement_count_json(r)} for r in agreement.by_length],
            "overall": _agreement_count_json(agreement.overall),
        }


def _agreement_count_json(count: AgreementCount) -> dict[str, Any]:
    return {"compared": count.compared, "agreeing": count.agreeing, "agreeing_pct": count.agreeing_pct}
