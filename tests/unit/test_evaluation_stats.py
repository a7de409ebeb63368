"""The public statistics' evaluation.json form.

Pure Python, no Spark: evaluate writes what publish reads, so the form is pinned here key for key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ctdc_spark.evaluate import AgreementRule
from ctdc_spark.evaluate._metrics import CountComparison, official_buckets, public_stats
from ctdc_spark.evaluate.stats import EMPTY_STATS, PublicEvaluation, Stats


def _stats(max_length: int = 2) -> Stats:
    fields = ("length", "bucket", "combinations", "abs_error", "proportional_error", "agreeing")
    rows = [(1, 0, 3, 3, 1.5, 2), (2, 2, 1, 4, 0.2, 1), (2, 0, 1, 10, 1.0, 0)]
    buckets = official_buckets([dict(zip(fields, r, strict=True)) for r in rows], resolution=10)
    lengths = [CountComparison(1, 3, 3, 3, 30, 3, 1), CountComparison(2, 2, 1, 1, 50, 4, -4)]
    return public_stats(
        lengths[:max_length],
        [b for b in buckets if b.length <= max_length],
        resolution=10,
        max_length=max_length,
    )


RULE = AgreementRule.for_release(resolution=10, dp=False)

#: The ``stats`` of evaluation.json for _stats(), as the evaluate stage wrote it before the typed hand-off.
STATS_JSON: dict[str, Any] = {
    "by_length": [
        {
            "length": 1,
            "official_combinations": 3,
            "synthetic_combinations": 3,
            "common": 3,
            "coverage_pct": 100.0,
            "not_in_official_pct": 0.0,
            "mean_abs_error": 1.0,
            "mean_signed_error": 0.333333,
            "mean_proportional_error": 0.5,
        },
        {
            "length": 2,
            "official_combinations": 2,
            "synthetic_combinations": 1,
            "common": 1,
            "coverage_pct": 50.0,
            "not_in_official_pct": 0.0,
            "mean_abs_error": 4.0,
            "mean_signed_error": -4.0,
            "mean_proportional_error": 0.6,
        },
    ],
    "by_bucket": [
        {"low": 10, "high": 19, "combinations": 4, "mean_abs_error": 3.25, "mean_proportional_error": 0.625},
        {"low": 20, "high": 39, "combinations": 0, "mean_abs_error": None, "mean_proportional_error": None},
        {"low": 40, "high": 79, "combinations": 1, "mean_abs_error": 4.0, "mean_proportional_error": 0.2},
    ],
    "multi": {
        "min_length": 2,
        "max_length": 2,
        "combinations": 2,
        "mean_abs_error": 7.0,
        "mean_proportional_error": 0.6,
    },
    "overall": {
        "mean_abs_error": 1.75,
        "mean_proportional_error": 0.54,
        "coverage_pct": 80.0,
        "not_in_official_pct": 0.0,
    },
    "agreement": {
        "rule": {"interval": 10, "relative": 0.1, "absolute": 10.0},
        "by_length": [
            {"length": 1, "compared": 3, "agreeing": 2, "agreeing_pct": 66.666667},
            {"length": 2, "compared": 2, "agreeing": 1, "agreeing_pct": 50.0},
        ],
        "overall": {"compared": 5, "agreeing": 3, "agreeing_pct": 60.0},
    },
}


def test_json_form_is_todays_evaluation_json_key_for_key() -> None:
    written = PublicEvaluation(stats=_stats(), agreement_rule=RULE).as_json()
    # json.dumps without sort_keys keeps the order: same keys, same order, same numbers.
    assert json.dumps(written) == json.dumps(STATS_JSON)


def test_a_single_length_has_no_multi_statistics() -> None:
    assert _stats(max_length=1).multi is None
    assert PublicEvaluation(stats=_stats(max_length=1), agreement_rule=RULE).as_json()["multi"] is None


def test_a_rule_needs_the_agreement_statistics_it_states() -> None:
    with pytest.raises(ValueError, match=r"agreement_rule needs the stats\.agreement"):
        PublicEvaluation(stats=EMPTY_STATS, agreement_rule=RULE)
