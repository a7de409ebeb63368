"""Engine of ``fitted`` synthesis: weigh a pool of guarantee-safe candidate records to the released
aggregates, then draw integer copies of them.

The candidates come from the other modes' engines, so every one of them already satisfies the
mode's guarantee (k mode: its whole attribute set has support >= k; DP mode: each of its
combinations of length <= L is a released DP combination). Fitting only chooses how many copies of
each candidate to publish, which can neither create a new combination nor read a sensitive record:

1. :func:`unique_candidates` merges the pool into distinct attribute sets in canonical order.
2. :func:`candidate_incidence` lists, for each candidate, the released combinations (length 1..L)
   it holds, as positions in the target lookup; a candidate holding an unreleased combination is
   dropped (it could only come from a bug upstream, and would break the DP statement).
3. :func:`fit_weights` finds non-negative weights ``w`` so that the weighted counts of every
   released combination, ``s = M w``, are close to the released counts ``t``: it minimises a smooth
   L1 (pseudo-Huber) loss of the scaled errors ``(s - t) / scale``, averaged per length (half the
   weight on single attributes, the rest spread evenly over lengths 2..L) plus, when asked, the
   relative error of the record count, by Adam steps on ``log w`` (which keeps ``w`` positive).
   The :class:`FitLoss` sets the scale: in k mode (:data:`RELATIVE_LOSS`) it is ``t`` itself, and
   on 20k CTDC-shaped records the fit comes within about 0.02 MPE per length of a linear
   program's optimum of the plain L1 loss over the same candidates, in 300 steps
   (benchmarks/fidelity.md); in DP mode (:data:`NOISY_TARGET_LOSS`) it is capped, see there.
4. :func:`integer_copies` rounds each weight up or down at random, the uniform number depending
   only on the run key and the candidate's canonical rank, so the output never depends on
   partitioning.

Memory: the fit holds about :data:`BYTES_PER_ENTRY` bytes per (candidate, combination) entry of the
incidence, all on the driver; :func:`incidence_entries` estimates it before it is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ctdc_spark._random import uniforms
from ctdc_spark.combos.keys import CombinationLookup, subset_positions
from ctdc_spark.synthesize._batch import SyntheticBatch
from ctdc_spark.synthesize._row_index import Int32Array, IntArray

FloatArray = npt.NDArray[np.float64]

BYTES_PER_ENTRY = 40
"""Driver bytes per incidence entry during the fit: two int32 indexes kept, and the float64
temporaries of one step (gathered weights, per-entry gradient terms)."""

LEARNING_RATE = 0.05
"""Adam step on ``log w``: a weight moves by at most about 5% per step."""

SINGLES_SHARE = 0.5
"""Share of the loss on single attributes; the official 1-counts are what analysts check first."""


@dataclass(frozen=True)
class FitLoss:
    """How :func:`fit_weights` measures the error of one released combination.

    Attributes:
        huber_delta: Scaled error below which the loss is quadratic (barely pushed further).
        cap_scale_at_length_median: Divide errors by ``min(t, median t of the combination's
            length)`` instead of by ``t``.
    """

    huber_delta: float
    cap_scale_at_length_median: bool

    def scale(self, targets: FloatArray, lengths: IntArray) -> FloatArray:
        """What each combination's error is divided by (at least 1)."""
        scale: FloatArray = np.maximum(targets, 1.0)
        if self.cap_scale_at_length_median:
            medians = np.ones(int(lengths.max(initial=0)) + 1)
            for length in np.unique(lengths):
                medians[length] = max(float(np.median(targets[lengths == length])), 1.0)
            scale = np.minimum(scale, medians[lengths])
        return scale


RELATIVE_LOSS = FitLoss(huber_delta=0.05, cap_scale_at_length_median=False)
"""k mode: the reportable counts are exact (rounded), so relative errors are the aim; errors under
5% are barely pushed further."""

NOISY_TARGET_LOSS = FitLoss(huber_delta=0.02, cap_scale_at_length_median=True)
"""DP mode: every released count carries noise of the same spread, so the relative error of a large
count is mostly fit and that of a small one mostly noise. Above the median count of its length an
error counts in absolute terms (divided by that median), below it relatively, and the loss turns
linear sooner. Measured offline against the exact counts with the same candidates (300 steps),
MAE for lengths 1/2/3 went from 104.8/227.7/111.1 to 81.9/173.9/79.2 on NIST national2019 at
epsilon 1, and from 38.9/61.7/20.7 to 20.4/50.7/17.0 on 20k CTDC-shaped records at epsilon 4
(benchmarks/fidelity.md has the pipeline's numbers)."""


@dataclass(frozen=True)
class FitResult:
    """Fitted weights of the distinct candidates and what the fit reached.

    Attributes:
        candidates: The distinct candidates, canonical order (``record_ids`` are their ranks).
        weights: ``float64[c]``, the fitted (fractional) number of copies of each candidate.
        dropped: Candidates removed because they held an unreleased combination.
    """

    candidates: SyntheticBatch
    weights: FloatArray
    dropped: int


def unique_candidates(pool: SyntheticBatch) -> SyntheticBatch:
    """The distinct non-empty attribute sets of ``pool``, in lexicographic order of their ids.

    The order depends only on the set of candidates, never on how the pool was batched; each
    candidate's ``record_id`` is its rank in that order.

    Example:
        >>> pool = SyntheticBatch.from_records([[2, 5], [1], [2, 5], []], [7, 8, 9, 10])
        >>> u = unique_candidates(pool)
        >>> [u.record(i).tolist() for i in range(len(u))], u.record_ids.tolist()
        ([[1], [2, 5]], [0, 1])
    """
    rows = {tuple(pool.record(i).tolist()) for i in range(len(pool))}
    rows.discard(())
    ordered = sorted(rows)
    return SyntheticBatch.from_records(ordered, np.arange(len(ordered), dtype=np.int64))


def _by_length(candidates: SyntheticBatch) -> dict[int, IntArray]:
    lengths = np.diff(candidates.indptr)
    return {int(m): np.flatnonzero(lengths == m) for m in np.unique(lengths) if m > 0}


def incidence_entries(candidates: SyntheticBatch, max_length: int) -> int:
    """How many (candidate, combination of length 1..L) entries :func:`candidate_incidence` builds."""
    return sum(
        len(rows) * sum(len(subset_positions(m, length)) for length in range(1, min(m, max_length) + 1))
        for m, rows in _by_length(candidates).items()
    )


def candidate_incidence(
    candidates: SyntheticBatch, targets: CombinationLookup, max_length: int
) -> tuple[Int32Array, Int32Array, npt.NDArray[np.bool_]]:
    """Which released combinations each candidate holds.

    Args:
        candidates: Distinct candidates (:func:`unique_candidates`).
        targets: The released counts, every length 1..L.
        max_length: L.

    Returns:
        ``(combo, candidate, kept)``: one entry per (kept candidate, combination of it with length
        1..L), ``combo`` its position in ``targets``' table, ``candidate`` its index in
        ``candidates``; ``kept[c]`` is False for a candidate holding an unreleased combination
        (none of its entries is returned).
    """
    combo_parts: list[Int32Array] = []
    cand_parts: list[Int32Array] = []
    kept = np.ones(len(candidates), dtype=bool)
    for m, rows in _by_length(candidates).items():
        starts = candidates.indptr[rows]
        members = candidates.indices[starts[:, None] + np.arange(m)[None, :]]  # (r, m)
        positions: list[IntArray] = []
        for length in range(1, min(m, max_length) + 1):
            combos = members[:, subset_positions(m, length)]  # (r, C(m, length), length)
            flat = combos.reshape(-1, length)
            positions.append(targets.positions(flat).reshape(len(rows), -1))
        pos = np.hstack(positions)
        ok = (pos >= 0).all(axis=1)
        kept[rows[~ok]] = False
        pos = pos[ok]
        combo_parts.append(pos.ravel().astype(np.int32))
        cand_parts.append(np.repeat(rows[ok], pos.shape[1]).astype(np.int32))
    if not combo_parts:
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty.copy(), kept
    return np.concatenate(combo_parts), np.concatenate(cand_parts), kept


def length_weights(combo_lengths: IntArray, max_length: int) -> FloatArray:
    """Loss weight of each released combination: its length's share divided by that length's size.

    Single attributes get :data:`SINGLES_SHARE` of the loss, lengths 2..L share the rest evenly (all
    of it goes to singles when L = 1), so each length's mean relative error counts, not its size.
    """
    shares = np.zeros(max_length + 1)
    shares[1] = 1.0 if max_length == 1 else SINGLES_SHARE
    if max_length > 1:
        shares[2:] = (1.0 - SINGLES_SHARE) / (max_length - 1)
    sizes = np.bincount(combo_lengths, minlength=max_length + 1).astype(np.float64)
    weights: FloatArray = shares[combo_lengths] / np.maximum(sizes[combo_lengths], 1.0)
    return weights


def _pseudo_huber_slope(scaled: FloatArray, delta: float) -> FloatArray:
    slope: FloatArray = scaled / np.sqrt(1.0 + (scaled / delta) ** 2)
    return slope


def fit_weights(
    combo: Int32Array,
    candidate: Int32Array,
    *,
    target_counts: npt.ArrayLike,
    combo_lengths: npt.ArrayLike,
    n_candidates: int,
    max_length: int,
    record_target: float | None,
    iterations: int,
    loss: FitLoss = RELATIVE_LOSS,
) -> FloatArray:
    """Weights of the candidates whose weighted combination counts best match the targets.

    Args:
        combo: Incidence entries' combination positions (:func:`candidate_incidence`).
        candidate: Incidence entries' candidate indexes.
        target_counts: ``(J,)`` released count of each combination position.
        combo_lengths: ``(J,)`` length of each combination position.
        n_candidates: Number of candidates (weights returned).
        max_length: L.
        record_target: Total number of records to hold the weights to (weighted like one whole
            length of the loss), or ``None`` to let the fit choose it.
        iterations: Adam steps.
        loss: How each combination's error is measured.

    Returns:
        ``float64[n_candidates]`` non-negative weights; candidates with no entry get 0.

    Example:
        >>> # candidates {0}, {1}, {0, 1}; released counts: a0 = 3, a1 = 2, (a0, a1) = 2
        >>> w = fit_weights(np.array([0, 1, 0, 1, 2], np.int32), np.array([0, 1, 2, 2, 2], np.int32),
        ...                 target_counts=[3, 2, 2], combo_lengths=[1, 1, 2], n_candidates=3,
        ...                 max_length=2, record_target=None, iterations=500)
        >>> np.round(w, 1).tolist()
        [1.0, 0.0, 2.0]
    """
    targets = np.asarray(target_counts, dtype=np.float64)
    lengths = np.asarray(combo_lengths, dtype=np.int64)
    scale = loss.scale(targets, lengths)
    importance = length_weights(lengths, max_length) / scale
    has_entry = np.bincount(candidate, minlength=n_candidates) > 0
    n_active = max(int(has_entry.sum()), 1)
    start = (
        record_target if record_target else float(targets[lengths == 1].sum()) / max(max_length, 1)
    ) / n_active
    theta = np.full(n_candidates, np.log(max(start, 1e-9)))
    first = np.zeros(n_candidates)
    second = np.zeros(n_candidates)
    beta1, beta2 = 0.9, 0.999
    for step in range(1, iterations + 1):
        weights = np.where(has_entry, np.exp(theta), 0.0)
        synthetic = np.bincount(combo, weights=weights[candidate], minlength=len(targets))
        slope = _pseudo_huber_slope((synthetic - targets) / scale, loss.huber_delta) * importance
        gradient: FloatArray = weights * np.bincount(candidate, weights=slope[combo], minlength=n_candidates)
        if record_target:
            total_error = (weights.sum() - record_target) / record_target
            total_slope = float(_pseudo_huber_slope(np.array([total_error]), loss.huber_delta)[0])
            gradient += weights * total_slope / record_target
        first = beta1 * first + (1 - beta1) * gradient
        second = beta2 * second + (1 - beta2) * gradient * gradient
        corrected = (first / (1 - beta1**step)) / (np.sqrt(second / (1 - beta2**step)) + 1e-12)
        theta = np.maximum(theta - LEARNING_RATE * corrected, -30.0)
    fitted: FloatArray = np.where(has_entry, np.exp(theta), 0.0)
    return fitted


def integer_copies(weights: FloatArray, key: int) -> IntArray:
    """Round each weight down or up, up with probability its fractional part.

    The uniform number of candidate c is ``uniforms(key, c)``: it depends on the run key and the
    candidate's canonical rank only.

    Example:
        >>> integer_copies(np.array([2.0, 0.0, 1.5]), key=7).tolist()[:2]
        [2, 0]
    """
    floor = np.floor(weights)
    u = uniforms(key, np.arange(len(weights), dtype=np.int64))
    copies: IntArray = (floor + (u < weights - floor)).astype(np.int64)
    return copies


def fitted_records(candidates: SyntheticBatch, copies: IntArray) -> SyntheticBatch:
    """``copies[c]`` copies of each candidate, in canonical order; record ids ``0..N-1``."""
    lengths = np.diff(candidates.indptr)
    rows = np.repeat(np.arange(len(candidates)), copies)
    out_lengths = lengths[rows]
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(out_lengths, out=indptr[1:])
    starts = np.repeat(candidates.indptr[rows], out_lengths)
    offsets = np.arange(int(indptr[-1]), dtype=np.int64) - np.repeat(indptr[:-1], out_lengths)
    indices = candidates.indices[starts + offsets].astype(np.int32)
    return SyntheticBatch(indptr, indices, np.arange(len(rows), dtype=np.int64))


def uncovered_combinations(
    candidates: SyntheticBatch, targets: CombinationLookup, max_length: int
) -> SyntheticBatch:
    """The released combinations no candidate holds, as records (ids: their table positions).

    Example:
        >>> from ctdc_spark.combos.keys import KeyLayout
        >>> layout = KeyLayout(3, 2)
        >>> targets = CombinationLookup(layout, layout.pack(np.array([[0, -1], [1, -1], [0, 1]])), np.ones(3))
        >>> missing = uncovered_combinations(SyntheticBatch.from_records([[0]], [0]), targets, 2)
        >>> [missing.record(i).tolist() for i in range(len(missing))]
        [[0, 1], [1]]
    """
    combo, _, _ = candidate_incidence(candidates, targets, max_length)
    missing = np.flatnonzero(np.bincount(combo, minlength=len(targets)) == 0)
    members = targets.layout.unpack(targets.table_words[missing])
    return SyntheticBatch.from_records([row[row >= 0].tolist() for row in members], missing)


def thin_candidates(
    candidates: SyntheticBatch, max_length: int, *, budget_bytes: int, key: int
) -> tuple[SyntheticBatch, int]:
    """Keep the fit within ``budget_bytes``: drop a random share of the candidates when needed.

    A candidate is kept when its uniform number ``uniforms(key, rank)`` is below the kept share, so
    the choice depends on the run key and the candidate set only.

    Returns:
        The kept candidates (re-ranked) and how many were dropped.
    """
    needed = incidence_entries(candidates, max_length) * BYTES_PER_ENTRY
    if needed <= budget_bytes or not len(candidates):
        return candidates, 0
    keep = uniforms(key, np.arange(len(candidates), dtype=np.int64)) < budget_bytes / needed
    kept = [candidates.record(int(i)).tolist() for i in np.flatnonzero(keep)]
    return SyntheticBatch.from_records(kept, np.arange(len(kept), dtype=np.int64)), int((~keep).sum())


def fit_candidates(
    candidates: SyntheticBatch,
    targets: CombinationLookup,
    *,
    max_length: int,
    record_target: float | None,
    iterations: int,
    loss: FitLoss = RELATIVE_LOSS,
) -> FitResult:
    """:func:`candidate_incidence` and :func:`fit_weights` for distinct candidates."""
    combo, candidate, kept = candidate_incidence(candidates, targets, max_length)
    lengths = (targets.layout.unpack(targets.table_words) >= 0).sum(axis=1)
    weights = fit_weights(
        combo,
        candidate,
        target_counts=targets.table_counts,
        combo_lengths=lengths,
        n_candidates=len(candidates),
        max_length=max_length,
        record_target=record_target,
        iterations=iterations,
        loss=loss,
    )
    return FitResult(candidates, weights, int((~kept).sum()))
