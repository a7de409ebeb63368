"""Per-task engines of ``row_seeded`` and ``value_seeded`` synthesis (docs/spec.md 4.1 and 4.3).

* :func:`row_seeded_seeds` is phase 1: one k-safe random subset per sensitive record (seed).
* :func:`consolidate` is phase 2 on one quota shard: it builds new k-safe records until the shard's
  ``available`` attribute counts are placed exactly, optionally under the oversampling control of
  ``value_seeded``.

Phase 3, suppression, needs the global attribute counts and is distributed
(:func:`ctdc_spark.synthesize._distributed.suppress`).

Randomness: record ``i`` of phase 1 uses ``RecordStream(key, record_ids[i])``; record j of shard s
in phase 2 uses ``RecordStream(key, shard_record_ids(s, j))``. Outputs therefore depend only on the
inputs and the key, never on batching, partitioning or the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ctdc_spark._random import RecordStream
from ctdc_spark.combos.keys import CombinationLookup
from ctdc_spark.synthesize._batch import SHARD_ID_BITS, SyntheticBatch, shard_record_id, shard_record_ids
from ctdc_spark.synthesize._combos import IndexedLookup, combinations_with
from ctdc_spark.synthesize._row_index import Int32Array, IntArray
from ctdc_spark.synthesize._sampler import KSafeSampler, PartialRecord


def row_seeded_seeds(
    sampler: KSafeSampler,
    seeds_indptr: npt.ArrayLike,
    seeds_indices: npt.ArrayLike,
    record_ids: npt.ArrayLike,
    key: int,
) -> SyntheticBatch:
    """Phase 1 of ``row_seeded``: grow one k-safe subset of every seed record.

    Starting from the empty record, repeatedly draw an attribute of the seed whose addition keeps
    support >= k, weighted by that support, until none is left (docs/spec.md 4.1).

    Args:
        sampler: The k-safe sampler over all sensitive records.
        seeds_indptr: ``int64[s + 1]`` CSR offsets of the seed records of this batch.
        seeds_indices: ``int32[nnz]`` ascending attribute ids of each seed.
        record_ids: ``int64[s]`` stable ids of the seeds (the sensitive record ids).
        key: ``stage_key(seed, "row_seeded")``.

    Returns:
        One synthetic record per seed, in input order, with the seed's id; records may be empty.
    """
    indptr = np.asarray(seeds_indptr, dtype=np.int64)
    indices = np.asarray(seeds_indices, dtype=np.int32)
    ids = np.asarray(record_ids, dtype=np.int64)
    if len(indptr) != len(ids) + 1:
        raise ValueError("seeds_indptr must have one more entry than record_ids")
    records: list[list[int]] = []
    for i, record_id in enumerate(ids.tolist()):
        partial = sampler.start()
        _grow_maximal(sampler, partial, indices[indptr[i] : indptr[i + 1]], RecordStream(key, record_id))
        records.append(partial.tokens)
    return SyntheticBatch.from_records(records, ids)


def _grow_maximal(
    sampler: KSafeSampler, partial: PartialRecord, candidates: Int32Array, stream: RecordStream
) -> None:
    """Add k-safe draws among ``candidates`` (one attribute per column) until none is left."""
    attr_column = sampler.index.attr_column
    while len(candidates):
        drawn = sampler.draw(partial, candidates, stream.random())
        if drawn is None:
            break
        attr, size, candidates = drawn
        sampler.extend(partial, attr, size)
        candidates = candidates[attr_column[candidates] != attr_column[attr]]


def grown_from_combinations(
    sampler: KSafeSampler,
    starts_indptr: npt.ArrayLike,
    starts_indices: npt.ArrayLike,
    start_ids: npt.ArrayLike,
    key: int,
) -> SyntheticBatch:
    """``fitted`` candidates that hold a given combination: grow each start into a maximal k-safe set.

    A start whose own support is below k yields nothing. Otherwise the record starts as the whole
    combination and draws, as :func:`row_seeded_seeds` does, among the attributes of every unused
    column whose addition keeps support >= k, weighted by that support, until none is left.

    Args:
        sampler: The k-safe sampler over all sensitive records.
        starts_indptr: ``int64[s + 1]`` CSR offsets of the start combinations.
        starts_indices: ``int32[nnz]`` ascending attribute ids of each start.
        start_ids: ``int64[s]`` stable ids of the starts (their random streams).
        key: ``stage_key(seed, "fitted_from_combinations")``.

    Returns:
        One record per start with support >= k, with the start's id.
    """
    indptr = np.asarray(starts_indptr, dtype=np.int64)
    indices = np.asarray(starts_indices, dtype=np.int32)
    ids = np.asarray(start_ids, dtype=np.int64)
    if len(indptr) != len(ids) + 1:
        raise ValueError("starts_indptr must have one more entry than start_ids")
    index = sampler.index
    attr_column = index.attr_column
    every_attribute = np.arange(index.n_attributes, dtype=np.int32)
    records: list[list[int]] = []
    kept: list[int] = []
    for i, start_id in enumerate(ids.tolist()):
        start = indices[indptr[i] : indptr[i + 1]]
        partial = sampler.start()
        for attr in start.tolist():
            size = int(sampler.cache.counts(partial, np.array([attr], dtype=np.int32))[0])
            if size < sampler.k:
                break
            sampler.extend(partial, attr, size)
        else:
            candidates = every_attribute[~np.isin(attr_column, attr_column[start])]
            _grow_maximal(sampler, partial, candidates, RecordStream(key, start_id))
            records.append(partial.tokens)
            kept.append(start_id)
    return SyntheticBatch.from_records(records, np.array(kept, dtype=np.int64))


def consolidation_available(single: npt.ArrayLike, not_used: npt.ArrayLike, k: int) -> IntArray:
    """Attribute counts still to place after phase 1 (docs/spec.md 4.1 phase 2, step 3).

    ``available[a] = floor(single[a] / k) * k - single[a] + not_used[a]`` where ``single[a] >= k``,
    clipped at 0. For ``row_seeded``, ``not_used[a]`` is the number of seeds holding a whose
    synthetic record does not (``single[a] - phase-1 count of a``); for ``value_seeded`` it is
    ``single[a]``, or the reported 1-count under oversampling control (docs/spec.md 4.3).

    Args:
        single: ``int64[A]`` sensitive 1-counts.
        not_used: ``int64[A]``.
        k: The privacy resolution.

    Returns:
        ``int64[A]``, 0 for attributes not to place.
    """
    single_a = np.asarray(single, dtype=np.int64)
    target = single_a // k * k
    available = target - single_a + np.asarray(not_used, dtype=np.int64)
    return np.where((single_a >= k) & (available > 0), available, 0)


@dataclass(frozen=True)
class OversamplingControl:
    """``value_seeded`` oversampling control (docs/spec.md 4.3) for one consolidation shard.

    An attribute is rejected when, for a sub-combination s of the new record that is in the
    reported aggregates, ``syn[s] + 1 > agg[s] * (1 + ratio) * allowance_scale``; ``syn`` counts
    this shard's records. Give each shard ``allowance_scale`` = its share of the placements so the
    shards' allowances add up to the global one.

    Attributes:
        lookup: Reported aggregate counts, all lengths up to ``reporting_length``.
        reporting_length: L.
        ratio: ``oversampling_ratio``.
        tries: ``oversampling_tries``: rejections allowed in a row before a record stops.
        allowance_scale: This shard's share of every allowance.
    """

    lookup: CombinationLookup
    reporting_length: int
    ratio: float
    tries: int = 1
    allowance_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.tries < 1 or self.ratio < 0 or self.allowance_scale <= 0 or self.reporting_length < 1:
            raise ValueError("oversampling needs tries >= 1, ratio >= 0, allowance_scale > 0 and L >= 1")
        if self.lookup.layout.max_length < self.reporting_length:
            raise ValueError("the lookup's key layout is shorter than the reporting length")


class _Oversampling:
    """Synthetic counts of one shard and the accept/reject rule of :class:`OversamplingControl`."""

    def __init__(self, control: OversamplingControl) -> None:
        self._lookup = IndexedLookup(control.lookup)
        self._allowed = self._lookup.counts * (1.0 + control.ratio) * control.allowance_scale
        self._syn = np.zeros(len(self._lookup), dtype=np.int64)
        self._length = control.reporting_length

    def accept(self, record: list[int], attr: int) -> bool:
        """Whether ``attr`` may join ``record``; counts its new sub-combinations if so.

        Only combinations of length >= 2 are checked: a 1-count never exceeds its allowance in
        SDS (placements of a <= available[a] <= agg[a]), and checking it here could stop a shard
        from placing its quota when shares are rounded.
        """
        rec = np.asarray(record, dtype=np.int32)
        attrs = np.array([attr], dtype=np.int32)
        positions = [
            self._lookup.positions(combinations_with(rec, attrs, length))
            for length in range(2, min(self._length, len(rec) + 1) + 1)
        ]
        if not positions:
            return True
        pos = np.concatenate(positions)
        pos = pos[pos >= 0]
        if np.any(self._syn[pos] + 1 > self._allowed[pos]):
            return False
        self._syn[pos] += 1  # distinct sub-combinations have distinct positions
        return True


def consolidate(
    sampler: KSafeSampler,
    available: npt.ArrayLike | Mapping[int, int],
    key: int,
    shard_id: int,
    *,
    oversampling: OversamplingControl | None = None,
) -> SyntheticBatch:
    """Phase 2 on one quota shard: build k-safe records until ``available`` is placed exactly.

    Each record starts empty and draws, with the k-safe sampler, among the attributes still
    available whose column is unused; a placed attribute's count drops by one and leaves the pool
    at zero (docs/spec.md 4.1 phase 2). Every available attribute has support >= k, so every record
    places at least one attribute and the loop ends with every count placed.

    Args:
        sampler: The k-safe sampler over all sensitive records.
        available: ``int64[A]`` (or ``{attr: count}``) this shard's quota per attribute.
        key: ``stage_key(seed, "consolidate")``.
        shard_id: The shard's stable id (records get :func:`shard_record_ids`).
        oversampling: ``value_seeded`` oversampling control, or ``None``.

    Returns:
        The new records, with ids ``shard_record_ids(shard_id, len)``.

    Raises:
        ValueError: If an available attribute has support below k (it could never be placed).
    """
    index = sampler.index
    if isinstance(available, Mapping):
        avail = np.zeros(index.n_attributes, dtype=np.int64)
        for attr, count in available.items():
            avail[attr] = count
    else:
        avail = np.array(available, dtype=np.int64)
    if avail.shape != (index.n_attributes,) or np.any(avail < 0):
        raise ValueError("available needs one non-negative count per attribute")
    if np.any((avail > 0) & (index.support < sampler.k)):
        raise ValueError("an available attribute has support below k and can never be placed")
    remaining = int(avail.sum())
    shard_record_ids(shard_id, 0)  # validates the shard id before any work
    # Every record places at least one attribute, so this also bounds the shard's record ids.
    if remaining > 2**SHARD_ID_BITS:
        raise ValueError("a consolidation shard may place at most 2**32 attributes; use more shards")
    attr_column = index.attr_column
    control = _Oversampling(oversampling) if oversampling is not None else None
    max_tries = oversampling.tries if oversampling is not None else 1
    records: list[list[int]] = []
    while remaining > 0:
        stream = RecordStream(key, shard_record_id(shard_id, len(records)))
        partial = sampler.start()
        candidates = np.flatnonzero(avail > 0).astype(np.int32)
        tries = max_tries
        while len(candidates):
            drawn = sampler.draw(partial, candidates, stream.random())
            if drawn is None:
                break
            attr, size, candidates = drawn
            if control is not None and not control.accept(partial.tokens, attr):
                # A rejected attribute stays a candidate and may be drawn again (SDS behaviour).
                tries -= 1
                if tries == 0:
                    break
                continue
            tries = max_tries
            sampler.extend(partial, attr, size)
            avail[attr] -= 1
            remaining -= 1
            # Dropping the drawn attribute's column also drops the attribute itself, whether or
            # not its count reached zero (then it leaves the pool for the next records).
            candidates = candidates[attr_column[candidates] != attr_column[attr]]
        records.append(partial.tokens)
    return SyntheticBatch.from_records(records, shard_record_ids(shard_id, len(records)))
