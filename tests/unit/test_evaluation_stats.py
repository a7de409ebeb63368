"""The public statistics' evaluation.json form, both ways, and the metadata.json facts publish reads back.

Pure Python, no Spark: evaluate writes what publish reads, so the form is pinned here key for key.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from ctdc_spark.evaluate import AgreementRule
from ctdc_spark.evaluate._metrics import CountComparison, official_buckets, public_stats
from ctdc_spark.evaluate.stats import EMPTY_STATS, EVALUATION_JSON, MultiStats, PublicEvaluation, Stats
from ctdc_spark.io.files import read_metadata, update_metadata, write_json
from ctdc_spark.publish._explorer.model import read_evaluation


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


@pytest.mark.parametrize(
    "evaluation",
    [
        PublicEvaluation(stats=_stats(), agreement_rule=RULE),
        PublicEvaluation(stats=_stats(max_length=1), agreement_rule=RULE),
        PublicEvaluation(stats=_stats(), agreement_rule=None),
        PublicEvaluation(stats=EMPTY_STATS, agreement_rule=None),
    ],
    ids=["full", "one_length", "agreement_without_rule", "empty"],
)
def test_evaluation_json_reads_back_equal(tmp_path: Path, evaluation: PublicEvaluation) -> None:
    write_json(tmp_path / EVALUATION_JSON, {"audience": "public", "stats": evaluation.as_json()})
    assert read_evaluation(tmp_path) == evaluation


def test_a_run_without_evaluation_json_has_no_public_evaluation(tmp_path: Path) -> None:
    assert read_evaluation(tmp_path) is None


def test_older_evaluation_json_without_v2_fields_reads_as_their_defaults(tmp_path: Path) -> None:
    older = copy.deepcopy(STATS_JSON)
    del older["multi"], older["agreement"], older["by_length"][0]["mean_proportional_error"]
    write_json(tmp_path / EVALUATION_JSON, {"stats": older})
    read = read_evaluation(tmp_path)
    assert read is not None
    assert read.agreement_rule is None and read.stats.multi is None and read.stats.agreement is None
    assert read.stats.by_length[0].mean_proportional_error is None


def test_a_rule_needs_the_agreement_statistics_it_states() -> None:
    with pytest.raises(ValueError, match=r"agreement_rule needs the stats\.agreement"):
        PublicEvaluation(stats=EMPTY_STATS, agreement_rule=RULE)


_DELETE = object()


def _set(path: str, value: Any) -> Any:
    """A change to a JSON-like stats object: set (or, with _DELETE, remove) the field at a dotted path."""

    def mutate(stats: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = stats
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return mutate


BAD_DOCUMENTS = [
    (
        "count_as_text",
        _set("by_length.0.length", "1"),
        r"stats\.by_length\[0\]\.length: must be a whole number",
    ),
    (
        "count_as_flag",
        _set("agreement.overall.compared", True),
        r"stats\.agreement\.overall\.compared: must be a whole number",
    ),
    (
        "nan_metric",
        _set("overall.coverage_pct", float("nan")),
        r"stats\.overall\.coverage_pct: must be a finite",
    ),
    (
        "missing_metric",
        _set("overall.mean_abs_error", _DELETE),
        r"stats\.overall\.mean_abs_error: missing field",
    ),
    ("rows_not_a_list", _set("by_bucket", {"low": 10}), r"stats\.by_bucket: must be a list"),
    ("row_not_an_object", _set("by_bucket", [3]), r"stats\.by_bucket\[0\]: must be an object"),
    ("negative_count", _set("by_length.1.common", -1), r"stats\.by_length\[1\]\.common: must be >= 0"),
    (
        "more_agreeing_than_compared",
        _set("agreement.overall.agreeing", 6),
        r"stats\.agreement\.overall\.agreeing: must be <= compared",
    ),
    (
        "rule_interval_zero",
        _set("agreement.rule.interval", 0),
        r"stats\.agreement\.rule\.interval: must be >= 1",
    ),
    (
        "rule_without_tolerance",
        _set("agreement.rule.relative", None),
        r"stats\.agreement\.rule\.relative: must be a number",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "pattern"), [c[1:] for c in BAD_DOCUMENTS], ids=[c[0] for c in BAD_DOCUMENTS]
)
def test_a_bad_evaluation_json_names_the_field(tmp_path: Path, mutate: Any, pattern: str) -> None:
    stats = copy.deepcopy(STATS_JSON)
    mutate(stats)
    write_json(tmp_path / EVALUATION_JSON, {"stats": stats})
    with pytest.raises(ValueError, match=rf"^evaluation\.json: {pattern}"):
        read_evaluation(tmp_path)


def test_evaluation_json_without_stats_is_an_error(tmp_path: Path) -> None:
    write_json(tmp_path / EVALUATION_JSON, {"audience": "public"})
    with pytest.raises(ValueError, match=r"^evaluation\.json: stats: missing field"):
        read_evaluation(tmp_path)


def test_stats_checks_name_the_document_they_are_in() -> None:
    multi = MultiStats(
        min_length=2, max_length=1, combinations=0, mean_abs_error=None, mean_proportional_error=None
    )
    bad = dataclasses.replace(_stats(), multi=multi)
    with pytest.raises(
        ValueError, match=r"^explorer payload: payload\.stats\.multi\.max_length: must be >= 2"
    ):
        bad.check("payload.stats", document="explorer payload")


def test_metadata_facts_read_back_what_the_stages_wrote(tmp_path: Path) -> None:
    assert not read_metadata(tmp_path).verified and read_metadata(tmp_path).release_date is None
    update_metadata(tmp_path, "guarantee", {"type": "k-synthetic", "verified": True})
    assert read_metadata(tmp_path).verified
    update_metadata(tmp_path, "release", {"date": "2026-01-01"})
    assert read_metadata(tmp_path).release_date == "2026-01-01"
    update_metadata(tmp_path, "guarantee", {"verified": "yes"})  # only true itself is a passed verification
    assert not read_metadata(tmp_path).verified


@pytest.mark.parametrize(
    ("metadata", "pattern"),
    [
        ({"release": {"date": 20260101}}, r"release\.date: must be a string"),
        ({"guarantee": ["verified"]}, r"guarantee: must be an object"),
        (["guarantee"], r"must be an object"),
    ],
    ids=["date_not_text", "section_not_an_object", "file_not_an_object"],
)
def test_bad_metadata_names_the_field(tmp_path: Path, metadata: Any, pattern: str) -> None:
    (tmp_path / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^metadata\.json: {pattern}"):
        read_metadata(tmp_path)
