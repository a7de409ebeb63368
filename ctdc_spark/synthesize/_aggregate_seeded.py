"""Per-task engine of ``aggregate_seeded`` synthesis (docs/spec.md 4.4): records from reported aggregates.

This module never sees sensitive records: its only inputs are the reported (k-anonymous or DP)
aggregate counts, the attribute-to-column map and the 1-count quota of the shard. A record grows
one attribute at a time; a candidate's weight is the reported count of the combination it would
form (up to length L) or, beyond L, a percentile of the counts of every sub-combination (length
1..L) it would add, and a candidate with any such combination unreported is ineligible. Hence no
combination of length <= L absent from the aggregates is ever created.

All candidate combinations of a step are built as one array, packed and looked up at once; with
``use_synthetic_counts`` the counts already synthesised live in an array aligned with the lookup.
"""

from __future__ import annotations

import bisect

import numpy as np
import numpy.typing as npt

from ctdc_spark._random import RecordStream
from ctdc_spark.combos.keys import CombinationLookup
from ctdc_spark.synthesize._batch import SyntheticBatch, shard_record_id, shard_record_ids
from ctdc_spark.synthesize._combos import IndexedLookup, combinations_with
from ctdc_spark.synthesize._row_index import Int32Array, IntArray
from ctdc_spark.synthesize._sampler import sample_weighted


def r8_percentile(sorted_rows: npt.NDArray[np.float64], percentile: float) -> npt.NDArray[np.float64]:
    """R-8 (median-unbiased) percentile of each row of an ascending-sorted matrix (statrs' rule).

    ``h = (N + 1/3) * p / 100 + 1/3``; the row minimum if ``floor(h) < 1``, its maximum if
    ``floor(h) >= N``, else linear interpolation between order statistics ``floor(h)`` and
    ``floor(h) + 1`` (1-based). Equals ``numpy.percentile(..., method="median_unbiased")``.

    Args:
        sorted_rows: ``(r, N)`` with every row ascending, N >= 1.
        percentile: In [0, 100].

    Returns:
        ``(r,)`` percentiles.

    Example:
        >>> r8_percentile(np.array([[1.0, 2.0, 3.0, 4.0]]), 50.0).tolist()
        [2.5]
    """
    n = sorted_rows.shape[1]
    tau = percentile / 100.0
    h = (n + 1.0 / 3.0) * tau + 1.0 / 3.0
    lo = int(np.floor(h))
    if lo <= 0 or tau == 0.0:
        return sorted_rows[:, 0].astype(np.float64)
    if lo >= n or tau == 1.0:
        return sorted_rows[:, -1].astype(np.float64)
    a = sorted_rows[:, lo - 1]
    b = sorted_rows[:, lo]
    return np.asarray(a + (h - lo) * (b - a), dtype=np.float64)


def round_half_away(values: npt.NDArray[np.float64]) -> IntArray:
    """Round to the nearest integer, halves away from zero (Rust's ``f64::round``)."""
    floor = np.floor(values)
    return np.where(values - floor >= 0.5, floor + 1, floor).astype(np.int64)


def _sorted_isin(values: Int32Array, sorted_set: Int32Array) -> npt.NDArray[np.bool_]:
    """``np.isin`` for an ascending ``sorted_set``, without its per-call overhead."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    found: npt.NDArray[np.bool_] = sorted_set[pos] == values
    return found


class _SubWeightsMemo:
    """What :meth:`_AggregateSeeded.step_weights` knows about the record it last weighed."""

    __slots__ = ("candidates", "record", "weights")

    def __init__(self) -> None:
        self.record: Int32Array | None = None
        self.candidates: Int32Array = np.zeros(0, dtype=np.int32)
        self.weights: IntArray = np.zeros((0, 0), dtype=np.int64)


class _AggregateSeeded:
    """State of one shard: remaining quota, synthetic counts, and the weight rule."""

    def __init__(
        self,
        *,
        lookup: IndexedLookup,
        attr_column: Int32Array,
        available_init: IntArray,
        reporting_length: int,
        use_synthetic_counts: bool,
        percentile: float,
    ) -> None:
        self.lookup = lookup
        self.attr_column = attr_column
        self.available_init = available_init
        self.available = available_init.copy()
        self.length = reporting_length
        self.synthetic = np.zeros(len(lookup), dtype=np.int64) if use_synthetic_counts else None
        self.percentile = percentile
        self.n_columns = int(attr_column.max()) + 1 if len(attr_column) else 0

    def reset(self) -> None:
        """Restore the initial quota and forget synthetic counts (``target_number_of_records``)."""
        self.available = self.available_init.copy()
        if self.synthetic is not None:
            self.synthetic[:] = 0

    def _combination_weights(self, combos: Int32Array) -> IntArray:
        """``w(s)`` for each combination row; 0 where undefined (unreported, or nothing left)."""
        pos = self.lookup.positions(combos)
        found = pos >= 0
        safe = np.maximum(pos, 0)
        weights = self.lookup.counts[safe]
        if self.synthetic is not None:
            weights = weights - self.synthetic[safe]
        return np.where(found, np.maximum(weights, 0), 0)

    def _sub_weights(
        self, record: Int32Array, candidates: Int32Array, added: int | None
    ) -> tuple[Int32Array, IntArray]:
        """Weights of the sub-combinations (length 1..L) each candidate adds to ``record``.

        With ``added`` set, only those that also hold ``added`` (the record's newest attribute)
        are built. Candidates with an undefined weight are dropped, shorter lengths first, which
        prunes most of the work.

        Returns:
            The surviving candidates and their weights, one row each.
        """
        if added is None:
            base, lengths, extra = record, range(1, self.length + 1), None
        else:
            base, lengths, extra = record[record != added], range(2, self.length + 1), added
        alive = candidates
        blocks: list[IntArray] = [np.zeros((len(alive), 0), dtype=np.int64)]
        for length in lengths:
            if not len(alive):
                break
            if extra is None:
                combos = combinations_with(base, alive, length)
            else:
                part = combinations_with(base, alive, length - 1)
                combos = np.sort(np.hstack([part, np.full((len(part), 1), extra, dtype=np.int32)]), axis=1)
            w = self._combination_weights(combos).reshape(len(alive), -1)
            ok = (w > 0).all(axis=1)
            alive = alive[ok]
            blocks = [b[ok] for b in blocks]
            blocks.append(w[ok])
        return alive, np.hstack(blocks)

    def _percentile_weights(self, weights: IntArray) -> IntArray:
        return round_half_away(r8_percentile(np.sort(weights, axis=1).astype(np.float64), self.percentile))

    def candidate_weights(self, record: Int32Array, candidates: Int32Array) -> IntArray:
        """Sampling weight of each candidate for ``record``; 0 marks an ineligible candidate."""
        if not len(candidates):
            return np.zeros(0, dtype=np.int64)
        if len(record) + 1 <= self.length:
            return self._combination_weights(combinations_with(record, candidates, len(record) + 1))
        alive, weights = self._sub_weights(record, candidates, None)
        out = np.zeros(len(candidates), dtype=np.int64)
        if len(alive):
            out[np.searchsorted(candidates, alive)] = self._percentile_weights(weights)
        return out

    def step_weights(self, record: Int32Array, candidates: Int32Array, memo: _SubWeightsMemo) -> IntArray:
        """:meth:`candidate_weights` for the next step of a growing record, reusing ``memo``.

        Beyond length L a candidate's weights are those of every sub-combination it adds. Those
        found at earlier steps never change while the record grows (synthetic counts only move for
        combinations holding the newly added attribute, which they do not hold), so each step only
        builds the combinations that hold both the candidate and the record's newest attribute.
        """
        if not len(candidates) or len(record) + 1 <= self.length:
            return self.candidate_weights(record, candidates)
        # Tiny sets: Python is cheaper than a numpy set operation here.
        added = set(record.tolist()) - set(memo.record.tolist()) if memo.record is not None else set()
        if memo.record is None or len(added) != 1 or len(record) != len(memo.record) + 1:
            alive, weights = self._sub_weights(record, candidates, None)
        else:
            still = _sorted_isin(memo.candidates, candidates)
            alive, new = self._sub_weights(record, memo.candidates[still], added.pop())
            weights = np.hstack([memo.weights[still][_sorted_isin(memo.candidates[still], alive)], new])
        memo.record, memo.candidates, memo.weights = record, alive, weights
        out = np.zeros(len(candidates), dtype=np.int64)
        if len(alive):
            out[np.searchsorted(candidates, alive)] = self._percentile_weights(weights)
        return out

    def _count_synthetic(self, record: Int32Array, attr: int) -> None:
        assert self.synthetic is not None
        attrs = np.array([attr], dtype=np.int32)
        for length in range(1, min(self.length, len(record) + 1) + 1):
            pos = self.lookup.positions(combinations_with(record, attrs, length))
            self.synthetic[pos[pos >= 0]] += 1

    def build_record(self, stream: RecordStream) -> list[int]:
        """Grow one record until no candidate is eligible."""
        record: list[int] = []
        used = np.zeros(self.n_columns, dtype=bool)
        memo = _SubWeightsMemo()
        while True:
            candidates = np.flatnonzero((self.available > 0) & ~used[self.attr_column]).astype(np.int32)
            if not len(candidates):
                break
            rec = np.asarray(record, dtype=np.int32)
            i = sample_weighted(self.step_weights(rec, candidates, memo), stream.random())
            if i < 0:
                break
            attr = int(candidates[i])
            if self.synthetic is not None:
                self._count_synthetic(rec, attr)
            bisect.insort(record, attr)
            self.available[attr] -= 1
            used[self.attr_column[attr]] = True
        return record


def aggregate_seeded(
    lookup: CombinationLookup,
    attr_column: npt.ArrayLike,
    *,
    available_init: npt.ArrayLike,
    reporting_length: int,
    use_synthetic_counts: bool,
    weight_selection_percentile: float,
    target_number_of_records: int | None,
    key: int,
    shard_id: int,
    count_scale: float | None = None,
) -> SyntheticBatch:
    """Build the records of one ``aggregate_seeded`` shard from reported aggregates only.

    Without a target, records are built until the quota ``available_init`` is placed; with one,
    exactly ``target_number_of_records`` records are built and the quota (and the synthetic counts)
    reset whenever it runs out.

    Args:
        lookup: Reported aggregate counts, every length up to ``reporting_length``.
        attr_column: ``int32[A]`` column of each attribute.
        available_init: ``int64[A]`` this shard's 1-count quota (the reported 1-counts, scaled, for
            a single shard).
        reporting_length: L.
        use_synthetic_counts: Weigh by reported minus already-synthesised counts.
        weight_selection_percentile: Percentile (R-8, rounded) of sub-combination weights used
            beyond length L, in [0, 100].
        target_number_of_records: Records this shard must build, or ``None``.
        key: ``stage_key(seed, "aggregate_seeded")``.
        shard_id: The shard's stable id (records get ``shard_record_ids(shard_id, j)``).
        count_scale: Scales every reported count to ``ceil(count * count_scale)``: SDS'
            ``aggregate_counts_scale_factor``, times this shard's share when synthetic counts are
            used across several shards.

    Returns:
        The shard's records.

    Raises:
        ValueError: On inconsistent inputs, e.g. a quota on an attribute whose (scaled) reported
            1-count is 0, or, with synthetic counts, larger than that 1-count (it could never be
            placed).
    """
    column = np.asarray(attr_column, dtype=np.int32)
    init = np.array(available_init, dtype=np.int64)
    if init.shape != column.shape or np.any(init < 0):
        raise ValueError("available_init needs one non-negative count per attribute")
    if reporting_length < 1 or lookup.layout.max_length < reporting_length:
        raise ValueError("reporting_length must be >= 1 and fit the lookup's key layout")
    if not 0.0 <= weight_selection_percentile <= 100.0:
        raise ValueError("weight_selection_percentile must lie in [0, 100]")
    if target_number_of_records is not None and target_number_of_records < 0:
        raise ValueError("target_number_of_records must be >= 0")
    shard_record_ids(shard_id, 0)  # validates the shard id before any work
    indexed = IndexedLookup(lookup, count_scale)
    quota_attrs = np.flatnonzero(init > 0).astype(np.int32)
    ones = indexed.count_of(quota_attrs[:, None])
    if np.any(ones == 0) or (use_synthetic_counts and np.any(init[quota_attrs] > ones)):
        raise ValueError("available_init exceeds the (scaled) reported 1-counts of some attribute")
    state = _AggregateSeeded(
        lookup=indexed,
        attr_column=column,
        available_init=init,
        reporting_length=reporting_length,
        use_synthetic_counts=use_synthetic_counts,
        percentile=weight_selection_percentile,
    )
    records: list[list[int]] = []
    while (target_number_of_records is None and state.available.any()) or (
        target_number_of_records is not None and len(records) < target_number_of_records
    ):
        if not state.available.any():
            state.reset()
        stream = RecordStream(key, shard_record_id(shard_id, len(records)))
        records.append(state.build_record(stream))
    return SyntheticBatch.from_records(records, shard_record_ids(shard_id, len(records)))
