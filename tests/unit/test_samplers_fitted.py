"""fitted engine: the fitted release holds only what the guarantee allows, the fit matches the
released counts where they can be matched, and the draw is deterministic and order-free."""

from __future__ import annotations

import random

import numpy as np
import pytest
from _samplers_testdata import Table, make_lookup, random_table, records_of, reportable, tables
from hypothesis import given, settings
from hypothesis import strategies as st

from ctdc_spark._random import stage_key
from ctdc_spark.synthesize._aggregate_seeded import aggregate_seeded
from ctdc_spark.synthesize._batch import SyntheticBatch, concat_batches
from ctdc_spark.synthesize._fit import (
    BYTES_PER_ENTRY,
    NOISY_TARGET_LOSS,
    RELATIVE_LOSS,
    FitLoss,
    candidate_incidence,
    fit_candidates,
    fitted_records,
    incidence_entries,
    integer_copies,
    thin_candidates,
    uncovered_combinations,
    unique_candidates,
)
from ctdc_spark.synthesize._row_seeded import grown_from_combinations, row_seeded_seeds
from ctdc_spark.synthesize._sampler import KSafeSampler
from tests.oracle import sub_combinations

SETTINGS = settings(max_examples=40, deadline=None)


def _k_mode_release(
    table: Table, k: int, length: int, seed: int, record_target: float | None
) -> SyntheticBatch:
    sampler = KSafeSampler(table.index(), k, cache_max_size=1000)
    ids = np.arange(len(table.records), dtype=np.int64)
    orders = [
        row_seeded_seeds(sampler, table.indptr, table.indices, ids, stage_key(seed, f"order_{o}"))
        for o in range(2)
    ]
    targets = make_lookup(reportable(table, k, length), table.n_attributes, length)
    seeded = unique_candidates(concat_batches(orders))
    missing = uncovered_combinations(seeded, targets, length)
    grown = grown_from_combinations(
        sampler, missing.indptr, missing.indices, missing.record_ids, stage_key(seed, "grown")
    )
    for i in range(len(grown)):
        start = missing.record(int(np.flatnonzero(missing.record_ids == grown.record_ids[i])[0]))
        assert set(start.tolist()) <= set(grown.record(i).tolist()), "a grown candidate holds its start"
    candidates = unique_candidates(concat_batches([seeded, grown]))
    fit = fit_candidates(candidates, targets, max_length=length, record_target=record_target, iterations=60)
    assert fit.dropped == 0, "k-safe candidates hold reportable combinations only"
    return fitted_records(fit.candidates, integer_copies(fit.weights, stage_key(seed, "copies")))


@SETTINGS
@given(
    table=tables(),
    k=st.integers(1, 4),
    length=st.integers(1, 3),
    seed=st.integers(0, 2**63),
    free=st.booleans(),
)
def test_k_mode_fitted_records_are_k_synthetic(
    *, table: Table, k: int, length: int, seed: int, free: bool
) -> None:
    release = _k_mode_release(table, k, length, seed, None if free else float(len(table.records)))
    for record in records_of(release):
        assert record, "no empty record is drawn"
        assert table.support(record) >= k, "every fitted record describes at least k sensitive records"


@SETTINGS
@given(
    table=tables(),
    length=st.integers(1, 3),
    seed=st.integers(0, 2**63),
    data=st.data(),
)
def test_dp_mode_fitted_records_hold_released_combinations_only(
    *, table: Table, length: int, seed: int, data: st.DataObject
) -> None:
    # Released "DP" counts: any positive numbers on a subset closed under taking sub-combinations,
    # which is what the DP release guarantees for what it publishes.
    counts = reportable(table, 2, length)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    released = {c: max(1, n + rng.randint(-3, 3)) for c, n in counts.items()}
    if not released:
        return
    lookup = make_lookup(released, table.n_attributes, length)
    ones = np.zeros(table.n_attributes, dtype=np.int64)
    for combo, n in released.items():
        if len(combo) == 1:
            ones[combo[0]] = n
    passes = [
        aggregate_seeded(
            lookup,
            table.attr_column,
            available_init=ones * (1 + 4 * p),
            reporting_length=length,
            use_synthetic_counts=False,
            weight_selection_percentile=95.0,
            target_number_of_records=len(table.records) if p else None,
            key=stage_key(seed, f"pass_{p}"),
            shard_id=1,
        )
        for p in range(2)
    ]
    fit = fit_candidates(
        unique_candidates(concat_batches(passes)),
        lookup,
        max_length=length,
        record_target=float(len(table.records)),
        iterations=60,
    )
    release = fitted_records(fit.candidates, integer_copies(fit.weights, stage_key(seed, "copies")))
    for record in records_of(release):
        for sub in sub_combinations(record, length):
            assert sub in released, "a fitted record holds a combination the release does not"


def test_candidate_with_an_unreleased_combination_is_dropped() -> None:
    lookup = make_lookup({(0,): 5, (1,): 4}, 2, 2)  # the pair (0, 1) is not released
    candidates = unique_candidates(SyntheticBatch.from_records([[0], [0, 1], [1]], [0, 1, 2]))
    _, candidate, kept = candidate_incidence(candidates, lookup, 2)
    assert kept.tolist() == [True, False, True]
    assert 1 not in candidate.tolist()


def test_fit_reproduces_released_counts_a_mixture_can_reach() -> None:
    # The released counts are those of a known mixture of the candidates: the fit must find counts
    # that close (the mixture itself need not be unique).
    table = random_table(seed=4, n_records=300, n_values=[3, 4, 2, 3, 5], empty_prob=0.2, skew=1.0)
    pool = unique_candidates(SyntheticBatch.from_records(table.records, np.arange(len(table.records))))
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 6, size=len(pool)).astype(float)
    counts: dict[tuple[int, ...], float] = {}
    for i in range(len(pool)):
        for sub in sub_combinations(pool.record(i).tolist(), 3):
            counts[sub] = counts.get(sub, 0.0) + truth[i]
    released = {c: int(n) for c, n in counts.items() if n > 0}
    lookup = make_lookup(released, table.n_attributes, 3)
    fit = fit_candidates(pool, lookup, max_length=3, record_target=float(truth.sum()), iterations=600)
    combo, candidate, _ = candidate_incidence(pool, lookup, 3)
    fitted = np.bincount(combo, weights=fit.weights[candidate], minlength=len(lookup))
    target = lookup.table_counts.astype(float)
    relative = np.abs(fitted - target) / target
    assert float(relative.mean()) < 0.05
    assert abs(fit.weights.sum() - truth.sum()) / truth.sum() < 0.05


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_target_loss_lands_closer_to_the_exact_counts_than_relative_errors(seed: int) -> None:
    # DP-like release: exact counts of a heavy-tailed mixture plus noise of one spread (sd 10),
    # released above a threshold. Fitting the noisy counts with errors relative to them chases the
    # noise of small counts; the DP loss must end closer to the exact counts at every length.
    table = random_table(seed=seed, n_records=300, n_values=[3, 4, 2, 3, 5], empty_prob=0.2, skew=1.0)
    pool = unique_candidates(SyntheticBatch.from_records(table.records, np.arange(len(table.records))))
    rng = np.random.default_rng(seed)
    truth = rng.pareto(1.5, size=len(pool)) * 20
    exact: dict[tuple[int, ...], float] = {}
    for i in range(len(pool)):
        for sub in sub_combinations(pool.record(i).tolist(), 3):
            exact[sub] = exact.get(sub, 0.0) + truth[i]
    noisy = {c: n + rng.normal(0, 10) for c, n in exact.items()}
    lookup = make_lookup({c: round(n) for c, n in noisy.items() if n > 10}, table.n_attributes, 3)
    members = lookup.layout.unpack(lookup.table_words)
    exact_counts = np.array([exact[tuple(int(a) for a in row if a >= 0)] for row in members])
    lengths = (members >= 0).sum(axis=1)
    combo, candidate, _ = candidate_incidence(pool, lookup, 3)

    def mean_abs_error(loss: FitLoss) -> float:
        fit = fit_candidates(pool, lookup, max_length=3, record_target=None, iterations=300, loss=loss)
        fitted = np.bincount(combo, weights=fit.weights[candidate], minlength=len(lookup))
        error = np.abs(fitted - exact_counts)
        return float(np.mean([error[lengths == length].mean() for length in (1, 2, 3)]))

    assert mean_abs_error(NOISY_TARGET_LOSS) < 0.9 * mean_abs_error(RELATIVE_LOSS)


def test_noisy_target_scale_is_capped_at_the_median_of_each_length() -> None:
    targets = np.array([0.0, 4.0, 10.0, 100.0, 2.0, 50.0, 60.0])
    lengths = np.array([1, 1, 1, 1, 2, 2, 2])
    assert RELATIVE_LOSS.scale(targets, lengths).tolist() == [1.0, 4.0, 10.0, 100.0, 2.0, 50.0, 60.0]
    # medians: length 1 -> 7, length 2 -> 50
    assert NOISY_TARGET_LOSS.scale(targets, lengths).tolist() == [1.0, 4.0, 7.0, 7.0, 2.0, 50.0, 50.0]


def test_copies_depend_on_the_candidate_set_only() -> None:
    table = random_table(seed=9, n_records=80, n_values=[3, 3, 4], empty_prob=0.1, skew=1.0)
    lookup = make_lookup(reportable(table, 1, 2), table.n_attributes, 2)
    records = table.records
    shuffled = records[::-1]
    results = []
    for rows in (records, shuffled):
        pool = unique_candidates(SyntheticBatch.from_records(rows, np.arange(len(rows))))
        fit = fit_candidates(pool, lookup, max_length=2, record_target=80.0, iterations=50)
        results.append(records_of(fitted_records(fit.candidates, integer_copies(fit.weights, 3))))
    assert results[0] == results[1]


def test_integer_copies_round_each_weight_to_a_neighbour_unbiasedly() -> None:
    weights = np.full(20_000, 0.25)
    copies = integer_copies(weights, key=stage_key(1, "copies"))
    assert set(copies.tolist()) <= {0, 1}
    assert abs(copies.mean() - 0.25) < 0.01
    assert integer_copies(weights, key=stage_key(1, "copies")).tolist() == copies.tolist()
    assert integer_copies(np.array([3.0, 0.0]), key=5).tolist() == [3, 0]


def test_thinning_keeps_the_fit_within_its_budget_deterministically() -> None:
    table = random_table(seed=2, n_records=400, n_values=[4, 4, 4, 4, 4, 4], empty_prob=0.0, skew=0.5)
    pool = unique_candidates(SyntheticBatch.from_records(table.records, np.arange(len(table.records))))
    needed = incidence_entries(pool, 3) * BYTES_PER_ENTRY
    kept, dropped = thin_candidates(pool, 3, budget_bytes=needed // 2, key=7)
    assert dropped > 0 and len(kept) + dropped == len(pool)
    assert incidence_entries(kept, 3) * BYTES_PER_ENTRY <= needed * 0.6
    again, _ = thin_candidates(pool, 3, budget_bytes=needed // 2, key=7)
    assert records_of(again) == records_of(kept)
    same, none = thin_candidates(pool, 3, budget_bytes=needed, key=7)
    assert none == 0 and len(same) == len(pool)
