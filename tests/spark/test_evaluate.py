"""Evaluation: docs/spec.md 8.1 reference numbers, public/private separation, independent verification.

The synthesize stage is developed separately, so these tests write the ``synthetic_records`` table
themselves (``col:value`` rows converted to attribute ids through the run's dictionary) and mark
the synthesize stage as done in the run manifest, so the pipeline never regenerates them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chispa import assert_df_equality
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark import cli
from ctdc_spark.combos.keys import KeyLayout
from ctdc_spark.errors import ConfigError
from ctdc_spark.evaluate import AgreementRule, run_evaluate
from ctdc_spark.evaluate._compare import public_by_length_and_bucket
from ctdc_spark.evaluate._metrics import CountComparison, official_buckets, public_stats
from ctdc_spark.evaluate._rare import rare_occurrences
from ctdc_spark.evaluate._report import Series, bar_line_chart
from ctdc_spark.evaluate._verify import (
    bitmap_index,
    full_set_supports,
    verify_reportable_combinations,
)
from ctdc_spark.evaluate.stats import AgreementCount, BucketStats, MultiStats
from ctdc_spark.io import delta as delta_io
from ctdc_spark.io.files import update_metadata
from ctdc_spark.schemas import (
    ATTRIBUTES,
    COLUMNS,
    EVALUATION_METRICS,
    RECORDS,
    REPORTABLE_AGGREGATES,
    RUNS,
    SENSITIVE_AGGREGATES,
    SYNTHETIC_RECORDS,
)
from ctdc_spark.stage import RunContext
from tests import oracle
from tests.conftest import SDS_EXAMPLE_CSV, job_config, run_stages, write_text

# ---------------------------------------------------------------------------------------------
# Helpers: synthetic records from "col:value" rows
# ---------------------------------------------------------------------------------------------

SDS_HEADERS = SDS_EXAMPLE_CSV.splitlines()[0].split(",")

# The README's 15-row row_seeded output of docs/spec.md 8.1, in the README's order.
SPEC_8_1_SYNTHETIC = [
    *[["A:a1", "B:b1", "C:c1", "D:d1"]] * 3,
    ["B:b2", "C:c2", "D:d2"],
    ["B:b2", "C:c2", "F:1"],
    *[["A:a2", "C:c2", "D:d2"]] * 3,
    *[["A:a2", "B:b2", "D:d2"]] * 2,
    ["A:a2", "B:b2", "C:c2"],
    ["C:c1", "D:d1"],
    ["B:b2", "F:1"],
    ["B:b1"],
    ["A:a1"],
]


def sds_output_order(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> list[list[str]]:
    """docs/spec.md 4.0 final formatting: rows rendered in header order (empty cells ""), sorted
    lexicographically, then stably by descending number of non-empty cells."""

    def rendered(row: Sequence[str]) -> list[str]:
        cells = dict(a.split(":", 1) for a in row)
        return [cells.get(h, "") for h in headers]

    ordered = sorted(rows, key=rendered)
    ordered.sort(key=lambda row: -len(row))
    return [list(r) for r in ordered]


def write_synthetic(spark: SparkSession, root: Path, run_id: str, rows: Sequence[Sequence[str]]) -> DataFrame:
    """Write ``synthetic_records`` for a run: row i becomes record i, ``col:value`` -> attribute ids."""
    dictionary = {
        f"{r['column']}:{r['value']}": r["attr_id"]
        for r in delta_io.read_run_table(spark, ATTRIBUTES, root=str(root), run_id=run_id).collect()
    }
    frame = spark.createDataFrame(
        [(run_id, i, sorted(dictionary[a] for a in row)) for i, row in enumerate(rows)],
        SYNTHETIC_RECORDS.schema,
    )
    delta_io.write_run_table(
        frame, SYNTHETIC_RECORDS, root=str(root), run_id=run_id, signature=uuid.uuid4().hex, stage="test"
    )
    return frame


PENDING_EXPORT = "A,B,C,F,G,D\nplaceholder export of the synthesize stage\n"


def mark_synthesized(spark: SparkSession, root: Path, run_id: str, *, exports: bool) -> None:
    """Record the synthesize stage as done, so the pipeline keeps the records written above.

    With ``exports``, also leave a stand-in for its CSV export where it waits for verification.
    """
    previous = delta_io.read_run_table(spark, RUNS, root=str(root), run_id=run_id).first()
    assert previous is not None
    row = previous.asDict()
    row.update(stage="synthesize", status="SUCCEEDED", ended_at=row["started_at"], error_class=None)
    delta_io.append_rows(spark, RUNS, [row], root=str(root))
    if exports:
        write_text(root / "private" / run_id / "pending" / "synthetic_microdata.csv", PENDING_EXPORT)


def copy_run(
    spark: SparkSession,
    root: Path,
    source: str,
    target: str,
    *,
    sensitive: DataFrame | None = None,
) -> None:
    """Copy a run's inputs of the evaluate stage under another run id (optionally other SEN rows).

    The inputs are its tables and the manifest row of its aggregate stage (the release facts).
    """
    aggregated = (
        delta_io.read_run_table(spark, RUNS, root=str(root), run_id=source).where(
            F.col("stage") == "aggregate"
        )
    ).collect()
    delta_io.append_rows(
        spark, RUNS, [{**row.asDict(), "run_id": target} for row in aggregated], root=str(root)
    )
    for spec in (
        RECORDS,
        ATTRIBUTES,
        COLUMNS,
        REPORTABLE_AGGREGATES,
        SYNTHETIC_RECORDS,
        SENSITIVE_AGGREGATES,
    ):
        rows = delta_io.read_run_table(spark, spec, root=str(root), run_id=source)
        if spec is SENSITIVE_AGGREGATES and sensitive is not None:
            rows = sensitive
        delta_io.write_run_table(
            rows.withColumn("run_id", F.lit(target)),
            spec,
            root=str(root),
            run_id=target,
            signature=uuid.uuid4().hex,
            stage="test",
        )


def _lines(root: Path, name: str, run_id: str = "test", folder: str = "private") -> list[str]:
    return (root / folder / run_id / name).read_text(encoding="utf-8").splitlines()


# ---------------------------------------------------------------------------------------------
# Pure numpy parts (no Spark)
# ---------------------------------------------------------------------------------------------

record_tables = st.lists(
    st.lists(st.integers(min_value=0, max_value=9), max_size=6, unique=True), min_size=1, max_size=30
)


def _csr(records: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(records) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r in records])
    values = np.array([a for r in records for a in sorted(r)], dtype=np.int32)
    return offsets, values


@settings(max_examples=100, deadline=None)
@given(sensitive=record_tables, sets=record_tables)
def test_full_set_supports_match_the_reference(sensitive: list[list[int]], sets: list[list[int]]) -> None:
    # Up to 30 records fit one word; shift ids so bitmaps span several words.
    ids = [70 * i for i in range(len(sensitive))]
    index = np.zeros((10, (max(ids) // 64) + 1), dtype=np.uint64)
    for rid, record in zip(ids, sensitive, strict=True):
        for a in record:
            index[a, rid // 64] |= np.uint64(1) << np.uint64(rid % 64)
    offsets, values = _csr(sets)
    got = full_set_supports(offsets, values, index)
    expected = [oracle.support(sensitive, s) if s else -1 for s in sets]
    assert got.tolist() == expected


@settings(max_examples=100, deadline=None)
@given(records=record_tables, length=st.integers(min_value=1, max_value=4), k=st.integers(1, 4))
def test_rare_occurrences_list_every_record_of_every_rare_combination(
    records: list[list[int]], length: int, k: int
) -> None:
    layout = KeyLayout(10, length)
    offsets, values = _csr(records)
    record_ids = np.arange(len(records), dtype=np.int64) * 3
    pairs = Counter()
    for keys, ids in rare_occurrences(
        offsets, values, record_ids, layout=layout, max_length=length, resolution=k
    ):
        for combo, rid in zip(layout.unpack(keys), ids, strict=True):
            pairs[(tuple(int(x) for x in combo if x >= 0), int(rid))] += 1
    counts = oracle.count_combinations(records, length)
    expected = {
        (c, 3 * i) for i, r in enumerate(records) for c in oracle.sub_combinations(r, length) if counts[c] < k
    }
    assert set(pairs) == expected and all(n == 1 for n in pairs.values())


def test_public_stats_by_length_multi_bucket_and_agreement() -> None:
    fields = ("length", "bucket", "combinations", "abs_error", "proportional_error", "agreeing")
    rows = [(1, 0, 3, 3, 1.5, 2), (2, 2, 1, 4, 0.2, 1), (2, 0, 1, 10, 1.0, 0)]
    buckets = official_buckets([dict(zip(fields, r, strict=True)) for r in rows], resolution=10)
    lengths = [CountComparison(1, 3, 3, 3, 30, 3, 1), CountComparison(2, 2, 1, 1, 50, 4, -4)]
    stats = public_stats(lengths, buckets, resolution=10, max_length=2)
    # Doubling ranges from k, zero-filled, all lengths together.
    assert stats.by_bucket == (
        BucketStats(low=10, high=19, combinations=4, mean_abs_error=3.25, mean_proportional_error=0.625),
        BucketStats(low=20, high=39, combinations=0, mean_abs_error=None, mean_proportional_error=None),
        BucketStats(low=40, high=79, combinations=1, mean_abs_error=4.0, mean_proportional_error=0.2),
    )
    assert [r.mean_proportional_error for r in stats.by_length] == [0.5, 0.6]
    assert stats.multi == MultiStats(
        min_length=2, max_length=2, combinations=2, mean_abs_error=7.0, mean_proportional_error=0.6
    )
    assert stats.overall.mean_proportional_error == 0.54
    assert stats.agreement is not None
    assert stats.agreement.overall == AgreementCount(compared=5, agreeing=3, agreeing_pct=60.0)
    assert public_stats(lengths[:1], buckets[:1], resolution=10, max_length=1).multi is None


@given(
    official=st.integers(0, 10_000),
    synthetic=st.integers(0, 12_000),
    interval=st.sampled_from([1, 5, 10]),
)
def test_agreement_rule_is_a_distance_to_the_rounding_interval(
    official: int, synthetic: int, interval: int
) -> None:
    rule = AgreementRule(interval=interval, relative=0.1, absolute=10.0)
    tolerance = max(10.0, 0.1 * official)
    inside = official <= synthetic <= official + interval - 1
    assert rule.agrees(synthetic, official) == (
        inside or official - tolerance <= synthetic <= official + interval - 1 + tolerance
    )


@pytest.mark.spark
def test_spark_agreement_counts_follow_the_rule(spark: SparkSession) -> None:
    rule = AgreementRule.for_release(resolution=10, dp=False)
    pairs = [(6360, 6234), (470, 92), (10, 29), (10, 30), (20, None), (40, 40), (5000, 5509)]
    joined = spark.createDataFrame(
        [(1, [i], None, syn, rep) for i, (rep, syn) in enumerate(pairs)],
        "length int, combo array<int>, sen long, syn long, rep long",
    )
    rows = public_by_length_and_bucket(joined, resolution=10, agreement=rule).collect()
    assert sum(r["agreeing"] for r in rows) == sum(rule.agrees(s or 0, a) for a, s in pairs) == 4


def test_chart_is_inline_svg_without_external_references() -> None:
    svg = bar_line_chart("t <x>", ["1", "2"], [3.0, 0.0], "bars", [Series("line", [0.5, None])])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "t &lt;x&gt;" in svg and "href" not in svg and "<script" not in svg


def test_update_metadata_merges_and_removes_sections(tmp_path: Path) -> None:
    update_metadata(tmp_path, "guarantee", {"k": 2})
    update_metadata(tmp_path, "publish", {"files": 3})
    update_metadata(tmp_path, "guarantee", {"k": 5})
    assert json.loads((tmp_path / "metadata.json").read_text()) == {
        "guarantee": {"k": 5},
        "publish": {"files": 3},
    }
    update_metadata(tmp_path, "guarantee", None)
    update_metadata(tmp_path, "publish", None)
    assert not (tmp_path / "metadata.json").exists()


# ---------------------------------------------------------------------------------------------
# docs/spec.md 8.1: the SDS CLI README example
# ---------------------------------------------------------------------------------------------


def test_readme_order_is_the_sds_output_order() -> None:
    # Record ids are rows of the *sorted* synthetic file (docs/spec.md 4.0 and 5.1); the README happens
    # to list its 15 rows in exactly that order, so README row i is record i.
    assert sds_output_order(SPEC_8_1_SYNTHETIC, SDS_HEADERS) == SPEC_8_1_SYNTHETIC


@pytest.fixture(scope="module")
def example(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("sds_eval")
    csv = write_text(root / "example.csv", SDS_EXAMPLE_CSV)
    out = root / "out"
    cfg = job_config(csv, out, "privacy.resolution=2", "privacy.reporting_length=3")
    run_stages(spark, cfg, ["aggregate"])
    write_synthetic(spark, out, "test", sds_output_order(SPEC_8_1_SYNTHETIC, SDS_HEADERS))
    mark_synthesized(spark, out, "test", exports=True)
    run_stages(spark, cfg, ["evaluate"])
    yield out


@pytest.mark.spark
def test_spec_8_1_synthetic_aggregates_and_leakage(example: Path) -> None:
    syn = _lines(example, "synthetic_aggregates.tsv")
    assert syn[:2] == ["selections\tcount", "record_count\t15"]
    assert Counter(line.split("\t")[0].count(";") + 1 for line in syn[2:]) == {1: 9, 2: 14, 3: 9}
    assert _lines(example, "synthetic_leakage_by_length.tsv") == [
        "syn_combo_length\tcombo_count\tleak_count\tleak_proportion",
        "1\t9\t0\t0",
        "2\t14\t0\t0",
        "3\t9\t0\t0",
    ]


@pytest.mark.spark
def test_spec_8_1_preservation(example: Path) -> None:
    assert _lines(example, "preservation_by_length.tsv")[1:] == [
        "1\t4.6667\t1\t0",
        "2\t2.9333\t0.8367\t0.18",
        "3\t1.8182\t0.6667\t0.3333",
    ]
    assert _lines(example, "preservation_by_count.tsv")[1:] == ["10\t3.0286\t2.0571\t0.8252\t0.1819"]
    private = json.loads((example / "private/test/evaluation_private.json").read_text())
    pres = private["preservation"]
    assert [r["combinations"] for r in pres["by_length"]] == [9, 15, 11]
    assert pres["by_bucket"][0]["combinations"] == 35
    assert pres["mean_proportional_error"] == pytest.approx(0.1819, abs=5e-5)


@pytest.mark.spark
def test_spec_8_1_synthetic_and_aggregate_stats(example: Path) -> None:
    assert _lines(example, "stats_synthetic_data.tsv") == [
        "Metric\tValue",
        "Suppressed combinations %\t64.84 %",
        "Fabricated combinations %\t0.00 %",
        "1-counts mean value +/- mean error\t3.54 +/- 0.00",
        "2-counts mean value +/- mean error\t1.90 +/- 0.43",
        "3-counts mean value +/- mean error\t1.44 +/- 0.44",
        "Mean value +/- Mean error\t1.93 +/- 0.31",
        "Expansion Ratio\t36.36 %",
        "Mean Proportional error %\t18.19 %",
    ]
    assert _lines(example, "stats_aggregate_counts.tsv") == [
        "Metric\tValue",
        "Suppressed combinations %\t61.54 %",
        "Fabricated combinations %\t0.00 %",
        "1-counts mean value +/- mean error\t3.54 +/- 0.00",
        "2-counts mean value +/- mean error\t1.90 +/- 0.40",
        "3-counts mean value +/- mean error\t1.44 +/- 0.55",
        "Mean value +/- Mean error\t1.93 +/- 0.34",
    ]
    private = json.loads((example / "private/test/evaluation_private.json").read_text())
    assert private["synthetic_vs_sensitive"]["mean_abs_error"] == pytest.approx(0.3125)
    assert private["reportable_vs_sensitive"]["mean_abs_error"] == pytest.approx(0.342857, abs=1e-6)
    assert private["reportable_vs_sensitive"]["by_length"][2]["mean_abs_error"] == pytest.approx(6 / 11)
    assert private["synthetic_vs_sensitive"]["record_expansion_pct"] == pytest.approx(36.3636, abs=1e-4)


@pytest.mark.spark
def test_spec_8_1_rare_synthetic_combinations_and_records_analysis(example: Path) -> None:
    assert _lines(example, "synthetic_rare_combos_by_length.tsv") == [
        "combo_length\tcombo\trecord_id\tsyn_count\tsen_count",
        "2\tC:c2 AND F:1\t4\t1\t2",
        "3\tA:a2 AND B:b2 AND C:c2\t10\t1\t2",
        "3\tB:b2 AND C:c2 AND D:d2\t3\t1\t2",
        "3\tB:b2 AND C:c2 AND F:1\t4\t1\t2",
    ]
    assert _lines(example, "parameters.tsv") == [
        "parameter\tvalue",
        "resolution\t2",
        "limit\t3",
        "total_sensitive_records\t10",
        "unique_identifiable\t8",
        "rare_identifiable\t0",
        "risky_identifiable\t8",
        "risky_identifiable_pct\t80.0",
    ]


def _counts(tsv: Path) -> dict[tuple[str, ...], int]:
    lines = tsv.read_text(encoding="utf-8").splitlines()[2:]
    return {tuple(sel.split(";")): int(n) for sel, n in (line.split("\t") for line in lines)}


def _spec_8_1_fields(stats: dict[str, Any]) -> dict[str, Any]:
    """The public stats without what docs/spec.md 8.1 does not state (proportional error by length, multi,
    agreement: checked by brute force in the test below)."""
    by_length = [{k: v for k, v in r.items() if k != "mean_proportional_error"} for r in stats["by_length"]]
    return {"by_length": by_length, **{key: stats[key] for key in ("by_bucket", "overall")}}


PUBLIC_STATS_8_1 = {
    "by_length": [
        {
            "length": 1,
            "official_combinations": 9,
            "synthetic_combinations": 9,
            "common": 9,
            "coverage_pct": 100.0,
            "not_in_official_pct": 0.0,
            "mean_abs_error": 0.0,
            "mean_signed_error": 0.0,
        },
        {
            "length": 2,
            "official_combinations": 15,
            "synthetic_combinations": 14,
            "common": 14,
            "coverage_pct": 93.333333,
            "not_in_official_pct": 0.0,
            "mean_abs_error": 0.714286,
            "mean_signed_error": 0.142857,
        },
        {
            "length": 3,
            "official_combinations": 11,
            "synthetic_combinations": 9,
            "common": 9,
            "coverage_pct": 81.818182,
            "not_in_official_pct": 0.0,
            "mean_abs_error": 0.888889,
            "mean_signed_error": 0.222222,
        },
    ],
    "by_bucket": [
        {"low": 2, "high": 3, "combinations": 20, "mean_abs_error": 1.0, "mean_proportional_error": 0.5},
        {
            "low": 4,
            "high": 7,
            "combinations": 15,
            "mean_abs_error": 0.266667,
            "mean_proportional_error": 0.066667,
        },
    ],
    "overall": {
        "mean_abs_error": 0.5625,
        "mean_proportional_error": 0.314286,
        "coverage_pct": 91.428571,
        "not_in_official_pct": 0.0,
    },
}


@pytest.mark.spark
def test_public_evaluation_compares_synthetic_with_official_counts(example: Path) -> None:
    public = json.loads((example / "staging/test/evaluation.json").read_text())
    stats = public["stats"]
    assert _spec_8_1_fields(stats) == PUBLIC_STATS_8_1
    by_length_mpe = [r["mean_proportional_error"] for r in stats["by_length"]]
    # Proportional error and agreement over every official combination, by brute force from the
    # released TSV and the synthetic counts (a missing synthetic combination counts 0).
    official = _counts(example / "staging/test/reportable_aggregates.tsv")
    synthetic = _counts(example / "private/test/synthetic_aggregates.tsv")
    rule = AgreementRule(interval=2, relative=0.1, absolute=2.0)
    errors: dict[int, list[float]] = {1: [], 2: [], 3: []}
    agreeing: dict[int, int] = dict.fromkeys(errors, 0)
    for combo, count in official.items():
        errors[len(combo)].append(abs(synthetic.get(combo, 0) - count) / count)
        agreeing[len(combo)] += rule.agrees(synthetic.get(combo, 0), count)
    assert by_length_mpe == [pytest.approx(sum(e) / len(e), abs=1e-6) for e in errors.values()]
    multi = errors[2] + errors[3]
    assert stats["multi"] == {
        "min_length": 2,
        "max_length": 3,
        "combinations": len(multi),
        "mean_abs_error": pytest.approx(
            sum(abs(synthetic.get(c, 0) - n) for c, n in official.items() if len(c) > 1) / len(multi),
            abs=1e-6,
        ),
        "mean_proportional_error": pytest.approx(sum(multi) / len(multi), abs=1e-6),
    }
    assert stats["agreement"]["rule"] == rule.as_dict()
    assert [(r["compared"], r["agreeing"]) for r in stats["agreement"]["by_length"]] == [
        (len(errors[n]), agreeing[n]) for n in (1, 2, 3)
    ]
    assert public["parameters"] == {
        "k": 2,
        "L": 3,
        "synthesis_mode": "row_seeded",
        "privacy_mode": "k-anonymity",
        "reportable_record_count": 10,
        "synthetic_records": 15,
    }
    assert [s["id"] for s in public["statements"]] == [
        "official_privacy",
        "synthetic_privacy",
        "synthetic_accuracy",
        "synthetic_coverage",
    ]
    # The verified synthetic export moved from private/pending to the public staging folder; the
    # pipeline releases that folder only once the publish stage has completed the bundle.
    assert (example / "staging/test/synthetic_microdata.csv").read_text() == PENDING_EXPORT
    assert not (example / "private/test/pending/synthetic_microdata.csv").exists()
    assert not (example / "release/test").exists()


@pytest.mark.spark
def test_metadata_guarantee(example: Path) -> None:
    metadata = json.loads((example / "staging/test/metadata.json").read_text())
    guarantee = metadata["guarantee"]
    assert {key: guarantee[key] for key in ("type", "k", "minimum_support", "verified", "statement")} == {
        "type": "k-synthetic",
        "k": 2,
        "minimum_support": 2,
        "verified": True,
        "statement": "every combination of attributes in this synthetic dataset describes a group of at "
        "least 2 people in the original data",
    }
    assert metadata["parameters"]["synthesis_mode"] == "row_seeded"
    private = json.loads((example / "private/test/evaluation_private.json").read_text())
    assert private["verification"]["minimum_support"] == 2
    assert private["verification"]["checked_records"] == 15


@pytest.mark.spark
def test_evaluation_metrics_table(spark: SparkSession, example: Path) -> None:
    metrics = delta_io.read_run_table(spark, EVALUATION_METRICS, root=str(example), run_id="test")
    coverage = metrics.where((F.col("audience") == "public") & (F.col("metric") == "coverage_pct")).select(
        "length", F.round("value", 4).alias("value")
    )
    expected = spark.createDataFrame([(1, 100.0), (2, 93.3333), (3, 81.8182)], "length int, value double")
    assert_df_equality(coverage, expected, ignore_row_order=True, ignore_nullable=True)
    leaks = metrics.where((F.col("audience") == "private") & (F.col("metric") == "leakage_leaks")).select(
        "length", "value"
    )
    expected = spark.createDataFrame([(1, 0.0), (2, 0.0), (3, 0.0)], "length int, value double")
    assert_df_equality(leaks, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.spark
def test_offline_report(example: Path) -> None:
    report = (example / "private/test/evaluation_report.html").read_text(encoding="utf-8")
    assert report.count("<svg") >= 5
    for forbidden in ("<script", "<link", "src=", "@import", "url("):
        assert forbidden not in report
    assert set(re.findall(r"https?://[^\"' ]+", report)) <= {"http://www.w3.org/2000/svg"}
    for title in (
        "Sensitive data privacy",
        "Aggregate data utility",
        "Synthetic data privacy",
        "Synthetic data utility",
    ):
        assert title in report


@pytest.mark.spark
def test_tiny_inputs_are_not_attacked_and_the_report_says_why(example: Path) -> None:
    # 11 records give no control set worth measuring: nothing is held out (the docs/spec.md 8.1
    # outputs above stay exact) and the private report explains the skip.
    attacks = json.loads((example / "private/test/evaluation_private.json").read_text())["attacks"]
    assert attacks["status"] == "not_run"
    assert "11 sensitive records give fewer than evaluation.attacks.min_control = 500" in attacks["reason"]
    assert "from about 5,000 records" in attacks["reason"]
    report = (example / "private/test/evaluation_report.html").read_text(encoding="utf-8")
    assert "Not measured: 11 sensitive records" in report


# ---------------------------------------------------------------------------------------------
# Audience separation
# ---------------------------------------------------------------------------------------------

PRIVATE_ONLY_NAMES = (
    "leak",
    "suppressed",
    "fabricated",
    "expansion",
    "preservation",
    "risky",
    "unique",
    "sensitive",
    "rare",
)


@pytest.mark.spark
def test_public_file_holds_no_sensitive_referenced_metric(example: Path) -> None:
    text = (example / "staging/test/evaluation.json").read_text()
    keys = re.findall(r'"([a-z_]+)":', text)
    assert not [k for k in keys if any(name in k for name in PRIVATE_ONLY_NAMES)]
    numbers = set(re.findall(r"-?\d+\.\d+", text))
    # Distinctive values of docs/spec.md 8.1's private metrics (MPE, suppression, MAE against true counts,
    # mean true counts, expansion, % risky records, the exact record count).
    for value in ("0.1819", "64.8", "61.5", "0.3125", "0.3428", "1.934", "3.538", "36.36", "80.0"):
        assert not any(n.startswith(value) for n in numbers), value
    assert "sensitive" not in text
    # The exact number of sensitive records (11) is private; only floor(11 / k) k = 10 is public.
    assert 11 not in json.loads(text)["parameters"].values()


@pytest.fixture(scope="module")
def variants(spark: SparkSession, example: Path) -> Path:
    """Evaluate the example again under other run ids, directly (no prepare/aggregate):

    * ``changed``: the sensitive counts all + 1, the reportable counts and records unchanged;
    * ``pruned``: apriori pruning was on, so the sensitive table lacks the rare combinations;
    * ``seeded``: the same synthetic records declared as aggregate_seeded output.
    """
    base = delta_io.read_run_table(spark, SENSITIVE_AGGREGATES, root=str(example), run_id="test")
    copy_run(spark, example, "test", "changed", sensitive=base.withColumn("count", F.col("count") + 1))
    copy_run(spark, example, "test", "pruned", sensitive=base.where(F.col("count") >= 2))
    copy_run(spark, example, "test", "seeded")
    settings = ("privacy.resolution=2", "privacy.reporting_length=3")
    configs = {
        "changed": job_config("unused.csv", example, *settings),
        "pruned": job_config("unused.csv", example, *settings, "aggregation.apriori_pruning=true"),
        "seeded": job_config("unused.csv", example, *settings, "synthesis.mode=aggregate_seeded"),
    }
    for run_id, cfg in configs.items():
        run_evaluate(spark, RunContext(cfg=cfg, run_id=run_id, input_fingerprint="test"))
    return example


@pytest.mark.spark
@pytest.mark.slow
def test_public_evaluation_ignores_exact_sensitive_counts(variants: Path) -> None:
    staging = variants / "staging"
    assert (staging / "changed/evaluation.json").read_bytes() == (
        staging / "test/evaluation.json"
    ).read_bytes()
    private = variants / "private"
    assert (private / "changed/stats_synthetic_data.tsv").read_bytes() != (
        private / "test/stats_synthetic_data.tsv"
    ).read_bytes()


@pytest.mark.spark
@pytest.mark.slow
def test_pruned_sensitive_table_is_recounted(variants: Path) -> None:
    names = (
        "stats_synthetic_data.tsv",
        "stats_aggregate_counts.tsv",
        "synthetic_leakage_by_length.tsv",
        "preservation_by_length.tsv",
        "preservation_by_count.tsv",
        "synthetic_rare_combos_by_length.tsv",
        "parameters.tsv",
        "sensitive_analysis_by_length.tsv",
    )
    for name in names:
        assert _lines(variants, name, "pruned") == _lines(variants, name, "test"), name


@pytest.mark.spark
@pytest.mark.slow
def test_aggregate_seeded_guarantee_covers_combinations_up_to_l(variants: Path) -> None:
    guarantee = json.loads((variants / "staging/seeded/metadata.json").read_text())["guarantee"]
    assert (guarantee["type"], guarantee["minimum_support"], guarantee["max_combination_length"]) == (
        "k-anonymous-combinations",
        2,
        3,
    )
    assert guarantee["statement"].startswith("every combination of at most 3 attributes")
    seeded = json.loads((variants / "staging/seeded/evaluation.json").read_text())
    assert _spec_8_1_fields(seeded["stats"]) == PUBLIC_STATS_8_1


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def _write_config(path: Path, csv: Path, out: Path) -> Path:
    path.write_text(
        "\n".join(
            [
                "input:",
                f"  path: {csv}",
                "privacy:",
                "  resolution: 2",
                "  reporting_length: 3",
                "output:",
                f"  root: {out}",
                "spark:",
                "  master: local[2]",
                "  conf:",
                '    spark.sql.shuffle.partitions: "2"',
                '    spark.default.parallelism: "2"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return path


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.mark.spark
@pytest.mark.slow
def test_planted_violation_fails_the_run_without_publishing(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    csv = write_text(tmp_path / "example.csv", SDS_EXAMPLE_CSV)
    out = tmp_path / "out"
    config = _write_config(tmp_path / "config.yaml", csv, out)
    args = ["--config", str(config), "--run-id", "planted"]
    assert cli.main(["aggregate", *args]) == 0
    # Row 1 of the sensitive file (A:a2, B:b2, C:c3, D:d2) is the only record with that full
    # attribute set: a synthetic copy of it describes one person.
    planted = [["A:a1", "B:b1", "C:c1", "D:d1"], ["A:a2", "B:b2", "C:c3", "D:d2"], ["B:b2"]]
    write_synthetic(spark, out, "planted", planted)
    mark_synthesized(spark, out, "planted", exports=True)
    release = out / "release" / "planted"
    before = _snapshot(release)
    capsys.readouterr()

    assert cli.main(["evaluate", *args]) == 3

    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "1 of 3 synthetic records" in output
    for value in ("a1", "a2", "b2", "c3", "d2", "C:c3"):
        assert value not in output
    assert _snapshot(release) == before
    assert not (release / "evaluation.json").exists() and not (release / "metadata.json").exists()
    assert not (out / "staging/planted/evaluation.json").exists()
    assert not (out / "staging/planted/metadata.json").exists()
    # The synthetic export stays private, waiting for a synthesis that passes.
    assert not (out / "staging/planted/synthetic_microdata.csv").exists()
    assert (out / "private/planted/pending/synthetic_microdata.csv").read_text() == PENDING_EXPORT


@pytest.mark.spark
def test_aggregate_seeded_check_finds_combinations_outside_the_official_counts(spark: SparkSession) -> None:
    layout = KeyLayout(6, 2)
    reportable = spark.createDataFrame(
        [([0], 4), ([1], 4), ([2], 2), ([0, 1], 2)], "combo array<int>, protected_count long"
    )
    synthetic = spark.createDataFrame(
        [(0, [0, 1]), (1, [0, 1, 2]), (2, [2]), (3, [])], "record_id long, attrs array<int>"
    )
    result = verify_reportable_combinations(
        synthetic, reportable, layout=layout, resolution=2, max_length=2, partitions=2
    )
    # Record 1 holds [0, 2] and [1, 2], which are not official combinations.
    assert (result.checked_records, result.violating_records, result.passed) == (3, 1, False)


@pytest.mark.spark
def test_bitmap_index_too_large_names_the_setting(spark: SparkSession) -> None:
    records = spark.createDataFrame([(10**9, [0, 1])], "record_id long, attrs array<int>")
    with pytest.raises(ConfigError, match=r"synthesis\.max_broadcast_mb = 1;"):
        bitmap_index(records, n_attributes=100, max_broadcast_mb=1)
