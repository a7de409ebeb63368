"""Aggregation: SDS's worked counts (docs/spec.md 8), the reference implementation's counts (tests.oracle),
partition independence."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from chispa import assert_df_equality
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession

from ctdc_spark.aggregate.stage import PreparedRun, protect, sensitive_counts
from ctdc_spark.combos.enumeration import count_combinations
from ctdc_spark.combos.keys import CombinationLookup, KeyLayout
from ctdc_spark.errors import StageFailedError
from ctdc_spark.io.delta import RunTables
from ctdc_spark.stage import ReleaseFacts
from tests import oracle
from tests.conftest import SDS_EXAMPLE_CSV, job_config, run_stages, write_text

record_tables = st.lists(
    st.lists(st.integers(min_value=0, max_value=11), max_size=7, unique=True), min_size=1, max_size=40
)


@settings(max_examples=150, deadline=None)
@given(records=record_tables, length=st.integers(min_value=1, max_value=5))
def test_numpy_counting_matches_the_reference(records: list[list[int]], length: int) -> None:
    offsets = np.zeros(len(records) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r in records])
    values = np.array([a for r in records for a in sorted(r)], dtype=np.int32)
    layout = KeyLayout(12, length)
    counted = count_combinations(offsets, values, np.arange(len(records)), layout=layout, max_length=length)
    got = {
        tuple(int(x) for x in row if x >= 0): int(n)
        for row, n in zip(layout.unpack(counted.words), counted.counts, strict=True)
    }
    assert got == oracle.count_combinations(records, length)


@settings(max_examples=60, deadline=None)
@given(
    combos=st.lists(
        st.lists(st.integers(min_value=0, max_value=2**20), min_size=1, max_size=6, unique=True), max_size=30
    ),
    length=st.integers(min_value=6, max_value=9),
)
def test_multiword_keys_round_trip_and_lookup(combos: list[list[int]], length: int) -> None:
    # 2^20 attribute ids need 21 bits, so length >= 6 does not fit one 63-bit word.
    layout = KeyLayout(2**20 + 1, length)
    assert layout.n_words >= 2
    padded = np.full((len(combos), length), -1, dtype=np.int64)
    for i, c in enumerate(combos):
        padded[i, : len(c)] = sorted(c)
    words = layout.pack(padded)
    assert (layout.unpack(words) == padded).all()
    unique = {tuple(r) for r in padded.tolist()}
    table = np.array(sorted(unique), dtype=np.int64).reshape(-1, length)
    lookup = CombinationLookup(layout, layout.pack(table), np.arange(len(table)) + 1)
    assert (lookup.counts(table) == np.arange(len(table)) + 1).all()


def _prepared(spark: SparkSession, records: list[list[int]], length: int, partitions: int) -> PreparedRun:
    frame = spark.createDataFrame(
        [(i, sorted(r)) for i, r in enumerate(records)], "record_id long, attrs array<int>"
    )
    n_attributes = max((a for r in records for a in r), default=0) + 1
    return PreparedRun(frame, frame, len(records), n_attributes, length, partitions, n_columns=n_attributes)


def _as_counter(df: DataFrame) -> dict[tuple[int, ...], int]:
    return {tuple(r["combo"]): r["count"] for r in df.collect()}


@pytest.mark.spark
@settings(max_examples=6, deadline=None)
@given(
    records=record_tables,
    length=st.sampled_from([0, 1, 2, 3, 4]),
    k=st.integers(min_value=1, max_value=4),
)
def test_spark_counts_match_the_reference_with_and_without_pruning(
    spark: SparkSession, records: list[list[int]], length: int, k: int
) -> None:
    effective = length or max(max((len(r) for r in records), default=1), 1)
    expected = oracle.count_combinations(records, effective)
    with sensitive_counts(
        _prepared(spark, records, effective, 3), resolution=k, apriori_pruning=False
    ) as full:
        assert _as_counter(full) == expected
    reportable = oracle.protect(expected, k)
    with sensitive_counts(
        _prepared(spark, records, effective, 3), resolution=k, apriori_pruning=True
    ) as pruned:
        assert {
            c: r["protected_count"]
            for c, r in ((tuple(r["combo"]), r) for r in protect(pruned, resolution=k).collect())
        } == reportable


@pytest.mark.spark
def test_same_aggregates_for_1_2_and_8_partitions(spark: SparkSession) -> None:
    rng = np.random.default_rng(7)
    records = [sorted(rng.choice(25, size=rng.integers(0, 9), replace=False).tolist()) for _ in range(400)]
    with contextlib.ExitStack() as stack:
        results = [
            stack.enter_context(
                sensitive_counts(_prepared(spark, records, 3, p), resolution=2, apriori_pruning=False)
            )
            for p in (1, 2, 8)
        ]
        for other in results[1:]:
            assert_df_equality(results[0], other, ignore_row_order=True, ignore_nullable=True)


def _tsv(root: Path, kind: str, name: str, run_id: str = "test") -> list[str]:
    folder = "private" if kind == "private" else "staging"
    return (root / folder / run_id / name).read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def example_root(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sds_example")
    csv = write_text(root / "example.csv", SDS_EXAMPLE_CSV)
    cfg = job_config(csv, root / "out", "privacy.resolution=2", "privacy.reporting_length=3")
    run_stages(spark, cfg, ["aggregate"])
    return root / "out"


@pytest.mark.spark
def test_sds_cli_readme_example_reportable_aggregates(example_root: Path) -> None:
    lines = _tsv(example_root, "release", "reportable_aggregates.tsv")
    assert lines[:2] == ["selections\tprotected_count", "record_count\t10"]
    counts = dict(line.split("\t") for line in lines[2:])
    assert len(counts) == 35
    assert lines[2:11] == [
        "A:a2\t6",
        "B:b2\t6",
        "C:c2\t6",
        "D:d2\t6",
        "A:a1\t4",
        "B:b1\t4",
        "C:c1\t4",
        "D:d1\t4",
        "F:1\t2",
    ]
    assert counts["B:b2;C:c2;F:1"] == "2" and counts["C:c1;D:d1"] == "4"
    length3 = [line.split("\t")[0] for line in lines[2:] if line.count(";") == 2]
    assert length3 == sorted(length3) and len(length3) == 11


@pytest.mark.spark
def test_sds_cli_readme_example_risk_analysis(example_root: Path) -> None:
    rare = _tsv(example_root, "private", "sensitive_rare_by_length.tsv")
    assert rare[1:] == ["1\t13\t4\t0.3077", "2\t39\t24\t0.6154", "3\t39\t28\t0.7179"]
    analysis = _tsv(example_root, "private", "sensitive_analysis_by_length.tsv")
    assert [row.split("\t")[:4] for row in analysis[1:]] == [
        ["1", "0", "0", "4"],
        ["2", "0", "0", "4"],
        ["3", "0", "0", "0"],
    ]
    import json

    summary = json.loads((example_root / "private/test/risk_summary.json").read_text())
    assert summary == {
        "limit": 3,
        "rare_identifiable": 0,
        "resolution": 2,
        "risky_identifiable": 8,
        "risky_identifiable_pct": 80.0,
        "total_sensitive_records": 10,
        "unique_identifiable": 8,
    }


@pytest.mark.spark
def test_release_facts_are_read_from_the_aggregate_manifest_row(
    spark: SparkSession, example_root: Path
) -> None:
    # The TSV's record_count line says 10 (above); later stages read the same number from the
    # manifest, so the export could be removed or reworded without changing them.
    (example_root / "staging/test/reportable_aggregates.tsv").rename(example_root / "moved.tsv")
    try:
        assert RunTables(str(example_root), "test", "unused").release_facts(spark) == ReleaseFacts(10)
    finally:
        (example_root / "moved.tsv").rename(example_root / "staging/test/reportable_aggregates.tsv")
    with pytest.raises(StageFailedError, match="rerun it with --stages aggregate"):
        RunTables(str(example_root), "never-aggregated", "unused").release_facts(spark)


@pytest.mark.spark
def test_reportable_csv_matches_tsv(example_root: Path) -> None:
    tsv = _tsv(example_root, "release", "reportable_aggregates.tsv")[2:]
    csv = _tsv(example_root, "release", "reportable_aggregates.csv")
    assert csv[0] == "selections,length,protected_count"
    assert [(r.split(",")[0], r.split(",")[2]) for r in csv[1:]] == [tuple(t.split("\t")) for t in tsv]


@pytest.mark.spark
@pytest.mark.slow
def test_test_block_counts(spark: SparkSession, shared_data: Path, tmp_path: Path) -> None:
    cfg = job_config(
        shared_data / "sds_test_resources/test_block.csv",
        tmp_path,
        "privacy.resolution=2",
        "privacy.reporting_length=0",
    )
    run_stages(spark, cfg, ["aggregate"])
    sensitive = _tsv(tmp_path, "private", "sensitive_aggregates.tsv")
    by_length = Counter(line.split("\t")[0].count(";") + 1 for line in sensitive[2:])
    assert dict(by_length) == {1: 8, 2: 12, 3: 6, 4: 1}
    assert _tsv(tmp_path, "release", "reportable_aggregates.tsv") == [
        "selections\tprotected_count",
        "record_count\t2",
        "A:a1\t2",
        "B:b2\t2",
    ]


@pytest.mark.spark
@pytest.mark.slow
def test_multi_value_column_joiner_counts(spark: SparkSession, shared_data: Path, tmp_path: Path) -> None:
    cfg = job_config(
        shared_data / "sds_test_resources/test_multi_value_column_joiner.csv",
        tmp_path,
        "privacy.resolution=2",
        "privacy.reporting_length=3",
        'input.multi_value_columns={B: ";", C: ";", D: "|"}',
    )
    run_stages(spark, cfg, ["aggregate"])
    rare = _tsv(tmp_path, "private", "sensitive_rare_by_length.tsv")
    assert [r.split("\t")[:3] for r in rare[1:]] == [
        ["1", "27", "15"],
        ["2", "136", "108"],
        ["3", "296", "278"],
    ]
    reportable = _tsv(tmp_path, "release", "reportable_aggregates.tsv")
    assert reportable[1] == "record_count\t10" and len(reportable) - 2 == 58
    analysis = _tsv(tmp_path, "private", "sensitive_analysis_by_length.tsv")
    assert analysis[1].split("\t")[3] == "10"  # all protected records unique at length 1 (the ID column)


@pytest.mark.spark
@pytest.mark.slow
def test_rerun_gives_byte_identical_exports(spark: SparkSession, tmp_path: Path) -> None:
    csv = write_text(tmp_path / "example.csv", SDS_EXAMPLE_CSV)
    outputs = []
    for run in ("a", "b"):
        cfg = job_config(csv, tmp_path / run, "privacy.resolution=2")
        run_stages(spark, cfg, ["aggregate"], run_id="same")
        outputs.append(
            [
                (tmp_path / run / sub).read_bytes()
                for sub in (
                    "staging/same/reportable_aggregates.tsv",
                    "staging/same/reportable_aggregates.csv",
                    "private/same/sensitive_aggregates.tsv",
                )
            ]
        )
    assert outputs[0] == outputs[1]


@pytest.mark.spark
def test_multiword_keys_on_spark(spark: SparkSession) -> None:
    # A dictionary of 2^21 attribute ids needs 22 bits per id: with L = 4 the keys take two words,
    # which exercises the multi-word shuffle key and its decoding back to arrays.
    records = [[1, 5, 2**21 - 1, 700_000], [1, 5, 700_000], [5, 2**21 - 1], [1, 5, 2**21 - 1, 700_000]]
    prepared = _prepared(spark, records, 4, 2)
    prepared = PreparedRun(
        prepared.records, prepared.records, len(records), 2**21, 4, 2, n_columns=prepared.n_columns
    )
    assert prepared.layout.n_words == 2
    with sensitive_counts(prepared, resolution=1, apriori_pruning=False) as counted:
        assert _as_counter(counted) == oracle.count_combinations(records, 4)
