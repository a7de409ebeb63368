"""Per-task numpy of the DP marginals (docs/spec.md 3.4 Step B): valid tuples, bounding, noisy release.

Pure functions over CSR batches of records (sorted attribute ids), no Spark; the Spark stage in
:mod:`._dp` runs them inside ``mapInArrow`` tasks.

* **Valid tuples** ``W_u`` of a record at level ``k`` are its ``k``-subsets that are candidates.
  Candidates of level ``k >= 2`` are exactly the combinations with distinct columns whose every
  ``(k-1)``-subset survived level ``k - 1`` (:func:`ctdc_spark.aggregate._dp.next_level_candidates`),
  and a record holds at most one attribute per expanded column, so membership is tested against
  the small survivor table ``S_{k-1}``, never against the (larger) candidate set.
* **Contribution bounding** keeps, per record, the ``Delta_k`` valid tuples with the smallest
  keyed hash of ``(key, record id, tuple)``. With a secret random key this is a uniformly random
  subset for every record, independent across records (in the usual idealised-hash sense), and
  a recomputed task selects exactly the same tuples. Each record then adds at most ``Delta_k``
  ones, so the L2 sensitivity of a level's count vector is ``sqrt(Delta_k)``.
* **Noisy release** adds discrete Gaussian noise of scale ``sigma_k sqrt(Delta_k)`` to every
  candidate's count with the run's :class:`~ctdc_spark.dp.NoiseSource` (OpenDP's exact sampler in
  production; a test source keys its draws by the packed candidate) and marks the candidates above
  the threshold.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from ctdc_spark._random import mix64
from ctdc_spark.combos.enumeration import (
    CHUNK_ROWS,
    Counts,
    all_parents_kept,
    gather,
    records_by_length,
    reduce_counts,
)
from ctdc_spark.combos.keys import CombinationLookup, KeyLayout, subset_positions
from ctdc_spark.dp import NoiseSource

IntArray = npt.NDArray[np.int64]
_NO_TUPLE = np.iinfo(np.uint64).max


def _record_chunks(
    offsets: IntArray, values: npt.NDArray[np.int32], *, length: int
) -> Iterator[tuple[IntArray, npt.NDArray[np.int32], npt.NDArray[np.int16]]]:
    """Yield ``(rows, ids, positions)``: records of one size ``m >= length`` with their ``length``-subsets.

    Chunks hold at most about :data:`CHUNK_ROWS` tuples, which bounds a task's memory.
    """
    for m, rows_of_m in records_by_length(offsets).items():
        if m < length:
            continue
        positions = subset_positions(m, length)
        step = max(1, CHUNK_ROWS // len(positions))
        for start in range(0, len(rows_of_m), step):
            rows = rows_of_m[start : start + step]
            yield rows, gather(offsets, values, rows, m), positions


def valid_tuples(
    ids: npt.NDArray[np.int32],
    positions: npt.NDArray[np.int16],
    *,
    keep: CombinationLookup | None,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
    """Return the ``k``-subsets of records of one size and which of them are valid tuples.

    Args:
        ids: ``(n, m)`` sorted attribute ids of ``n`` records.
        positions: ``(C, k)`` subset positions (:func:`subset_positions`).
        keep: The survivors of level ``k - 1``; None at level 1, where every attribute is valid.

    Returns:
        ``combos`` ``(n * C, k)`` and ``valid`` ``(n, C)``.
    """
    n, per_record, k = len(ids), len(positions), positions.shape[1]
    combos = ids[:, positions].reshape(-1, k)
    if keep is None:
        return combos, np.ones((n, per_record), dtype=bool)
    return combos, all_parents_kept(combos, keep).reshape(n, per_record)


def tuple_count_histogram(
    offsets: IntArray, values: npt.NDArray[np.int32], *, length: int, keep: CombinationLookup | None
) -> IntArray:
    """Histogram of ``|W_u|`` over a batch of records: ``hist[v]`` records have ``v`` valid tuples.

    Args:
        offsets, values: CSR records (sorted attribute ids).
        length: The level ``k``.
        keep: Survivors of level ``k - 1`` (None at level 1).

    Returns:
        int64 histogram; records with fewer than ``k`` attributes count at 0.
    """
    sizes = np.zeros(len(offsets) - 1, dtype=np.int64)
    for rows, ids, positions in _record_chunks(offsets, values, length=length):
        _, valid = valid_tuples(ids, positions, keep=keep)
        sizes[rows] = valid.sum(axis=1)
    return np.bincount(sizes).astype(np.int64)


def selection_hashes(
    key: int, record_ids: IntArray, words: IntArray, per_record: int
) -> npt.NDArray[np.uint64]:
    """Keyed 64-bit hash of ``(key, record id, tuple)`` for every tuple of every record.

    Args:
        key: The run's secret contribution key (64 bits).
        record_ids: ``(n,)`` stable record ids.
        words: ``(n * per_record, n_words)`` packed tuples, record-major.
        per_record: Tuples per record.

    Returns:
        ``(n, per_record)`` uint64 hashes.
    """
    with np.errstate(over="ignore"):
        seed = mix64(np.asarray(record_ids, dtype=np.int64).astype(np.uint64) ^ np.uint64(key))
        h = np.repeat(seed, per_record)
        for column in np.asarray(words, dtype=np.int64).T:
            h = mix64(h ^ column.astype(np.uint64))
    return h.reshape(len(record_ids), per_record)


def keep_lowest(
    hashes: npt.NDArray[np.uint64], valid: npt.NDArray[np.bool_], allowed: int
) -> npt.NDArray[np.bool_]:
    """Mark, per row, the ``allowed`` valid entries with the smallest hash (all valid ones if fewer).

    Args:
        hashes: ``(n, C)`` selection hashes.
        valid: ``(n, C)`` valid-tuple mask.
        allowed: ``Delta_k`` >= 0.

    Returns:
        ``(n, C)`` mask with at most ``allowed`` True values per row, all of them valid.
    """
    if allowed <= 0:
        return np.zeros_like(valid)
    if valid.shape[1] <= allowed:
        return valid.copy()
    ranked = np.where(valid, hashes, _NO_TUPLE)
    lowest = np.argpartition(ranked, allowed - 1, axis=1)[:, :allowed]
    chosen = np.zeros_like(valid)
    np.put_along_axis(chosen, lowest, True, axis=1)
    return chosen & valid


def bounded_tuple_counts(
    offsets: IntArray,
    values: npt.NDArray[np.int32],
    record_ids: IntArray,
    *,
    layout: KeyLayout,
    length: int,
    keep: CombinationLookup | None,
    allowed: int,
    key: int,
) -> Counts:
    """Count the valid tuples of a batch after bounding every record to ``allowed`` of them.

    Args:
        offsets, values: CSR records (sorted attribute ids).
        record_ids: Stable record id of each record (the selection hash input).
        layout: Key packing.
        length: The level ``k``.
        keep: Survivors of level ``k - 1`` (None at level 1).
        allowed: ``Delta_k``.
        key: The run's secret contribution key.

    Returns:
        Pre-aggregated counts of this batch (``min_record`` is not meaningful here).
    """
    parts: list[Counts] = []
    for rows, ids, positions in _record_chunks(offsets, values, length=length):
        combos, valid = valid_tuples(ids, positions, keep=keep)
        words = layout.pack(combos)
        hashes = selection_hashes(key, record_ids[rows], words, len(positions))
        chosen = keep_lowest(hashes, valid, allowed).ravel()
        picked = words[chosen]
        parts.append(
            reduce_counts(
                [Counts(picked, np.ones(len(picked), dtype=np.int64), np.zeros(len(picked), dtype=np.int64))],
                layout.n_words,
            )
        )
    return reduce_counts(parts, layout.n_words)


def noisy_release(
    counts: IntArray,
    *,
    source: NoiseSource,
    scale: float,
    threshold: float,
    length: int,
    words: IntArray,
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Add discrete Gaussian noise to a level's counts and mark the released candidates (Step B.5-B.6).

    Args:
        counts: Bounded counts of the candidates (0 for candidates no record holds).
        source: The run's noise source.
        scale: ``sigma_k sqrt(Delta_k)``.
        threshold: The level's released threshold.
        length: The level ``k`` (the source's stream).
        words: ``(n, n_words)`` packed candidates (the source's keys).

    Returns:
        ``(noisy, above)``: int64 noisy counts and ``noisy > threshold and noisy > 0``.
    """
    noisy = source.gaussian_integers(counts, scale, stream=length, keys=words)
    return noisy, (noisy > threshold) & (noisy > 0)
