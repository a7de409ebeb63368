"""DP marginals on Spark (docs/spec.md 3.4): the stage's wiring, its task functions and its guarantees.

Pure tests (no Spark) cover Step A through the stage, the per-task numpy (valid tuples, bounding,
noisy release), an empirical privacy-loss check of a level's release on neighbouring counts, the
budget state, metadata and record-count line. Spark tests are few and small: candidate generation
(docs/spec.md 8.2), post-processing, the test hook (1 vs 7 partitions), runs without it, and one
end-to-end pipeline run with docs/spec.md 8.3 parameters.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark.aggregate import _dp as dp_stage
from ctdc_spark.aggregate._dp import (
    BudgetTotals,
    DpLevel,
    DpMarginals,
    add_missing_parents,
    dataset_id_of,
    level_one_candidates,
    manifest_privacy,
    metadata_privacy,
    next_level_candidates,
    normalise_counts,
    post_process,
    release_record_count,
    run_dp_marginals,
)
from ctdc_spark.aggregate._dp_tasks import (
    bounded_tuple_counts,
    keep_lowest,
    noisy_release,
    selection_hashes,
    tuple_count_histogram,
)
from ctdc_spark.aggregate.stage import PreparedRun
from ctdc_spark.combos.keys import CombinationLookup, KeyLayout
from ctdc_spark.config import DpConfig, load_config
from ctdc_spark.dp import (
    PRODUCTION_NOISE,
    NoiseSource,
    PercentileMechanism,
    compute_noise_parameters,
    discrete_gaussian_tail,
    released_threshold,
)
from ctdc_spark.dp import _params as dp_params
from ctdc_spark.errors import ConfigError
from ctdc_spark.io import delta as delta_io
from ctdc_spark.io.files import update_metadata
from ctdc_spark.schemas import DP_NOISY_CANDIDATES, PRIVACY_LEDGER, REPORTABLE_AGGREGATES, RUNS
from ctdc_spark.stage import RunContext
from tests import oracle
from tests.conftest import SDS_EXAMPLE_CSV, SeededTestNoiseSource, job_config, run_stages, write_text

SPEC_PROPORTIONS = (1.0, 0.5, 0.33, 0.25)
SPEC_SIGMAS = (7.3524, 3.6762, 2.4263, 1.8381)


# --- Step A through the stage ------------------------------------------------------------------


class _NoDraws(SeededTestNoiseSource):
    def __init__(self) -> None:
        super().__init__(0)

    def _draw_laplace_integer(self, value: int, scale: float) -> int:
        raise AssertionError("a stored record count must not be drawn again")


def test_step_a_reuses_the_stored_record_count_and_matches_spec_8_3(tmp_path: Path) -> None:
    state = dp_stage._DpState(tmp_path / "dp_state.json")
    state.once("protected_number_of_records", lambda: 10_000)
    dp = DpConfig(epsilon=4.0, accuracy_mode="custom", sigma_proportions=SPEC_PROPORTIONS)
    params = dp_stage._step_a(dp, 4, 10_000, state, _NoDraws())
    assert params.protected_number_of_records == 10_000
    assert params.delta == pytest.approx(1.0857e-5, rel=1e-4)
    assert params.rho == pytest.approx(0.28199, rel=1e-4)
    assert params.percentile_epsilon == pytest.approx(0.037549, rel=1e-4)
    assert params.sigmas == pytest.approx(SPEC_SIGMAS, rel=1e-4)


def test_state_is_stored_before_use_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "private" / "dp_state.json"
    state = dp_stage._DpState(path)
    assert state.once("allowed_sensitivity_1", lambda: 7) == 7
    assert json.loads(path.read_text()) == {"allowed_sensitivity_1": 7}
    assert path.stat().st_mode & 0o777 == 0o600
    again = dp_stage._DpState(path)
    assert again.once("allowed_sensitivity_1", lambda: 99) == 7


def test_config_reads_and_validates_the_new_keys() -> None:
    dp = DpConfig()
    assert dp.percentile_mechanism == "rank"
    assert dataset_id_of(dp, "data/in.csv") == "data/in.csv"
    with pytest.raises(ConfigError, match="percentile_mechanism"):
        load_config(None, overrides=["input.path=x", "privacy.dp={percentile_mechanism: median}"])
    assert dataset_id_of(DpConfig(dataset_id="ctdc-global"), "data/in.csv") == "ctdc-global"


# --- task numpy: valid tuples, bounding, noise ------------------------------------------------


def _csr(records: list[list[int]]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    offsets = np.zeros(len(records) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r in records])
    return offsets, np.array([a for r in records for a in sorted(r)], dtype=np.int32)


def _lookup(layout: KeyLayout, combos: set[tuple[int, ...]]) -> CombinationLookup:
    padded = np.full((len(combos), layout.max_length), -1, dtype=np.int64)
    for i, c in enumerate(sorted(combos)):
        padded[i, : len(c)] = c
    return CombinationLookup(layout, layout.pack(padded), np.ones(len(combos), dtype=np.int64))


_records = st.lists(st.lists(st.integers(0, 9), max_size=6, unique=True), min_size=1, max_size=25)


@settings(max_examples=100, deadline=None)
@given(records=_records, length=st.integers(1, 3), data=st.data())
def test_valid_tuple_histogram_and_unbounded_counts_match_brute_force(
    records: list[list[int]], length: int, data: st.DataObject
) -> None:
    layout = KeyLayout(10, 3)
    keep_set = None
    if length > 1:
        shorter = sorted(c for c in oracle.count_combinations(records, length - 1) if len(c) == length - 1)
        keep_set = set(data.draw(st.lists(st.sampled_from(shorter), unique=True))) if shorter else set()
    keep = None if keep_set is None else _lookup(layout, keep_set)
    offsets, values = _csr(records)
    sizes = [len(oracle.dp_valid_tuples(r, length, keep_set)) for r in records]
    assert (
        tuple_count_histogram(offsets, values, length=length, keep=keep).tolist()
        == np.bincount(sizes).tolist()
    )
    counts = bounded_tuple_counts(
        offsets, values, np.arange(len(records)), layout=layout, length=length, keep=keep, allowed=99, key=1
    )
    got = {
        tuple(int(x) for x in row if x >= 0): int(n)
        for row, n in zip(layout.unpack(counts.words), counts.counts, strict=True)
    }
    assert got == dict(Counter(c for r in records for c in oracle.dp_valid_tuples(r, length, keep_set)))


@settings(max_examples=100, deadline=None)
@given(record=st.lists(st.integers(0, 9), min_size=1, max_size=7, unique=True), allowed=st.integers(0, 8))
def test_each_record_adds_at_most_allowed_valid_tuples(record: list[int], allowed: int) -> None:
    layout = KeyLayout(10, 2)
    offsets, values = _csr([record])
    counts = bounded_tuple_counts(
        offsets, values, np.array([17]), layout=layout, length=2, keep=None, allowed=allowed, key=5
    )
    assert set(counts.counts.tolist()) <= {1}
    assert len(counts) == min(allowed, math.comb(len(record), 2))


def test_bounding_picks_a_uniform_subset_and_is_stable_per_key() -> None:
    # One record with 6 valid pairs and Delta = 2: every pair is kept with probability 1/3, every
    # unordered pair of pairs with 1/15, and the same key always keeps the same pairs.
    layout = KeyLayout(10, 2)
    offsets, values = _csr([[0, 1, 2, 3]])
    keys = range(6000)
    picks = []
    for key in keys:
        counts = bounded_tuple_counts(
            offsets, values, np.array([3]), layout=layout, length=2, keep=None, allowed=2, key=key
        )
        picks.append(tuple(sorted(map(tuple, layout.unpack(counts.words)[:, :2].tolist()))))
    singles = Counter(p for pair in picks for p in pair)
    assert len(singles) == 6
    for n in singles.values():
        assert abs(n / len(keys) - 1 / 3) < 5 * math.sqrt((1 / 3) * (2 / 3) / len(keys))
    assert len(Counter(picks)) == 15
    again = bounded_tuple_counts(
        offsets, values, np.array([3]), layout=layout, length=2, keep=None, allowed=2, key=7
    )
    assert tuple(sorted(map(tuple, layout.unpack(again.words)[:, :2].tolist()))) == picks[7]


def test_selection_depends_on_the_record_id() -> None:
    words = np.arange(40, dtype=np.int64).reshape(-1, 1)
    a = selection_hashes(9, np.array([1, 2]), words, 20)
    assert a.shape == (2, 20) and not np.array_equal(a[0], a[1])
    valid = np.ones((2, 20), dtype=bool)
    valid[:, 5:] = False
    chosen = keep_lowest(a, valid, 3)
    assert chosen.sum(axis=1).tolist() == [3, 3] and not (chosen & ~valid).any()
    assert not keep_lowest(a, valid, 0).any()


class _GivenNoise(SeededTestNoiseSource):
    """Adds the noise it was built with, to check what the release does with noisy counts."""

    def __init__(self, noise: list[int]) -> None:
        super().__init__(0)
        self.noise = np.array(noise, dtype=np.int64)

    def _draw_gaussian_integers(
        self, counts: npt.NDArray[np.int64], scale: float, *, stream: int, keys: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        return counts + self.noise


def _release(
    counts: list[int], source: NoiseSource, threshold: float, scale: float = 1.0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    words = np.zeros((len(counts), 1), dtype=np.int64)
    return noisy_release(
        np.array(counts, dtype=np.int64),
        source=source,
        scale=scale,
        threshold=threshold,
        length=1,
        words=words,
    )


def test_noisy_release_threshold_is_strict_and_positive() -> None:
    noisy, above = _release([0, 5, 5, 0], _GivenNoise([-1, 0, 1, 0]), 5.0)
    assert noisy.dtype == np.int64 and noisy.tolist() == [-1, 5, 6, 0]
    assert above.tolist() == [False, False, True, False]
    _, negative_threshold = _release([0, 0, 0], _GivenNoise([-1, 1, 0]), -3.0)
    assert negative_threshold.tolist() == [False, True, False]


def test_noisy_release_draws_discrete_noise_from_the_source() -> None:
    noisy, _ = _release([3] * 2000, PRODUCTION_NOISE, 0.0, scale=4.0)
    assert noisy.dtype == np.int64 and len(set(noisy.tolist())) > 10  # noise applied, integers


def _level_one_release(count: int, draws: int, scale: float, threshold: float) -> npt.NDArray[np.int64]:
    """One level-1 candidate's published value per draw (OpenDP's noise); -1 when suppressed."""
    noisy, above = _release([count] * draws, PRODUCTION_NOISE, threshold, scale=scale)
    return np.where(above, noisy, -1)


def _empirical_delta(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], epsilon: float) -> float:
    """max over both directions of sum_bins max(0, P_a - e^eps P_b) (the hockey-stick divergence)."""
    values = np.union1d(a, b)
    pa = np.array([np.mean(a == v) for v in values])
    pb = np.array([np.mean(b == v) for v in values])
    return float(
        max(
            np.maximum(0, pa - math.exp(epsilon) * pb).sum(), np.maximum(0, pb - math.exp(epsilon) * pa).sum()
        )
    )


def test_empirical_privacy_loss_of_a_level_release_on_neighbouring_counts() -> None:
    # A single level with L = 1 and a large delta so the hockey-stick divergence is measurable:
    # the Gaussian part is rho-zCDP, i.e. (eps, delta / 2)-DP, and neighbours differ by one record
    # (Delta_1 = 1). Counts straddle the threshold, so suppression is part of the output.
    params = compute_noise_parameters(
        epsilon=1.0,
        delta=0.05,
        delta_factor=None,
        n_true=10,  # delta >= 1/n would warn; only the parameters matter here
        protected_n=None,
        length=1,
        sigma_proportions=(1.0,),
        percentile_epsilon_proportion=0.01,
        number_of_records_epsilon_proportion=None,
    )
    sigma = params.sigma_for(1)
    threshold = released_threshold(1, sigma, 1, params.delta, dp_params.thresholds_for(DpConfig(), 1))
    draws = 50_000
    d = _level_one_release(6, draws, sigma, threshold)
    neighbour = _level_one_release(7, draws, sigma, threshold)
    assert _empirical_delta(d, neighbour, params.epsilon) <= params.delta / 2
    # Negative control: a quarter of the noise is far from (eps, delta/2)-DP.
    weak = _empirical_delta(
        _level_one_release(6, draws, sigma / 4, threshold),
        _level_one_release(7, draws, sigma / 4, threshold),
        params.epsilon,
    )
    assert weak > 5 * params.delta / 2


@pytest.mark.parametrize("allowed", [1, 4])
def test_a_new_attribute_is_released_with_probability_at_most_half_delta(allowed: int) -> None:
    # Level 1's candidates come from the data: one record with a new attribute adds a candidate of
    # count 1, which the threshold must publish with probability <= delta / 2 (the proof's other
    # half of delta), across all Delta_1 attributes of that record. Exactly for the discrete
    # Gaussian's law, and empirically for OpenDP's sampler.
    delta, sigma, draws = 0.02, 3.0, 100_000 // allowed
    scale = sigma * math.sqrt(allowed)
    threshold = released_threshold(1, sigma, allowed, delta, dp_params.thresholds_for(DpConfig(), 1))
    per_attribute = discrete_gaussian_tail(scale)[math.floor(threshold)]  # P(1 + Z > threshold)
    exact = 1 - (1 - per_attribute) ** allowed
    assert exact <= delta / 2
    assert exact >= delta / 2 / 3  # the threshold is the smallest integer that keeps the bound
    released = _level_one_release(1, draws * allowed, scale, threshold) >= 0
    any_released = released.reshape(draws, allowed).any(axis=1).mean()
    assert abs(any_released - exact) <= 5 * math.sqrt(exact / draws)


# --- what the release says ---------------------------------------------------------------------


def _fake_release(*, protected: int | None, mechanism: str = "rank") -> DpMarginals:
    params = compute_noise_parameters(
        epsilon=4.0,
        delta=None,
        delta_factor=None,
        n_true=10_000,
        protected_n=protected,
        length=2,
        sigma_proportions=(1.0, 0.5),
        percentile_epsilon_proportion=0.01,
        number_of_records_epsilon_proportion=0.005 if protected is not None else None,
    )
    levels = (DpLevel(1, 30, 4, 14.7, 69.98, 25), DpLevel(2, 300, 10, 11.6, 0.0, 120))
    return DpMarginals(
        params,
        cast("PercentileMechanism", mechanism),
        levels,
        BudgetTotals(2, 8.0, 2 * params.delta),
        cast("DataFrame", None),
    )


def test_manifest_records_epsilon_delta_split_levels_and_ledger() -> None:
    release = _fake_release(protected=10_000)
    record = manifest_privacy(release)
    assert record["epsilon"] == 4.0 and record["delta"] == release.parameters.delta
    assert record["epsilon_number_of_records"] + record["epsilon_marginals"] == pytest.approx(4.0)
    rho_parts = [v for k, v in record.items() if k.startswith("rho_")]
    assert math.fsum(rho_parts) == pytest.approx(record["rho"], rel=1e-12)
    assert record["length_1_candidates"] == 30 and record["length_2_allowed_sensitivity"] == 10
    assert record["cumulative_epsilon"] == 8.0 and record["cumulative_releases"] == 2
    assert all(isinstance(v, float) for v in record.values())


def test_metadata_states_the_guarantee_and_hides_private_counts() -> None:
    section = metadata_privacy(_fake_release(protected=10_000))
    assert section["guarantee"] == "(ε, δ)-differential privacy"
    assert "(ε = 4, δ = 1.09e-05)-differential privacy" in section["statement"]
    assert section["budget"]["number_of_records"]["epsilon"] == pytest.approx(0.02)
    assert section["protected_number_of_records"] == 10_000
    assert "candidates" not in json.dumps(section)  # |V_1| is not DP: it stays in the manifest
    exact = metadata_privacy(_fake_release(protected=None))
    assert exact["record_count_is_exact"] and "published exactly" in exact["statement"]
    nominal = metadata_privacy(_fake_release(protected=10_000, mechanism="sds_compatible"))
    assert "not proven" in nominal["guarantee"]
    assert nominal["accounting"]["proven"] is False and "Nominal" in nominal["accounting"]["statement"]


def test_metadata_states_the_accounting_as_opendp_does() -> None:
    accounting = metadata_privacy(_fake_release(protected=10_000))["accounting"]
    assert accounting["library"] == "OpenDP 0.16.0" and accounting["proven"] is True
    mechanisms = [(m["component"], m["mechanism"], m["measure"]) for m in accounting["measurements"]]
    assert mechanisms == [
        ("number_of_records", "discrete Laplace", "pure DP"),
        ("percentile", "report noisy max (Gumbel noise): the exponential mechanism", "zCDP"),
        ("counts", "discrete Gaussian", "zCDP"),
        ("percentile", "report noisy max (Gumbel noise): the exponential mechanism", "zCDP"),
        ("counts", "discrete Gaussian", "zCDP"),
    ]
    assert math.fsum(m["rho"] for m in accounting["measurements"] if "rho" in m) == pytest.approx(
        accounting["rho"], rel=1e-12
    )
    assert accounting["epsilon"] == pytest.approx(
        accounting["marginals"]["epsilon"] + accounting["number_of_records_epsilon"], rel=1e-12
    )
    assert accounting["epsilon"] < 4.0 and "make_zCDP_to_approxDP" in accounting["statement"]
    json.dumps(accounting)  # plain JSON


def test_record_count_line_follows_spec_3_4_c4() -> None:
    assert release_record_count(_fake_release(protected=9_990), n_records=10_000) == (
        "protected_count",
        9_990,
    )
    assert release_record_count(_fake_release(protected=None), n_records=10_000) == ("count", 10_000)


def test_update_metadata_merges_sections(tmp_path: Path) -> None:
    update_metadata(tmp_path, "run", {"id": "r1"})
    path = update_metadata(tmp_path, "privacy", {"epsilon": 4.0})
    update_metadata(tmp_path, "privacy", {"epsilon": 2.0})
    assert json.loads(path.read_text()) == {"privacy": {"epsilon": 2.0}, "run": {"id": "r1"}}
    assert [p.name for p in tmp_path.iterdir()] == ["metadata.json"]  # no temporary files left


# --- Spark: candidates and post-processing -----------------------------------------------------

# test_noise_aggregator.csv (docs/spec.md 8.2): A:a1 A:a2 B:b1 B:b2 C:c1 D:d1 D:d2 in canonical order.
NOISE_AGGREGATOR_COLUMNS = (0, 0, 1, 1, 2, 3, 3)


def _attributes(spark: SparkSession, columns: tuple[int, ...]) -> DataFrame:
    return spark.createDataFrame(list(enumerate(columns)), "attr_id int, column_index int")


def _combos(df: DataFrame) -> set[tuple[int, ...]]:
    return {tuple(r["combo"]) for r in df.collect()}


def _frame(spark: SparkSession, combos: set[tuple[int, ...]]) -> DataFrame:
    return spark.createDataFrame([(list(c),) for c in sorted(combos)], "combo array<int>")


@pytest.mark.spark
def test_candidate_counts_of_the_noise_aggregator_resource(spark: SparkSession) -> None:
    attributes = _attributes(spark, NOISE_AGGREGATOR_COLUMNS)
    v1 = _combos(level_one_candidates(attributes))
    assert len(v1) == 7
    v2 = _combos(next_level_candidates(_frame(spark, v1), attributes, length=2))
    assert len(v2) == 18
    assert v2 == oracle.dp_candidates(v1, NOISE_AGGREGATOR_COLUMNS, set())
    v3 = _combos(next_level_candidates(_frame(spark, v2), attributes, length=3))
    assert len(v3) == 20
    a1b1, a2d1 = (0, 2), (1, 5)
    s2 = v2 - {a1b1, a2d1}
    v3_forced = _combos(next_level_candidates(_frame(spark, s2), attributes, length=3))
    assert len(v3_forced) == 14
    assert v3_forced == oracle.dp_candidates(s2, NOISE_AGGREGATOR_COLUMNS, s2)
    # Level 4 from a random half of the forced level 3, against the literal definition.
    rng = np.random.default_rng(3)
    s3 = {c for c in sorted(v3_forced) if rng.random() < 0.6}
    v4 = _combos(next_level_candidates(_frame(spark, s3), attributes, length=4))
    assert v4 == oracle.dp_candidates(s3, NOISE_AGGREGATOR_COLUMNS, s2 | s3)


@pytest.mark.spark
def test_post_processing_matches_sds(spark: SparkSession) -> None:
    # The docs/spec.md example (A:a1;B:b1 = 25 and its child 30 -> 25), a missing parent (1, 3) that takes
    # the largest child count, a rounded-away zero, and half-way rounding away from zero.
    noisy = {
        (0,): 40.2,
        (1,): 38.0,
        (2,): 31.0,
        (3,): 20.0,
        (0, 1): 25.0,
        (0, 2): 28.0,
        (1, 2): 27.5,
        (0, 1, 2): 30.0,
        (1, 2, 3): 9.4,
        (0, 3): 0.4,
    }
    frame = spark.createDataFrame(
        [(len(c), list(c), v) for c, v in noisy.items()], "length int, combo array<int>, noisy_count double"
    )
    got = {tuple(r["combo"]): r["count"] for r in post_process(frame, max_length=3).collect()}
    rounded = {c: math.floor(v + 0.5) for c, v in noisy.items() if math.floor(v + 0.5) > 0}
    assert got == oracle.dp_post_process(rounded)
    assert got[(0, 1, 2)] == 25 and got[(1, 3)] == 9 and got[(2, 3)] == 9 and got[(1, 2)] == 28
    assert (0, 3) not in got
    single = spark.createDataFrame([(1, [0], 3)], "length int, combo array<int>, count long")
    assert add_missing_parents(single, max_length=1).collect() == single.collect()
    assert normalise_counts(single, max_length=1).collect() == single.collect()


# --- Spark: the level loop ---------------------------------------------------------------------


def _skewed_records(n: int, n_columns: int, seed: int) -> list[list[int]]:
    """Records with one of three values per column (ids column * 3 + value), skewed and correlated."""
    rng = np.random.default_rng(seed)
    latent = rng.random(n) < 0.5
    records = []
    for i in range(n):
        record = []
        for column in range(n_columns):
            p = [0.7, 0.2, 0.1] if latent[i] else [0.2, 0.6, 0.2]
            record.append(column * 3 + int(rng.choice(3, p=p)))
        records.append(record)
    return records


def _prepared(
    spark: SparkSession, records: list[list[int]], n_columns: int, length: int, partitions: int
) -> PreparedRun:
    frame = spark.createDataFrame([(i, r) for i, r in enumerate(records)], "record_id long, attrs array<int>")
    attributes = _attributes(spark, tuple(a // 3 for a in range(3 * n_columns)))
    return PreparedRun(
        frame, attributes, len(records), 3 * n_columns, length, partitions, n_columns=n_columns
    )


def _context(
    root: Path, run_id: str, length: int, *overrides: str, noise_source: NoiseSource = PRODUCTION_NOISE
) -> RunContext:
    cfg = job_config(
        root / "input.csv",
        root / "out",
        "synthesis.mode=aggregate_seeded",
        f"privacy.reporting_length={length}",
        "privacy.dp={epsilon: 4.0}",
        *overrides,
    )
    return RunContext(cfg=cfg, run_id=run_id, input_fingerprint="test", noise_source=noise_source)


def _noisy_rows(spark: SparkSession, ctx: RunContext) -> list[tuple[Any, ...]]:
    table = delta_io.read_run_table(spark, DP_NOISY_CANDIDATES, root=ctx.root, run_id=ctx.run_id)
    return sorted(
        (r["length"], tuple(r["combo"]), r["noisy_count"], r["above_threshold"]) for r in table.collect()
    )


def _aggregates(release: DpMarginals) -> list[tuple[Any, ...]]:
    return sorted((r["length"], tuple(r["combo"]), r["count"]) for r in release.aggregates.collect())


@pytest.mark.spark
@pytest.mark.slow
def test_same_release_for_1_and_7_partitions_with_the_test_hook(spark: SparkSession, tmp_path: Path) -> None:
    records = _skewed_records(400, 5, seed=1)
    results = []
    for partitions in (1, 7):
        ctx = _context(tmp_path / f"p{partitions}", "hooked", 3, noise_source=SeededTestNoiseSource(2024))
        release = run_dp_marginals(spark, ctx, _prepared(spark, records, 5, 3, partitions))
        results.append((_noisy_rows(spark, ctx), _aggregates(release), release.levels, release.parameters))
    assert results[0] == results[1]
    noisy, aggregates, levels, _ = results[0]
    assert [level.length for level in levels] == [1, 2, 3] and levels[2].released > 0
    # Every candidate got noise, including those no record holds (fabrication is possible).
    assert len(noisy) == sum(level.candidates for level in levels)
    assert all(value == round(value) for _, _, value, _ in noisy)  # discrete noise: integer counts
    assert any(value < 0 for _, _, value, _ in noisy)  # noise was added (counts are >= 0)
    assert {length for length, _, _ in aggregates} == {1, 2, 3}


@pytest.mark.spark
@pytest.mark.slow
def test_without_the_hook_runs_differ_but_a_rerun_reuses_its_noise(
    spark: SparkSession, tmp_path: Path
) -> None:
    prepared = _prepared(spark, _skewed_records(300, 4, seed=2), 4, 2, 2)
    first = _context(tmp_path, "first", 2)
    release = run_dp_marginals(spark, first, prepared)
    noisy = _noisy_rows(spark, first)
    assert release.cumulative == BudgetTotals(1, 4.0, release.parameters.delta)
    # Same run id again (a retried stage): committed noise and stored measurements are reused,
    # and the ledger does not count the run twice.
    again = run_dp_marginals(spark, first, prepared)
    assert _noisy_rows(spark, first) == noisy
    assert _aggregates(again) == _aggregates(release)
    assert again.levels == release.levels and again.cumulative == release.cumulative
    # Another run of the same dataset draws fresh noise and adds to the dataset's budget.
    second = _context(tmp_path, "second", 2)
    other = run_dp_marginals(spark, second, prepared)
    level_one = {c: v for length, c, v, _ in noisy if length == 1}
    other_one = {c: v for length, c, v, _ in _noisy_rows(spark, second) if length == 1}
    assert level_one.keys() == other_one.keys()
    # Integer noise: two draws coincide now and then (about 2% per candidate here), never mostly.
    assert sum(level_one[c] == other_one[c] for c in level_one) <= len(level_one) // 2
    assert other.cumulative.releases == 2 and other.cumulative.epsilon == pytest.approx(8.0)
    ledger = delta_io.read_table(spark, PRIVACY_LEDGER, root=first.root)
    assert sorted(r["run_id"] for r in ledger.collect()) == ["first", "second"]


# --- end to end --------------------------------------------------------------------------------


@pytest.mark.spark
@pytest.mark.slow
def test_pipeline_releases_dp_aggregates_with_spec_8_3_parameters(
    spark: SparkSession, tmp_path: Path
) -> None:
    # docs/spec.md 8.3 case A (eps 4, N_p 0.005, Q_p 0.01, L 4, p = [1, .5, .33, .25], n' = 10,000) with
    # the protected count and Delta_k stored ahead, so every parameter is deterministic.
    data_rows = "".join(SDS_EXAMPLE_CSV.splitlines(keepends=True)[1:])
    csv = write_text(tmp_path / "example.csv", SDS_EXAMPLE_CSV + data_rows * 39)
    cfg = job_config(
        csv,
        tmp_path / "out",
        "synthesis.mode=aggregate_seeded",
        "privacy.reporting_length=4",
        "privacy.dp={epsilon: 4.0, accuracy_mode: custom, sigma_proportions: [1.0, 0.5, 0.33, 0.25], "
        "fabrication_mode: balanced}",
    )
    state = {
        "protected_number_of_records": 10_000,
        "allowed_sensitivity_1": 4,
        "allowed_sensitivity_2": 10,
        "allowed_sensitivity_3": 10,
        "allowed_sensitivity_4": 5,
    }
    private = tmp_path / "out" / "private" / "e2e"
    private.mkdir(parents=True)
    (private / "dp_state.json").write_text(json.dumps(state))
    run_stages(spark, cfg, ["aggregate"], run_id="e2e")

    staging = tmp_path / "out" / "staging" / "e2e"
    section = json.loads((staging / "metadata.json").read_text())["privacy"]
    assert section["epsilon"] == 4.0 and section["delta"] == pytest.approx(1.0857e-5, rel=1e-4)
    levels = section["levels"]
    assert [level["allowed_sensitivity"] for level in levels] == [4, 10, 10, 5][: len(levels)]
    # SDS's rho_1 is 69.98 (test_dp_params); discrete noise needs 70 for the same delta / 2.
    assert levels[0]["threshold"] == 70.0
    assert levels[1]["threshold"] == pytest.approx(6.95, abs=0.01)  # balanced: eta_2 = 0.55
    sigma_sd = [s * math.sqrt(d) for s, d in zip(SPEC_SIGMAS, (4, 10, 10, 5), strict=True)]
    assert [level["noise_standard_deviation"] for level in levels] == pytest.approx(
        sigma_sd[: len(levels)], rel=1e-4
    )
    assert len(levels) >= 2

    lines = (staging / "reportable_aggregates.tsv").read_text().splitlines()
    assert lines[:2] == ["selections\tprotected_count", "record_count\t10000"]
    counts = {sel: int(n) for sel, n in (line.split("\t") for line in lines[2:])}
    assert counts and all(n > 0 for n in counts.values())
    for selection, n in counts.items():  # downward closed and monotone after Step C
        parts = selection.split(";")
        for sub in oracle.sub_combinations(parts, len(parts) - 1):
            assert counts[";".join(sub)] >= n
    table = delta_io.read_run_table(spark, REPORTABLE_AGGREGATES, root=cfg.output.root, run_id="e2e")
    assert {r["selections"]: r["protected_count"] for r in table.collect()} == counts

    manifest = (
        delta_io.read_table(spark, RUNS, root=cfg.output.root)
        .where((F.col("stage") == "aggregate") & (F.col("status") == "SUCCEEDED"))
        .collect()
    )
    assert len(manifest) == 1
    privacy = manifest[0]["privacy"]
    assert privacy["epsilon"] == 4.0 and privacy["cumulative_releases"] == 1.0
    assert privacy["protected_number_of_records"] == 10_000.0
    # A rerun of the finished run is a no-op and spends nothing.
    run_stages(spark, cfg, ["aggregate"], run_id="e2e")
    assert delta_io.read_table(spark, PRIVACY_LEDGER, root=cfg.output.root).count() == 1
