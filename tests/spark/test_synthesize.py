"""Synthesis on Spark: k-safety checked by the reference (tests.oracle), exact 1-counts, the
aggregate-seeded boundary, the distributed suppression, determinism across partitionings, and the
released layout."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession

from ctdc_spark._random import stage_key, uniforms
from ctdc_spark.errors import ConfigError
from ctdc_spark.io import delta as delta_io
from ctdc_spark.schemas import ATTRIBUTES, RECORDS, SYNTHETIC_RECORDS
from ctdc_spark.stage import RunContext
from ctdc_spark.synthesize import run_synthesize
from ctdc_spark.synthesize._distributed import (
    build_row_index,
    sample_consolidation,
    sample_row_seeded,
    split_quota,
    suppress,
)
from tests import oracle
from tests.conftest import SDS_EXAMPLE_CSV, job_config, run_stages, write_text

pytestmark = pytest.mark.spark

MODES = ["row_seeded", "unseeded", "value_seeded", "aggregate_seeded", "fitted"]


def _sets(spark: SparkSession, root: Path, spec: object, run_id: str = "test") -> list[frozenset[int]]:
    rows = delta_io.read_run_table(spark, spec, root=str(root), run_id=run_id).select("attrs").collect()  # type: ignore[arg-type]
    return [frozenset(r["attrs"]) for r in rows]


def _reported_single_counts(sensitive: list[frozenset[int]], k: int) -> dict[tuple[int, ...], int]:
    return oracle.protect(oracle.count_combinations(sensitive, 1), k)


CTDC_BASE = ("input.unknown_values=['', '-99']", "privacy.resolution=5", "synthesis.seed=5")


@pytest.fixture(scope="module")
def example(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SDS example, prepared and aggregated once (k = 2, L = 3); tests synthesize from it."""
    root = tmp_path_factory.mktemp("synth")
    csv = write_text(root / "example.csv", SDS_EXAMPLE_CSV)
    run_stages(spark, job_config(csv, root / "out", "privacy.resolution=2"), ["aggregate"])
    return csv


@pytest.fixture(scope="module")
def ctdc_small(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 generated CTDC-shaped records (no real records), prepared and aggregated once."""
    from tools.ctdc_model import generate_ctdc_like

    root = tmp_path_factory.mktemp("ctdc_small")
    path = root / "ctdc.csv"
    generate_ctdc_like(2000, seed=3).to_csv(path, index=False)
    run_stages(spark, job_config(path, root / "out", *CTDC_BASE), ["aggregate"])
    return path


def _synthesize(spark: SparkSession, csv: Path, *overrides: str) -> Path:
    """Run only the synthesize stage on the already prepared run of ``csv``; return the output root."""
    root = csv.parent / "out"
    cfg = job_config(csv, root, *overrides)
    run_synthesize(spark, RunContext(cfg=cfg, run_id="test", input_fingerprint="fixture"))
    return root


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_keeps_its_guarantee_on_the_sds_example(
    spark: SparkSession, example: Path, mode: str
) -> None:
    k, length = 2, 3
    root = _synthesize(
        spark, example, f"privacy.resolution={k}", f"synthesis.mode={mode}", "synthesis.seed=11"
    )
    sensitive = _sets(spark, root, RECORDS)
    synthetic = _sets(spark, root, SYNTHETIC_RECORDS)
    assert synthetic
    if mode == "aggregate_seeded":
        reportable = oracle.protect(oracle.count_combinations(sensitive, length), k)
        for record in synthetic:  # nothing <= L outside the reportable aggregates
            assert all(c in reportable for c in oracle.sub_combinations(record, length))
    else:
        for record in synthetic:
            if record:
                assert oracle.support(sensitive, record) >= k  # the whole record is k-safe, so no leak
    if mode in ("row_seeded", "value_seeded"):
        assert oracle.count_combinations(synthetic, 1) == _reported_single_counts(sensitive, k)
    if mode == "unseeded":
        assert len(synthetic) == len(sensitive)


@pytest.mark.parametrize("mode", ["row_seeded", "unseeded", "value_seeded", "fitted"])
@pytest.mark.slow
def test_k_safety_on_ctdc_shaped_data(spark: SparkSession, ctdc_small: Path, mode: str) -> None:
    k = 5
    root = _synthesize(
        spark,
        ctdc_small,
        *CTDC_BASE,
        f"synthesis.mode={mode}",
        "synthesis.consolidation_shard_size=500",  # several shards even on small data
    )
    sensitive = _sets(spark, root, RECORDS)
    n_attributes = delta_io.read_run_table(spark, ATTRIBUTES, root=str(root), run_id="test").count()
    reference = oracle.PartialSupports.of_records(sensitive, n_attributes)
    synthetic = _sets(spark, root, SYNTHETIC_RECORDS)
    for record in synthetic:
        if record:
            assert len(reference.rows(tuple(sorted(record)))) >= k
    if mode in ("row_seeded", "value_seeded"):
        assert oracle.count_combinations(synthetic, 1) == _reported_single_counts(sensitive, k)


@pytest.mark.parametrize(
    "overrides",
    [("synthesis.mode=aggregate_seeded",), ("synthesis.mode=fitted", "privacy.dp={epsilon: 4.0}")],
    ids=["aggregate_seeded", "fitted_dp"],
)
def test_modes_from_aggregates_never_read_sensitive_tables(
    spark: SparkSession, example: Path, tmp_path: Path, overrides: tuple[str, ...]
) -> None:
    cfg = job_config(example, tmp_path, "privacy.resolution=2", "synthesis.seed=3", *overrides)
    shutil.copytree(example.parent / "out" / "tables", tmp_path / "tables")
    for table in ("records", "attributes", "sensitive_aggregates", "risk_by_length"):
        shutil.rmtree(tmp_path / "tables" / table)
    run_synthesize(spark, RunContext(cfg=cfg, run_id="test", input_fingerprint="unused"))
    assert delta_io.read_run_table(spark, SYNTHETIC_RECORDS, root=str(tmp_path), run_id="test").count() > 0


def _phase_outputs(
    spark: SparkSession, root: Path, partitions: int, seed: int
) -> list[tuple[int, tuple[int, ...]]]:
    records = delta_io.read_run_table(spark, RECORDS, root=str(root), run_id="test")
    attributes = (
        delta_io.read_run_table(spark, ATTRIBUTES, root=str(root), run_id="test").orderBy("attr_id").collect()
    )
    attr_column = np.array([r["column_index"] for r in attributes], dtype=np.int32)
    single = np.array([r["count"] for r in attributes], dtype=np.int64)
    index = build_row_index(
        records,
        n_records=records.count(),
        n_attributes=len(attributes),
        nnz=int(single.sum()),
        attr_column=attr_column,
        max_broadcast_mb=64,
    )
    seeded = sample_row_seeded(records, index, k=5, cache_max_size=100, seed=seed, partitions=partitions)
    consolidated = sample_consolidation(
        spark,
        index,
        np.where(single >= 5, single // 5 * 5, 0) // 3,
        k=5,
        cache_max_size=100,
        seed=seed,
        shard_size=200,
        partitions=partitions,
    )
    rows = seeded.unionByName(consolidated).collect()
    return sorted((r["pre_id"], tuple(r["attrs"])) for r in rows)


@pytest.mark.slow
def test_same_seed_same_output_for_1_and_7_partitions(
    spark: SparkSession, ctdc_small: Path, tmp_path: Path
) -> None:
    cfg = job_config(ctdc_small, tmp_path, "privacy.resolution=5", "input.unknown_values=['', '-99']")
    run_stages(spark, cfg, ["prepare"])
    one = _phase_outputs(spark, tmp_path, 1, seed=42)
    seven = _phase_outputs(spark, tmp_path, 7, seed=42)
    other = _phase_outputs(spark, tmp_path, 7, seed=43)
    assert one == seven
    assert one != other


def test_rerun_with_same_seed_is_byte_identical(spark: SparkSession, example: Path) -> None:
    files = []
    for _ in range(2):
        root = _synthesize(spark, example, "privacy.resolution=2", "synthesis.seed=9")
        files.append((root / "private/test/pending/synthetic_microdata.csv").read_bytes())
    assert files[0] == files[1]
    other = _synthesize(spark, example, "privacy.resolution=2", "synthesis.seed=10")
    assert (other / "private/test/pending/synthetic_microdata.csv").read_bytes() != files[0]


@pytest.mark.slow
def test_released_layout_and_order(spark: SparkSession, shared_data: Path, tmp_path: Path) -> None:
    cfg = job_config(
        shared_data / "sds_test_resources/test_multi_value_column_joiner.csv",
        tmp_path,
        "privacy.resolution=2",
        'input.multi_value_columns={B: ";", C: ";", D: "|"}',
        "input.use_columns=[A, B, C, D]",
        "synthesis.seed=1",
        "synthesis.long_format=true",
    )
    run_stages(spark, cfg, ["synthesize"])
    text = (tmp_path / "private/test/pending/synthetic_microdata.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["A", "B", "C", "D"]  # original columns, multi-value columns re-joined
    body = rows[1:]
    filled = [sum(1 for c in r if c) for r in body]
    assert filled == sorted(filled, reverse=True)  # longest records first (docs/spec.md 4.0)
    for size in set(filled):
        group = [r for r, f in zip(body, filled, strict=True) if f == size]
        assert group == sorted(group)  # then lexicographic
    for row in body:
        pieces = row[3].split("|") if row[3] else []
        assert pieces == sorted(pieces)  # re-joined in expanded-column order
    long_rows = (tmp_path / "private/test/pending/synthetic_microdata_long.csv").read_text().splitlines()
    assert long_rows[0] == "Id,Attribute,Value"
    assert len(long_rows) - 1 == sum(filled)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_distributed_suppression_is_the_reference_in_the_library_order(spark: SparkSession, k: int) -> None:
    rng = np.random.default_rng(k)
    records = [sorted(rng.choice(8, size=rng.integers(1, 5), replace=False).tolist()) for _ in range(60)]
    ids = np.arange(len(records), dtype=np.int64) * 7 + 3
    order = uniforms(stage_key(11, "suppress"), ids)
    held = np.bincount([a for r in records for a in r], minlength=8)
    targets = oracle.rounded_down(held, k)
    frame = spark.createDataFrame(
        [(int(i), r, float(u)) for i, r, u in zip(ids, records, order, strict=True)],
        "pre_id long, attrs array<int>, suppress_order double",
    )
    excess = spark.createDataFrame(
        [(a, int(e)) for a, e in enumerate(held - targets) if e > 0], "attr_id int, excess long"
    )
    got = sorted((r["pre_id"], list(r["attrs"])) for r in suppress(frame, excess).collect())
    # The records are visited by ascending suppression order, ties by id.
    expected = oracle.suppress(records, targets, np.lexsort((ids, order)).tolist())
    assert got == [(int(ids[i]), r) for i, r in expected]


def test_split_quota_adds_up_exactly() -> None:
    available = np.array([0, 1, 7, 100, 3], dtype=np.int64)
    for shards in (1, 2, 3, 8):
        quotas = split_quota(available, shards)
        assert quotas.shape == (shards, 5) and (quotas.sum(axis=0) == available).all()
        assert (quotas.max(axis=0) - quotas.min(axis=0) <= 1).all()


def test_row_index_over_budget_fails_early_naming_the_setting(spark: SparkSession, ctdc_small: Path) -> None:
    root = ctdc_small.parent / "out"
    records = delta_io.read_run_table(spark, RECORDS, root=str(root), run_id="test")
    with pytest.raises(ConfigError, match=r"about \d+ MB, above synthesis\.max_broadcast_mb=1;"):
        build_row_index(
            records,
            n_records=10_000_000,  # as if the table were far larger: the estimate alone decides
            n_attributes=500,
            nnz=120_000_000,
            attr_column=np.arange(500, dtype=np.int32),
            max_broadcast_mb=1,
        )


def test_null_seed_is_a_private_secret_reused_on_rerun(spark: SparkSession, example: Path) -> None:
    root = example.parent / "out"
    secrets_file = root / "private/test/run_secrets.json"
    secrets_file.unlink(missing_ok=True)
    first = _synthesize(spark, example, "privacy.resolution=2")
    assert secrets_file.exists() and secrets_file.stat().st_mode & 0o777 == 0o600
    exported = (first / "private/test/pending/synthetic_microdata.csv").read_bytes()
    # A rerun of the same run (e.g. after a failure) draws the same sample from the stored secret...
    _synthesize(spark, example, "privacy.resolution=2")
    assert (first / "private/test/pending/synthetic_microdata.csv").read_bytes() == exported
    # ...and the secret never reaches a public file.
    seed = str(__import__("json").loads(secrets_file.read_text())["synthesis_seed"])
    for path in (root / "staging").rglob("*") if (root / "staging").exists() else []:
        assert not path.is_file() or seed not in path.read_text(errors="ignore")
