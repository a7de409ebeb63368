"""DP percentile by report-noisy-max, as SDS picks each level's allowed sensitivity (SPEC.md 3.4.1).

Input: ``x = {|W_u|}``, the number of valid candidate tuples of every record at one level.
Output: ``Delta_k``, a noisy estimate of the ``Q``-th percentile of ``x``.

1. ``P = floor(R8 quantile of x at Q/100)`` (statrs ``Data::percentile``), ``i_P`` the last index
   of the sorted ``x`` with ``x[i] <= P`` and ``v_P = x[i_P]``.
2. Candidates ``v = 0..max(x)`` get the integer score ``-q(v)`` of :func:`percentile_scores`.
3. ``Delta = argmax_v score(v) + Exp(rate = eps_Q / 2)``; ties keep the first (smallest) ``v``.

This reproduces SDS bit for bit, including two properties that fall short of the textbook
exponential mechanism (reported to the project lead; see also the tests):

* the candidate range ``0..max(x)`` depends on the data, so a value above the true maximum can
  never be chosen;
* the score is measured from ``i_P``, which can move by many positions when one record is added
  (for example ``x = [0, 1]`` vs ``[0, 1, 1]`` at Q = 60 changes the score of ``v = 0`` by 2), so
  the score's sensitivity is not 1 and the mechanism is not exactly ``eps_Q``-DP.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ctdc_spark.dp._noise import NoiseSource, exponential

__all__ = ["dp_percentile", "percentile_scores", "r8_quantile"]


def _as_sorted_counts(x: npt.ArrayLike) -> npt.NDArray[np.int64]:
    arr = np.asarray(x)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            # Values are per-record counts, i.e. sensitive: never echo them.
            raise ValueError("x: must contain whole numbers (per-record tuple counts).")
    values = arr.astype(np.int64).ravel()
    if values.min() < 0:
        raise ValueError("x: per-record tuple counts must be >= 0.")
    return np.sort(values)


def _check_percent(q_percent: float) -> float:
    q = float(q_percent)
    if not 0.0 < q <= 100.0:
        raise ValueError(
            f"q_percent: must be in (0, 100], e.g. 99, got {q_percent!r} (privacy.dp.percentile_percentage)."
        )
    return q


def r8_quantile(sorted_values: npt.ArrayLike, tau: float) -> float:
    """Return the R-8 (median-unbiased) quantile, with statrs' exact arithmetic.

    ``h = (n + 1/3) tau + 1/3``; the minimum if ``floor(h) < 1`` or ``tau = 0``, the maximum if
    ``floor(h) >= n`` or ``tau = 1``, else ``a + (h - floor(h)) (b - a)`` with ``a``, ``b`` the order
    statistics ``floor(h)`` and ``floor(h) + 1`` (1-based).

    Args:
        sorted_values: Values sorted ascending.
        tau: Quantile in [0, 1].

    Returns:
        The quantile; NaN for empty input (as statrs).

    Raises:
        ValueError: If ``tau`` is outside [0, 1].

    Example:
        >>> r8_quantile([0, 1, 4, 5, 5, 8, 11, 12, 12, 15], 0.6)
        9.6
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau: must be in [0, 1], got {tau!r}.")
    values = np.asarray(sorted_values, dtype=np.float64).ravel()
    n = values.size
    if n == 0:
        return math.nan
    h = (n + 1.0 / 3.0) * tau + 1.0 / 3.0
    hf = int(h)
    if hf <= 0 or tau == 0.0:
        return float(values[0])
    if hf >= n or tau == 1.0:
        return float(values[-1])
    a = float(values[hf - 1])
    b = float(values[hf])
    return a + (h - hf) * (b - a)


def percentile_scores(x: npt.ArrayLike, q_percent: float) -> npt.NDArray[np.int64]:
    """Return SDS's quality scores ``-q(v)`` for the candidates ``v = 0..max(x)``.

    ``q(v_P) = 0``. Below ``v_P``: ``i_P - lastIndex(v)`` if ``v`` occurs; otherwise
    ``ceil(n Q/100)`` for the very first candidate and ``max(q(v - 1), 1)`` after it. Above
    ``v_P``: ``ceil(n (1 - Q/100))`` at ``v = max(x)``; ``lastIndex(v) - i_P`` if ``v`` occurs;
    otherwise ``max(q(v - 1), 1)``.

    Args:
        x: Per-record counts ``|W_u|`` (whole numbers >= 0, any order).
        q_percent: ``Q`` in (0, 100].

    Returns:
        int64 array of length ``max(x) + 1`` (empty for empty ``x``); index = candidate ``v``.

    Raises:
        ValueError: If ``x`` holds negative or fractional values or ``q_percent`` is out of range.

    Example:
        >>> percentile_scores([5, 4], 60).tolist()
        [-2, -2, -2, -2, 0, -1]
    """
    p = _check_percent(q_percent) / 100.0
    xs = _as_sorted_counts(x)
    n = xs.size
    if n == 0:
        return np.empty(0, dtype=np.int64)
    percentile = math.floor(r8_quantile(xs, p))
    i_p = int(np.searchsorted(xs, percentile, side="right")) - 1
    v_p = int(xs[i_p])
    v_max = int(xs[-1])

    counts = np.bincount(xs, minlength=v_max + 1)
    present = counts > 0
    last_index = np.cumsum(counts) - 1  # last position of v in xs, meaningful where present
    q = np.zeros(v_max + 1, dtype=np.int64)

    # Below v_P: present values score by rank distance; absent ones repeat the previous score.
    if v_p > 0:
        initial = math.ceil(n * p)
        q[:v_p] = _fill_absent(i_p - last_index[:v_p], present[:v_p], initial, clamp_first=False)
    # Above v_P: same, seeded by q(v_P) = 0; the maximum has its own rule.
    if v_max > v_p:
        q[v_p + 1 :] = _fill_absent(last_index[v_p + 1 :] - i_p, present[v_p + 1 :], 0, clamp_first=True)
        q[v_max] = math.ceil(n * (1.0 - p))
    return -q


def _fill_absent(
    rank_distance: npt.NDArray[np.int64], present: npt.NDArray[np.bool_], seed: int, *, clamp_first: bool
) -> npt.NDArray[np.int64]:
    """Vectorised ``q = distance if present else max(previous q, 1)`` over one side of ``v_P``.

    ``seed`` is the score before the first position. Because ``max(., 1)`` is idempotent, the
    chain of absent values equals ``max(last present distance or seed, 1)``; only an absent first
    position below ``v_P`` takes the seed unclamped (``clamp_first=False``), as in SDS.
    """
    positions = np.arange(present.size)
    source = np.maximum.accumulate(np.where(present, positions, -1))
    carried = np.where(source >= 0, rank_distance[np.maximum(source, 0)], seed)
    filled = np.maximum(carried, 1)
    if not clamp_first and not present[0]:
        filled[0] = seed
    return np.where(present, rank_distance, filled).astype(np.int64)


def dp_percentile(
    x: npt.ArrayLike, q_percent: float, epsilon: float, *, source: NoiseSource | None = None
) -> int:
    """Return a DP estimate of the ``Q``-th percentile of ``x`` (report-noisy-max).

    Args:
        x: Per-record counts ``|W_u|`` of one level.
        q_percent: ``Q`` in (0, 100] (``privacy.dp.percentile_percentage``).
        epsilon: ``eps_Q``; the noise is Exponential with rate ``eps_Q / 2``.
        source: Test-only noise source override.

    Returns:
        The selected candidate ``Delta`` in ``0..max(x)``; 0 for empty ``x``.

    Raises:
        ValueError: If an argument is out of range.
    """
    eps = float(epsilon)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(
            f"epsilon: must be a finite number > 0 (the percentile epsilon eps_Q), got {epsilon!r}."
        )
    scores = percentile_scores(x, q_percent)
    if scores.size == 0:
        return 0
    noisy = scores + exponential(eps / 2.0, int(scores.size), source=source)
    # np.argmax returns the first maximum: a later candidate must be strictly greater to win.
    return int(np.argmax(noisy))
