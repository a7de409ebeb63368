"""DP percentile that picks each level's allowed sensitivity ``Delta_k`` (docs/spec.md 3.4.1).

Input: ``x = {|W_u|}``, the number of valid candidate tuples of every record at one level, given
as a histogram (``histogram[v]`` = number of records with ``|W_u| = v``) so the Spark stage never
collects per-record values. Output: ``Delta_k``, a noisy estimate of the ``Q``-th percentile.

Two mechanisms, chosen by ``privacy.dp.percentile_mechanism``:

``rank`` (default; :func:`rank_percentile`)
    The exponential mechanism for quantiles with a sensitivity-1 utility over a *public* candidate
    set, so it is ``eps_Q``-DP as the budget split of Step A assumes:

    * candidates: :func:`percentile_candidates` of ``upper_bound``, which the caller derives from
      the public schema (``C(number of expanded columns, k)``, the most valid ``k``-tuples a record
      can have): every integer up to :data:`DENSE_CANDIDATES`, then a geometric grid with ratio
      :data:`GRID_RATIO`, then ``upper_bound`` itself (about 100 candidates below 40,000);
    * utility ``u(v) = -|(1 - a) #{x < v} - a #{x > v}|`` with ``a = Q/100``: adding or removing
      one record changes one of the two counts by 1, so ``u`` moves by at most
      ``max(a, 1 - a) <= 1``;
    * selection: ``P(v) ~ mu(v) exp(eps_Q u(v) / 2)`` with the public base measure of
      :func:`log_base_measure` (flat up to :data:`DENSE_CANDIDATES`, then decaying like
      ``(1 + v)^-PRIOR_EXPONENT``), sampled by OpenDP's report-noisy-max with Gumbel noise of scale
      ``2 / eps_Q`` on the scores ``u(v) + (2 / eps_Q) ln mu(v)`` (the Gumbel-max trick). The
      exponential mechanism is ``eps_Q``-DP for a sensitivity-1 utility and any data-independent
      base measure (McSherry & Talwar 2007); OpenDP states it as ``eps_Q^2 / 8``-zCDP.

    Why the grid and the base measure: every candidate above the data's maximum has the same
    utility, ``-(1 - a) n``, and when the percentile sits in the top value (common at length 1)
    that plateau is the best there is. With equal weights the mechanism would then pick uniformly
    among up to tens of thousands of public candidates, i.e. an allowed sensitivity far above the
    data and noise that drowns every count. The grid shrinks the plateau to a few dozen
    candidates, and the base measure makes its first candidate (just above the maximum) the most
    likely; between neighbouring grid points it weighs like ``6 ln(1.1) / (eps_Q / 2)`` records
    (about 23 at ``eps_Q = 0.05``), a negligible bias at CTDC sizes. It is flat over the dense
    part so that small values (and 0, which empties a level) are not favoured. Costs: ``Delta_k`` lies on a
    10% grid (at most ~5% more noise than the exact percentile), and with few records
    (``n (1 - a) eps_Q / 2`` below ~5) ``Delta_k`` is less accurate than SDS's; never privacy.

``sds_compatible`` (:func:`dp_percentile` on the expanded histogram)
    Reproduces SDS bit for bit: ``P = floor(R8 quantile of x at Q/100)`` (statrs
    ``Data::percentile``), ``i_P`` the last index of the sorted ``x`` with ``x[i] <= P`` and
    ``v_P = x[i_P]``; candidates ``v = 0..max(x)`` get the integer score ``-q(v)`` of
    :func:`percentile_scores`; ``Delta = argmax_v score(v) + Exp(rate = eps_Q / 2)``, drawn by
    OpenDP's report-noisy-max with exponential noise of scale ``2 / eps_Q`` (the same distribution
    as SDS's; only the sampler is exact now, so the chosen values follow SDS's law, not its
    random stream). It falls short
    of the exponential mechanism in two ways, so the ``(epsilon, delta)`` statement of a release
    made with it is nominal, not proven:

    * the candidate range ``0..max(x)`` depends on the data, so a value above the true maximum can
      never be chosen;
    * the score is measured from ``i_P``, which can move by many positions when one record is added
      (for example ``x = [0, 1]`` vs ``[0, 1, 1]`` at Q = 60 changes the score of ``v = 0`` by 2), so
      the score's sensitivity is not 1 and the mechanism is not ``eps_Q``-DP.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from ctdc_spark.dp._noise import PRODUCTION_NOISE, NoiseSource, SelectionNoise
from ctdc_spark.errors import CtdcInternalError

__all__ = [
    "DENSE_CANDIDATES",
    "GRID_RATIO",
    "PERCENTILE_NOISE",
    "PRIOR_EXPONENT",
    "PercentileMechanism",
    "allowed_sensitivity",
    "dp_percentile",
    "log_base_measure",
    "percentile_candidates",
    "percentile_noise_scale",
    "percentile_scores",
    "r8_quantile",
    "rank_percentile",
    "rank_utilities",
]

PercentileMechanism = Literal["rank", "sds_compatible"]

PERCENTILE_NOISE: dict[PercentileMechanism, SelectionNoise] = {
    "rank": "gumbel",
    "sds_compatible": "exponential",
}
"""The report-noisy-max noise of each mechanism: Gumbel is the exponential mechanism, exponential is SDS's."""

DENSE_CANDIDATES = 10
"""Every integer ``0..DENSE_CANDIDATES`` is a candidate of the rank mechanism."""

GRID_RATIO = 1.1
"""Above :data:`DENSE_CANDIDATES`, consecutive candidates of the rank mechanism differ by this factor."""

PRIOR_EXPONENT = 6.0
"""Above :data:`DENSE_CANDIDATES` the rank mechanism's base measure decays like ``(1 + v)^-exponent``."""


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
    x: npt.ArrayLike, q_percent: float, epsilon: float, *, source: NoiseSource = PRODUCTION_NOISE
) -> int:
    """Return a DP estimate of the ``Q``-th percentile of ``x`` (report-noisy-max).

    Args:
        x: Per-record counts ``|W_u|`` of one level.
        q_percent: ``Q`` in (0, 100] (``privacy.dp.percentile_percentage``).
        epsilon: ``eps_Q``; the noise is Exponential with rate ``eps_Q / 2`` (scale ``2 / eps_Q``).
        source: Where the noise comes from (OpenDP unless a test passes its own).

    Returns:
        The selected candidate ``Delta`` in ``0..max(x)``; 0 for empty ``x``.

    Raises:
        ValueError: If an argument is out of range.
    """
    scale = percentile_noise_scale(epsilon)
    scores = percentile_scores(x, q_percent)
    if scores.size == 0:
        return 0
    return source.noisy_max(scores, scale, noise=PERCENTILE_NOISE["sds_compatible"])


def percentile_noise_scale(epsilon: float) -> float:
    """Return the report-noisy-max noise scale ``2 / eps_Q`` of both mechanisms (scores of sensitivity 1).

    Raises:
        ValueError: If ``epsilon`` is not a finite number > 0.
    """
    eps = float(epsilon)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(
            f"epsilon: must be a finite number > 0 (the percentile epsilon eps_Q), got {epsilon!r}."
        )
    return 2.0 / eps


def _as_histogram(histogram: npt.ArrayLike) -> npt.NDArray[np.int64]:
    counts = np.asarray(histogram)
    if counts.ndim != 1 or (counts.size and (counts.dtype.kind not in "iu" or counts.min() < 0)):
        raise ValueError("histogram: must be a 1-d array of record counts >= 0.")
    return counts.astype(np.int64)


def percentile_candidates(upper_bound: int) -> npt.NDArray[np.int64]:
    """Return the public candidate set of the rank mechanism for values in ``0..upper_bound``.

    Args:
        upper_bound: Largest value a record can have, from public information only.

    Returns:
        Sorted distinct int64 candidates: ``0..min(upper_bound, DENSE_CANDIDATES)``, then
        ``ceil(DENSE_CANDIDATES * GRID_RATIO^j)`` below ``upper_bound``, then ``upper_bound``.

    Raises:
        ValueError: If ``upper_bound`` is negative.

    Example:
        >>> percentile_candidates(3).tolist()
        [0, 1, 2, 3]
        >>> percentile_candidates(30).tolist()
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 17, 18, 20, 22, 24, 26, 29, 30]
    """
    if isinstance(upper_bound, bool) or not isinstance(upper_bound, int | np.integer) or upper_bound < 0:
        raise ValueError(f"upper_bound: must be a whole number >= 0, got {upper_bound!r}.")
    top = int(upper_bound)
    dense = np.arange(min(top, DENSE_CANDIDATES) + 1, dtype=np.int64)
    if top <= DENSE_CANDIDATES:
        return dense
    steps = math.ceil(math.log(top / DENSE_CANDIDATES) / math.log(GRID_RATIO))
    grid = np.ceil(DENSE_CANDIDATES * GRID_RATIO ** np.arange(1, steps + 1)).astype(np.int64)
    return np.unique(np.concatenate((dense, grid[grid < top], [top])))


def log_base_measure(candidates: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Log of the rank mechanism's public base measure (unnormalised).

    Args:
        candidates: Candidate values >= 0.

    Returns:
        ``-PRIOR_EXPONENT * max(0, ln((1 + v) / (1 + DENSE_CANDIDATES)))`` per candidate.

    Example:
        >>> log_base_measure([0, 10, 21]).round(3).tolist()
        [0.0, 0.0, -4.159]
    """
    values = np.asarray(candidates, dtype=np.float64)
    # + 0.0 turns -0.0 into 0.0 on the flat part.
    return -PRIOR_EXPONENT * np.maximum(0.0, np.log1p(values) - math.log1p(DENSE_CANDIDATES)) + 0.0


def rank_utilities(
    histogram: npt.ArrayLike, q_percent: float, candidates: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Return the rank utility ``-|(1 - a) #{x < v} - a #{x > v}|`` of every candidate ``v``.

    Args:
        histogram: ``histogram[v]`` = number of records with value ``v``.
        q_percent: ``Q`` in (0, 100].
        candidates: Candidate values (any non-negative integers).

    Returns:
        float64 utilities, one per candidate; each changes by at most 1 when one record is added
        or removed.

    Raises:
        ValueError: If an argument is out of range.

    Example:
        >>> rank_utilities([0, 2, 0, 1], 50, [0, 1, 2, 3, 4]).tolist()
        [-1.5, -0.5, -0.5, -1.0, -1.5]
    """
    a = _check_percent(q_percent) / 100.0
    counts = _as_histogram(histogram)
    values = np.asarray(candidates, dtype=np.int64)
    at_most = np.concatenate(([0], np.cumsum(counts)))  # at_most[v + 1] = #{x <= v}
    n = int(at_most[-1])
    clipped = np.minimum(values, counts.size)  # every record is below a candidate past the histogram
    below = at_most[clipped]
    above = n - at_most[np.minimum(values + 1, counts.size)]
    return -np.abs((1.0 - a) * below - a * above)


def rank_percentile(
    histogram: npt.ArrayLike,
    q_percent: float,
    epsilon: float,
    upper_bound: int,
    *,
    source: NoiseSource = PRODUCTION_NOISE,
) -> int:
    """Return an ``epsilon``-DP estimate of the ``Q``-th percentile (exponential mechanism).

    Samples ``P(v) ~ mu(v) exp(epsilon u(v) / 2)`` over the public candidates as
    ``argmax_v u(v) + (2 / epsilon) ln mu(v) + G_v`` with ``G_v`` Gumbel of scale ``2 / epsilon``
    (report-noisy-max) and ``mu`` the base measure of :func:`log_base_measure`; see the module
    docstring.

    Args:
        histogram: ``histogram[v]`` = number of records with value ``v``; no record may exceed
            ``upper_bound``.
        q_percent: ``Q`` in (0, 100].
        epsilon: ``eps_Q``.
        upper_bound: Public upper bound of the values (see :func:`percentile_candidates`).
        source: Where the noise comes from (OpenDP unless a test passes its own).

    Returns:
        The selected candidate.

    Raises:
        ValueError: If an argument is out of range.
        CtdcInternalError: If a record exceeds ``upper_bound`` (the bound is wrong: a bug).
    """
    scale = percentile_noise_scale(epsilon)
    counts = _as_histogram(histogram)
    if counts[upper_bound + 1 :].any():
        raise CtdcInternalError("a record has more valid tuples than the public upper bound; this is a bug.")
    candidates = percentile_candidates(upper_bound)
    scores = rank_utilities(counts, q_percent, candidates) + scale * log_base_measure(candidates)
    return int(candidates[source.noisy_max(scores, scale, noise=PERCENTILE_NOISE["rank"])])


def allowed_sensitivity(
    histogram: npt.ArrayLike,
    *,
    mechanism: PercentileMechanism,
    q_percent: float,
    epsilon: float,
    upper_bound: int,
    source: NoiseSource = PRODUCTION_NOISE,
) -> int:
    """Return ``Delta_k`` for one level with the configured percentile mechanism.

    Args:
        histogram: ``histogram[v]`` = number of records with ``|W_u| = v``.
        mechanism: ``"rank"`` (:func:`rank_percentile`) or ``"sds_compatible"``
            (:func:`dp_percentile`, SDS's scores; see the module docstring).
        q_percent: ``Q`` in (0, 100].
        epsilon: ``eps_Q``.
        upper_bound: Public upper bound of ``|W_u|`` (used by ``rank`` only).
        source: Where the noise comes from (OpenDP unless a test passes its own).

    Returns:
        The allowed sensitivity, >= 0.

    Raises:
        ValueError: If an argument is out of range or the mechanism is unknown.
    """
    if mechanism == "rank":
        return rank_percentile(histogram, q_percent, epsilon, upper_bound, source=source)
    if mechanism == "sds_compatible":
        counts = _as_histogram(histogram)
        return dp_percentile(np.repeat(np.arange(counts.size), counts), q_percent, epsilon, source=source)
    raise ValueError(f"mechanism: {mechanism!r} is not supported; use rank or sds_compatible.")
