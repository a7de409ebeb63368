"""Synthetic records as CSR arrays (the shape ``mapInArrow`` tasks emit) and their stable ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ctdc_spark.synthesize._row_index import Int32Array, IntArray

SHARD_ID_BITS = 32
"""Records built inside a shard get the stable id ``shard_id << SHARD_ID_BITS | j`` (j-th record of
the shard), so ids are unique across shards and independent of how shards are scheduled."""


def shard_record_id(shard_id: int, j: int) -> int:
    """Stable id of the ``j``-th record built in shard ``shard_id`` (see :func:`shard_record_ids`)."""
    return (shard_id << SHARD_ID_BITS) | j


def shard_record_ids(shard_id: int, count: int) -> IntArray:
    """Stable ids of the first ``count`` records built in shard ``shard_id``.

    Args:
        shard_id: A non-negative shard number below ``2**31``.
        count: Number of records (below ``2**32``).

    Returns:
        ``int64[count]`` ids.

    Example:
        >>> shard_record_ids(3, 2).tolist()
        [12884901888, 12884901889]
    """
    if not 0 <= shard_id < 2**31 or not 0 <= count <= 2**SHARD_ID_BITS:
        raise ValueError("shard ids must lie in [0, 2**31) and shards hold at most 2**32 records")
    return (np.int64(shard_id) << SHARD_ID_BITS) + np.arange(count, dtype=np.int64)


@dataclass(frozen=True)
class SyntheticBatch:
    """Synthetic records: record i is ``indices[indptr[i]:indptr[i + 1]]`` (ascending attribute ids).

    Attributes:
        indptr: ``int64[n + 1]``.
        indices: ``int32[nnz]``.
        record_ids: ``int64[n]``, the stable id whose random stream built each record.
    """

    indptr: IntArray
    indices: Int32Array
    record_ids: IntArray

    def __len__(self) -> int:
        return len(self.record_ids)

    def record(self, i: int) -> Int32Array:
        """Attribute ids of record ``i``."""
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def attribute_counts(self, n_attributes: int) -> IntArray:
        """How many records hold each attribute, ``int64[n_attributes]``."""
        return np.bincount(self.indices, minlength=n_attributes).astype(np.int64)

    @classmethod
    def from_records(cls, records: Sequence[Sequence[int]], record_ids: npt.ArrayLike) -> SyntheticBatch:
        """Build a batch from per-record attribute lists (each already ascending)."""
        lengths = np.fromiter((len(r) for r in records), dtype=np.int64, count=len(records))
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = np.fromiter((a for r in records for a in r), dtype=np.int32, count=int(indptr[-1]))
        ids = np.asarray(record_ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(records):
            raise ValueError("one record id per record is required")
        return cls(indptr, indices, ids)


def concat_batches(parts: Sequence[SyntheticBatch]) -> SyntheticBatch:
    """The records of ``parts`` one after the other (ids kept)."""
    if len(parts) == 1:
        return parts[0]
    lengths = np.concatenate([np.diff(p.indptr) for p in parts]) if parts else np.zeros(0, np.int64)
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.concatenate([p.indices for p in parts]) if parts else np.zeros(0, np.int32)
    ids = np.concatenate([p.record_ids for p in parts]) if parts else np.zeros(0, np.int64)
    return SyntheticBatch(indptr, indices.astype(np.int32), ids)
