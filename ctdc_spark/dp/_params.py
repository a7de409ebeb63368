"""Deterministic DP-marginals parameters: presets, budget split, sigmas and thresholds (docs/spec.md 3.4).

Everything here is plain arithmetic on the configuration except :func:`protected_number_of_records`,
which draws one discrete Laplace sample from a :class:`~ctdc_spark.dp._noise.NoiseSource`. The
level-wise aggregator calls these per length ``k``; none of them touch Spark.

Step A of docs/spec.md 3.4 (``dp/noise_parameters.rs`` in SDS):

1. ``eps_N = N_p * eps`` and ``eps_M = eps - eps_N`` when the record count is protected, else
   ``eps_M = eps`` (:func:`split_epsilon`).
2. ``rho = (sqrt(eps_M + ln(2/delta)) - sqrt(ln(2/delta)))^2``: the zCDP budget that converts to
   ``(eps_M, delta/2)``-DP (Bun & Steinke 2016, Prop. 1.3). The other ``delta/2`` is spent by the
   length-1 threshold, so the marginals are ``(eps_M, delta)``-DP and the release ``(eps, delta)``-DP.
3. ``eps_Q = sqrt(2 rho Q_p / L)``, the same at every length.
4. ``K = sum 1/p_k^2``, ``sigma = sqrt(K / (2 rho (1 - Q_p)))``, ``sigma_k = p_k sigma``; checked by
   ``L eps_Q^2 / 2 + sum 1/(2 sigma_k^2) == rho``.

**Delta.** Exactly one rule applies (:func:`resolve_delta`), with ``n'`` the protected record count
when ``number_of_records_epsilon_proportion`` is set and the true count otherwise:

* ``delta`` given: used as is;
* ``delta_factor`` given: ``delta = 1 / (delta_factor * n')``. This is the Python pipeline's rule
  (docs/spec.md 3.4.2) except that SDS uses the *true* n even when a protected n exists; we use ``n'``
  because delta is published in the release metadata and ``1/(f n)`` would give the exact record
  count away;
* neither: ``delta = 1 / (n' ln n')``, SDS's runtime default (needs ``n' >= 2``).

When the record count is not protected (``number_of_records_epsilon_proportion: null``) ``n'`` is
the true count, as in SDS; the exact count is then public anyway (docs/spec.md 3.4 step C.4).
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

from ctdc_spark.config import DpConfig, ThresholdType
from ctdc_spark.dp._noise import PRODUCTION_NOISE, NoiseSource
from ctdc_spark.errors import ConfigError, CtdcInternalError, InputDataError, StageFailedError

__all__ = [
    "DEFAULT_ADAPTIVE_ETA",
    "DEFAULT_FIXED_THRESHOLD",
    "BudgetEntry",
    "DeltaRule",
    "NoiseParameters",
    "RhoEntry",
    "ThresholdSpec",
    "compute_noise_parameters",
    "discrete_gaussian_tail",
    "inverse_normal_cdf",
    "noise_parameters_for",
    "protected_number_of_records",
    "released_threshold",
    "resolve_delta",
    "sigma_proportions_for",
    "split_epsilon",
    "threshold_rho",
    "thresholds_for",
    "zcdp_rho",
]

DEFAULT_FIXED_THRESHOLD = 0.0
"""Fixed threshold for a length 2..L that has no custom value (SDS ``unwrap_or(0.0)``)."""

DEFAULT_ADAPTIVE_ETA = 1.0
"""Adaptive eta for a length 2..L that has no custom value; eta = 1 gives threshold 0."""

_CONSISTENCY_TOLERANCE = 1e-8
"""SDS ``DEFAULT_TOLERANCE``: absolute tolerance of the rho-consistency check of Step A."""

_STANDARD_NORMAL = NormalDist()

DeltaRule = Literal["explicit", "delta_factor", "default"]


# --------------------------------------------------------------------------------------------
# Presets (docs/spec.md 3.4.2)
# --------------------------------------------------------------------------------------------


def sigma_proportions_for(cfg: DpConfig, length: int) -> tuple[float, ...]:
    """Return the sigma proportions ``p_1..p_L`` of the configured accuracy mode.

    Args:
        cfg: The DP configuration (``accuracy_mode``, ``sigma_proportions``).
        length: Reporting length L >= 1.

    Returns:
        ``L`` positive proportions: prioritize_long ``1/(i+1)``, prioritize_short ``1/(L-i)``,
        balanced ``1.0``, custom the configured list (i = 0..L-1).

    Raises:
        ConfigError: If L < 1, or the custom list is missing, has the wrong length or a value
            that is not a finite number > 0.

    Example:
        >>> sigma_proportions_for(DpConfig(accuracy_mode="prioritize_long"), 3)
        (1.0, 0.5, 0.3333333333333333)
    """
    _check_length(length)
    mode = cfg.accuracy_mode
    if mode == "prioritize_long":
        return tuple(1.0 / (i + 1) for i in range(length))
    if mode == "prioritize_short":
        return tuple(1.0 / (length - i) for i in range(length))
    if mode == "balanced":
        return (1.0,) * length
    if mode == "custom":
        if cfg.sigma_proportions is None:
            raise ConfigError(
                "privacy.dp.sigma_proportions: required when accuracy_mode is custom; give one value per "
                f"length, e.g. {[round(1.0 / (i + 1), 2) for i in range(length)]}."
            )
        return _check_sigma_proportions(cfg.sigma_proportions, length)
    raise ConfigError(
        f"privacy.dp.accuracy_mode: {mode!r} is not supported; use prioritize_long, prioritize_short, "
        "balanced or custom."
    )


@dataclass(frozen=True)
class ThresholdSpec:
    """Per-length suppression thresholds for lengths 2..L (length 1 is fixed by the proof).

    Attributes:
        threshold_type: ``"adaptive"`` (values are eta in (0, 1]) or ``"fixed"`` (values are
            count thresholds >= 0).
        length: Reporting length L.
        values: One value for every length 2..L (empty when L = 1).
    """

    threshold_type: ThresholdType
    length: int
    values: Mapping[int, float]

    def value_for(self, k: int) -> float:
        """Return the eta (adaptive) or threshold (fixed) of length ``k``.

        Args:
            k: Combination length, 2..L.

        Returns:
            The configured or default value.

        Raises:
            ValueError: If ``k`` is outside 2..L.
        """
        if k not in self.values:
            raise ValueError(
                f"k: threshold values exist for lengths 2..{self.length}, got {k!r}; length 1 uses the "
                "fixed threshold of the privacy proof (threshold_rho computes it)."
            )
        return self.values[k]


def _progressive_etas(length: int) -> dict[int, float]:
    if length == 2:
        return {2: 0.1}
    ratio = 0.9 / (length - 2)
    return {k: min(0.1 + ratio * (k - 2), 1.0) for k in range(2, length + 1)}


def thresholds_for(cfg: DpConfig, length: int) -> ThresholdSpec:
    """Return the thresholds of the configured fabrication mode for lengths 2..L.

    Presets are adaptive (as in the SDS web app): uncontrolled eta = 1.0 everywhere; progressive
    0.1 at length 2 rising linearly to 1.0 at L (0.1 if L = 2); balanced 0.55 at length 2 and
    1.0 above; minimize 0.01 everywhere. ``custom`` uses ``threshold_type`` and
    ``threshold_values``, missing lengths defaulting to 0.0 (fixed) or 1.0 (adaptive).

    Args:
        cfg: The DP configuration (``fabrication_mode``, ``threshold_type``, ``threshold_values``).
        length: Reporting length L >= 1.

    Returns:
        A :class:`ThresholdSpec` with a value for every length 2..L.

    Raises:
        ConfigError: If L < 1, a preset is combined with ``threshold_type: fixed``, or a custom
            key/value is out of range.

    Example:
        >>> dict(thresholds_for(DpConfig(fabrication_mode="progressive"), 4).values)
        {2: 0.1, 3: 0.55, 4: 1.0}
    """
    _check_length(length)
    mode = cfg.fabrication_mode
    if mode != "custom":
        if cfg.threshold_type != "adaptive":
            raise ConfigError(
                f"privacy.dp.threshold_type: the {mode!r} fabrication mode defines adaptive thresholds; "
                "set threshold_type: adaptive, or use fabrication_mode: custom with fixed threshold_values."
            )
        if cfg.threshold_values:
            raise ConfigError("privacy.dp.threshold_values: only used with fabrication_mode: custom.")
        presets: dict[str, dict[int, float]] = {
            "uncontrolled": dict.fromkeys(range(2, length + 1), 1.0),
            "progressive": _progressive_etas(length) if length >= 2 else {},
            "balanced": {k: (0.55 if k == 2 else 1.0) for k in range(2, length + 1)},
            "minimize": dict.fromkeys(range(2, length + 1), 0.01),
        }
        if mode not in presets:
            raise ConfigError(
                f"privacy.dp.fabrication_mode: {mode!r} is not supported; use uncontrolled, progressive, "
                "balanced, minimize or custom."
            )
        return ThresholdSpec("adaptive", length, types.MappingProxyType(presets[mode]))

    kind = cfg.threshold_type
    if kind not in ("adaptive", "fixed"):
        raise ConfigError(f"privacy.dp.threshold_type: {kind!r} is not allowed; use adaptive or fixed.")
    default = DEFAULT_ADAPTIVE_ETA if kind == "adaptive" else DEFAULT_FIXED_THRESHOLD
    values = dict.fromkeys(range(2, length + 1), default)
    for k, v in cfg.threshold_values.items():
        if k == 1:
            raise ConfigError(
                "privacy.dp.threshold_values: no threshold for length 1 (it is fixed by the privacy proof); "
                "use lengths 2..L."
            )
        if not 2 <= k <= length:
            raise ConfigError(f"privacy.dp.threshold_values: length {k} is outside 2..{length}.")
        value = float(v)
        if kind == "adaptive" and not 0 < value <= 1:
            raise ConfigError(f"privacy.dp.threshold_values.{k}: adaptive values must be in (0, 1].")
        if kind == "fixed" and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"privacy.dp.threshold_values.{k}: fixed thresholds must be finite and >= 0.")
        values[k] = value
    return ThresholdSpec(kind, length, types.MappingProxyType(values))


# --------------------------------------------------------------------------------------------
# Step A: budget split and noise scales
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetEntry:
    """One (epsilon, delta) item of the privacy budget; the entries of a run add up to the total.

    Attributes:
        component: ``"number_of_records"`` (discrete Laplace, pure DP) or ``"marginals"`` (zCDP noise,
            percentiles and the length-1 threshold together).
        epsilon: Epsilon spent.
        delta: Delta spent.
    """

    component: str
    epsilon: float
    delta: float


@dataclass(frozen=True)
class RhoEntry:
    """One zCDP item inside the marginals budget; the entries add up to ``rho``.

    Attributes:
        component: ``"percentile"`` (allowed sensitivity of a level, exponential mechanism with
            ``eps_Q``, i.e. ``eps_Q^2 / 2``-zCDP) or ``"gaussian"`` (noisy counts of a level,
            ``1 / (2 sigma_k^2)``-zCDP for L2 sensitivity ``sqrt(Delta_k)`` and noise
            ``sigma_k sqrt(Delta_k)``).
        length: The combination length k.
        rho: zCDP parameter spent.
    """

    component: str
    length: int
    rho: float


@dataclass(frozen=True)
class NoiseParameters:
    """Result of Step A: everything the level-wise aggregator needs, and nothing sensitive.

    The true record count is deliberately not stored, so this object can be logged or written
    to the run manifest.

    Attributes:
        epsilon: Total epsilon of the DP aggregation.
        delta: The delta used (see :attr:`delta_rule`).
        delta_rule: Which rule produced delta: ``explicit``, ``delta_factor`` or ``default``.
        number_of_records_epsilon: ``eps_N`` (0.0 when the record count is not protected).
        marginals_epsilon: ``eps_M``.
        rho: zCDP budget of the marginals.
        percentile_epsilon: ``eps_Q``, used by the DP percentile at every length.
        base_sigma: ``sigma`` before the per-length proportions.
        sigma_proportions: ``p_1..p_L``.
        sigmas: ``sigma_1..sigma_L`` (index ``k - 1``).
        protected_number_of_records: The noisy record count, or None when not protected.
    """

    epsilon: float
    delta: float
    delta_rule: DeltaRule
    number_of_records_epsilon: float
    marginals_epsilon: float
    rho: float
    percentile_epsilon: float
    base_sigma: float
    sigma_proportions: tuple[float, ...]
    sigmas: tuple[float, ...]
    protected_number_of_records: int | None

    @property
    def reporting_length(self) -> int:
        """Reporting length L."""
        return len(self.sigmas)

    def sigma_for(self, k: int) -> float:
        """Return ``sigma_k`` of combination length ``k`` (1..L).

        Raises:
            ValueError: If ``k`` is outside 1..L.
        """
        if not 1 <= k <= len(self.sigmas):
            raise ValueError(f"k: must be in 1..{len(self.sigmas)}, got {k!r}.")
        return self.sigmas[k - 1]

    def noise_scale(self, k: int, allowed_sensitivity: int) -> float:
        """Return ``sigma_k sqrt(Delta_k)``, the discrete Gaussian scale of level ``k``.

        Raises:
            ValueError: If ``k`` is outside 1..L.
        """
        return self.sigma_for(k) * math.sqrt(allowed_sensitivity)

    def budget_split(self) -> tuple[BudgetEntry, ...]:
        """Return the (epsilon, delta) items for the budget ledger; they sum to (epsilon, delta)."""
        entries = []
        if self.protected_number_of_records is not None:
            entries.append(BudgetEntry("number_of_records", self.number_of_records_epsilon, 0.0))
        entries.append(BudgetEntry("marginals", self.marginals_epsilon, self.delta))
        return tuple(entries)

    def rho_split(self) -> tuple[RhoEntry, ...]:
        """Return the zCDP items of the marginals per length; they sum to :attr:`rho`.

        The length-1 threshold spends the remaining ``delta / 2`` outside the zCDP accounting.
        """
        entries = []
        for k, sigma_k in enumerate(self.sigmas, start=1):
            entries.append(RhoEntry("percentile", k, self.percentile_epsilon**2 / 2.0))
            entries.append(RhoEntry("gaussian", k, 1.0 / (2.0 * sigma_k**2)))
        return tuple(entries)


def split_epsilon(epsilon: float, number_of_records_epsilon_proportion: float | None) -> tuple[float, float]:
    """Split the total epsilon between the record count and the marginals.

    Args:
        epsilon: Total epsilon, finite and > 0.
        number_of_records_epsilon_proportion: ``N_p`` in (0, 1), or None to not protect the count.

    Returns:
        ``(eps_N, eps_M)``; ``eps_N`` is 0.0 when ``N_p`` is None.

    Raises:
        ConfigError: If a value is out of range.

    Example:
        >>> split_epsilon(4.0, 0.005)
        (0.02, 3.98)
    """
    eps = _check_epsilon(epsilon)
    if number_of_records_epsilon_proportion is None:
        return 0.0, eps
    n_p = _check_open_unit(
        "number_of_records_epsilon_proportion",
        "privacy.dp.number_of_records_epsilon_proportion",
        number_of_records_epsilon_proportion,
        "e.g. 0.005, or null to publish the exact count",
    )
    eps_n = n_p * eps
    return eps_n, eps - eps_n


def resolve_delta(
    *, delta: float | None, delta_factor: float | None, n_true: int, protected_n: int | None
) -> tuple[float, DeltaRule]:
    """Return the delta to use and the rule that produced it (see the module docstring).

    Args:
        delta: Explicit delta in (0, 1), or None.
        delta_factor: ``f`` for ``delta = 1 / (f n')``, or None.
        n_true: True number of records (used only when ``protected_n`` is None).
        protected_n: Protected number of records, or None when the count is not protected.

    Returns:
        ``(delta, rule)``.

    Raises:
        ConfigError: If both ``delta`` and ``delta_factor`` are set, or a value is out of range.
        ValueError: If the record count needed for the rule is not a whole number >= 1.
        InputDataError: If the record count is too small to derive a delta below 1.
    """
    _precheck_delta(delta, delta_factor)
    if delta is not None:
        return float(delta), "explicit"
    n = _check_count_argument("protected_n", protected_n) if protected_n is not None else None
    n_prime = n if n is not None else _check_count_argument("n_true", n_true)
    rule: DeltaRule
    if delta_factor is not None:
        value, rule = 1.0 / (float(delta_factor) * n_prime), "delta_factor"
    else:
        value = 1.0 / (n_prime * math.log(n_prime)) if n_prime >= 2 else math.inf
        rule = "default"
    if not 0.0 < value < 1.0:
        raise InputDataError(
            "privacy.dp: the record count is too small to derive delta from it; set privacy.dp.delta "
            "explicitly (e.g. 1e-6)" + (" or a larger delta_factor." if rule == "delta_factor" else ".")
        )
    return value, rule


def zcdp_rho(epsilon: float, delta: float) -> float:
    """Return the zCDP rho equivalent to ``(epsilon, delta / 2)``-DP (Bun & Steinke).

    Args:
        epsilon: Epsilon of the marginals, > 0.
        delta: Total delta in (0, 1); half of it is converted here.

    Returns:
        ``(sqrt(epsilon + ln(2/delta)) - sqrt(ln(2/delta)))^2``.
    """
    log_term = math.log(2.0 / delta)
    root = math.sqrt(epsilon + log_term) - math.sqrt(log_term)
    return root * root


def _consistency_tolerance(delta: float) -> float:
    # docs/spec.md 3.4: min(1e-8, the power of ten at or below delta); SDS uses the constant 1e-8.
    return min(_CONSISTENCY_TOLERANCE, 10.0 ** math.floor(math.log10(delta)))


def compute_noise_parameters(
    *,
    epsilon: float,
    delta: float | None,
    delta_factor: float | None,
    n_true: int,
    protected_n: int | None,
    length: int,
    sigma_proportions: Sequence[float],
    percentile_epsilon_proportion: float,
    number_of_records_epsilon_proportion: float | None,
) -> NoiseParameters:
    """Compute Step A of docs/spec.md 3.4: budget split, delta, rho, eps_Q and the sigmas.

    Args:
        epsilon: Total epsilon, finite and > 0.
        delta: Explicit delta in (0, 1), or None to derive it.
        delta_factor: ``f`` for ``delta = 1 / (f n')``, or None.
        n_true: True number of records; used only to derive delta when the count is not
            protected, and never stored.
        protected_n: The output of :func:`protected_number_of_records` when
            ``number_of_records_epsilon_proportion`` is set, else None.
        length: Reporting length L >= 1.
        sigma_proportions: ``p_1..p_L`` (see :func:`sigma_proportions_for`).
        percentile_epsilon_proportion: ``Q_p`` in (0, 1).
        number_of_records_epsilon_proportion: ``N_p`` in (0, 1), or None.

    Returns:
        The :class:`NoiseParameters`.

    Raises:
        ConfigError: If a configured value is out of range or ``protected_n`` does not match
            ``number_of_records_epsilon_proportion``.
        ValueError: If a record count needed for delta is not a whole number >= 1.
        InputDataError: If delta must be derived from a record count that is too small.
        CtdcInternalError: If the consistency check ``L eps_Q^2/2 + sum 1/(2 sigma_k^2) = rho``
            fails (a bug).

    Example:
        >>> p = compute_noise_parameters(epsilon=4.0, delta=None, delta_factor=None, n_true=10_000,
        ...     protected_n=10_000, length=2, sigma_proportions=(1.0, 0.5),
        ...     percentile_epsilon_proportion=0.01, number_of_records_epsilon_proportion=0.005)
        >>> round(p.rho, 5), p.delta_rule
        (0.28199, 'default')
    """
    proportions = _validate_step_a_inputs(
        epsilon=epsilon,
        length=length,
        sigma_proportions=sigma_proportions,
        percentile_epsilon_proportion=percentile_epsilon_proportion,
        number_of_records_epsilon_proportion=number_of_records_epsilon_proportion,
    )
    if (number_of_records_epsilon_proportion is None) != (protected_n is None):
        raise ConfigError(
            "protected_n: must be given exactly when privacy.dp.number_of_records_epsilon_proportion is set "
            "(compute it with protected_number_of_records first), and must be None otherwise."
        )
    eps_n, eps_m = split_epsilon(epsilon, number_of_records_epsilon_proportion)
    delta_value, rule = resolve_delta(
        delta=delta, delta_factor=delta_factor, n_true=n_true, protected_n=protected_n
    )
    n_prime = protected_n if protected_n is not None else n_true
    if delta_value * n_prime >= 1.0:
        warnings.warn(
            "privacy.dp: delta is not smaller than 1/(number of records), which allows releasing a "
            "record in the clear with non-negligible probability; use a smaller delta or delta_factor > 1.",
            stacklevel=2,
        )

    q_p = float(percentile_epsilon_proportion)
    rho = zcdp_rho(eps_m, delta_value)
    percentile_epsilon = math.sqrt(2.0 * rho * q_p / length)
    k_sum = math.fsum(1.0 / (p * p) for p in proportions)
    base_sigma = math.sqrt(k_sum / (2.0 * rho * (1.0 - q_p)))
    sigmas = tuple(p * base_sigma for p in proportions)

    spent = length * percentile_epsilon**2 / 2.0 + math.fsum(1.0 / (s * s) for s in sigmas) / 2.0
    if not abs(spent - rho) <= _consistency_tolerance(delta_value):
        raise CtdcInternalError(
            f"DP sigma computation is inconsistent: spent rho {spent!r} != budget rho {rho!r}; this is a bug."
        )
    return NoiseParameters(
        epsilon=float(epsilon),
        delta=delta_value,
        delta_rule=rule,
        number_of_records_epsilon=eps_n,
        marginals_epsilon=eps_m,
        rho=rho,
        percentile_epsilon=percentile_epsilon,
        base_sigma=base_sigma,
        sigma_proportions=proportions,
        sigmas=sigmas,
        protected_number_of_records=protected_n,
    )


def protected_number_of_records(n: int, epsilon_n: float, source: NoiseSource = PRODUCTION_NOISE) -> int:
    """Return ``n + L``, the published record count, with ``L`` discrete Laplace of scale ``1 / eps_N``.

    SDS rounds ``n + Laplace(1 / eps_N)``; the discrete Laplace mechanism releases an integer
    directly and is ``eps_N``-DP for a count (OpenDP's ``make_laplace`` on integers).
    Every call spends ``eps_N``: call it once per run and keep the result.

    Args:
        n: True number of records, >= 0.
        epsilon_n: ``eps_N`` from :func:`split_epsilon`, finite and > 0.
        source: Where the noise comes from (OpenDP unless a test passes its own).

    Returns:
        The protected count, >= 1.

    Raises:
        ValueError: If ``n`` is negative or ``epsilon_n`` is not a finite number > 0.
        StageFailedError: If the noisy count is <= 0 (SDS asserts the same).
    """
    count = _check_count_argument("n", n, minimum=0)
    eps = float(epsilon_n)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"epsilon_n: must be a finite number > 0, got {epsilon_n!r}.")
    protected = source.laplace_integer(count, 1.0 / eps)
    if protected <= 0:
        raise StageFailedError(
            "the noisy number of records came out <= 0: the data set is too small for the record-count "
            "budget. Increase privacy.dp.number_of_records_epsilon_proportion (or epsilon), or set it to "
            "null to publish the exact count. Note that re-running draws new noise and spends the budget "
            "again."
        )
    return protected


def noise_parameters_for(
    cfg: DpConfig,
    *,
    length: int,
    n_true: int,
    source: NoiseSource = PRODUCTION_NOISE,
    protected_n: int | None = None,
) -> NoiseParameters:
    """Run Step A from a config: validate, protect the record count if configured, compute.

    All configuration checks run before any noise is drawn, so a bad config never spends budget.

    Args:
        cfg: The DP configuration.
        length: Reporting length L >= 1.
        n_true: True number of records.
        source: Where the record count's noise comes from (OpenDP unless a test passes its own).
        protected_n: A noisy record count drawn earlier (a resumed run reuses it rather than
            spending budget on a new draw); drawn here when None and configured.

    Returns:
        The :class:`NoiseParameters`.

    Raises:
        ConfigError: If the configuration is invalid.
        InputDataError: If delta must be derived from a record count that is too small.
        StageFailedError: If the noisy record count is <= 0.
    """
    proportions = sigma_proportions_for(cfg, length)
    _validate_step_a_inputs(
        epsilon=cfg.epsilon,
        length=length,
        sigma_proportions=proportions,
        percentile_epsilon_proportion=cfg.percentile_epsilon_proportion,
        number_of_records_epsilon_proportion=cfg.number_of_records_epsilon_proportion,
    )
    _precheck_delta(cfg.delta, cfg.delta_factor)
    eps_n, _ = split_epsilon(cfg.epsilon, cfg.number_of_records_epsilon_proportion)
    protected = protected_n
    if protected is None and cfg.number_of_records_epsilon_proportion is not None:
        protected = protected_number_of_records(n_true, eps_n, source)
    return compute_noise_parameters(
        epsilon=cfg.epsilon,
        delta=cfg.delta,
        delta_factor=cfg.delta_factor,
        n_true=n_true,
        protected_n=protected,
        length=length,
        sigma_proportions=proportions,
        percentile_epsilon_proportion=cfg.percentile_epsilon_proportion,
        number_of_records_epsilon_proportion=cfg.number_of_records_epsilon_proportion,
    )


# --------------------------------------------------------------------------------------------
# Step B.6: thresholds
# --------------------------------------------------------------------------------------------


def inverse_normal_cdf(p: float) -> float:
    """Return the standard normal quantile Phi^-1(p).

    Uses :meth:`statistics.NormalDist.inv_cdf`, Wichura's algorithm AS241 (relative error about
    1e-16), so no scipy dependency is needed.

    Args:
        p: Probability in (0, 1).

    Returns:
        The quantile.

    Raises:
        ValueError: If ``p`` is not strictly between 0 and 1.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p: must be strictly between 0 and 1, got {p!r}.")
    return _STANDARD_NORMAL.inv_cdf(p)


def threshold_rho(k: int, sigma_k: float, delta_k: int, delta: float, spec: ThresholdSpec) -> float:
    """Return the suppression threshold rho_k of length ``k`` (docs/spec.md 3.4 step B.6).

    A candidate survives iff ``noisy > rho_k`` and ``noisy > 0``.

    * k = 1: ``1 + sigma_1 sqrt(Delta_1) Phi^-1((1 - delta/2)^(1/Delta_1))``, fixed by the proof.
      Computed through the upper tail ``q = 1 - (1 - delta/2)^(1/Delta_1)`` with ``expm1``/``log1p``
      and ``Phi^-1(1 - q) = -Phi^-1(q)``, which stays accurate when ``q`` is tiny.
    * k >= 2, fixed: the configured value.
    * k >= 2, adaptive: ``sigma_k sqrt(Delta_k) Phi^-1(1 - min(eta_k / 2, 0.5))`` (SDS uses
      ``Delta_k`` here; SDS's docs show ``Delta_1``).

    Args:
        k: Combination length, 1..L.
        sigma_k: ``sigma_k`` from :class:`NoiseParameters`, > 0.
        delta_k: Allowed sensitivity ``Delta_k`` of this level (the DP percentile), >= 1. A
            level with ``Delta_k = 0`` is dropped entirely and needs no threshold.
        delta: The run's delta in (0, 1) (not to be confused with ``delta_k``).
        spec: Thresholds of lengths 2..L from :func:`thresholds_for`.

    Returns:
        The threshold rho_k.

    Raises:
        ValueError: If an argument is out of range.

    Example:
        >>> spec = ThresholdSpec("adaptive", 2, {2: 1.0})
        >>> threshold_rho(2, 3.0, 10, 1e-5, spec)
        0.0
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k: must be a combination length >= 1, got {k!r}.")
    sigma = float(sigma_k)
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma_k: must be a finite number > 0, got {sigma_k!r}.")
    if isinstance(delta_k, bool) or not isinstance(delta_k, int) or delta_k < 1:
        raise ValueError(
            f"delta_k: the allowed sensitivity must be a whole number >= 1, got {delta_k!r}; a level "
            "with allowed sensitivity 0 is dropped entirely and needs no threshold."
        )
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta: must be in (0, 1), got {delta!r}.")
    scale = sigma * math.sqrt(delta_k)
    if k == 1:
        upper_tail = -math.expm1(math.log1p(-delta / 2.0) / delta_k)
        return 1.0 - scale * inverse_normal_cdf(upper_tail)
    if k > spec.length:
        raise ValueError(f"k: must be <= the reporting length {spec.length}, got {k}.")
    value = spec.value_for(k)
    if spec.threshold_type == "fixed":
        return value
    # + 0.0 turns the -0.0 of eta = 1 (Phi^-1(0.5) = 0) into 0.0.
    return scale * -inverse_normal_cdf(min(value / 2.0, 0.5)) + 0.0


_TAIL_SPAN = 40.0
"""The discrete Gaussian's mass beyond ``_TAIL_SPAN`` scales (``exp(-800)``) is below a double's range."""


def discrete_gaussian_tail(scale: float) -> npt.NDArray[np.float64]:
    """Return ``tail[m] = P(Z >= m)``, ``m = 0, 1, ...``, for ``Z`` discrete Gaussian of parameter ``scale``.

    ``P(Z = z) ~ exp(-z^2 / (2 scale^2))`` on the integers (Canonne, Kamath & Steinke 2020), the
    distribution of OpenDP's ``make_gaussian`` on integers. Summed from the far tail inwards, so
    tiny tails keep their relative precision.

    Args:
        scale: sigma, finite and > 0.

    Returns:
        float64 array up to ``ceil(40 scale)``, where the tail is 0 in double precision.

    Raises:
        ValueError: If ``scale`` is not a finite number > 0.
    """
    sigma = float(scale)
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"scale: must be a finite number > 0, got {scale!r}.")
    z = np.arange(math.ceil(_TAIL_SPAN * sigma) + 2, dtype=np.float64)
    weights = np.exp(-(z * z) / (2.0 * sigma * sigma))
    normaliser = 2.0 * math.fsum(weights) - weights[0]
    tail: npt.NDArray[np.float64] = np.cumsum(weights[::-1])[::-1] / normaliser
    return tail


def released_threshold(k: int, sigma_k: float, delta_k: int, delta: float, spec: ThresholdSpec) -> float:
    """Return the threshold applied to a level's discrete-Gaussian noisy counts (``noisy > threshold``).

    At ``k >= 2`` it is :func:`threshold_rho`: those thresholds only steer fabrication. At ``k = 1``
    the threshold carries the ``delta / 2`` of the privacy proof: an attribute only one record has
    (count 1, absent from the neighbouring data set) may be published with probability at most
    ``q = 1 - (1 - delta/2)^(1/Delta_1)`` per attribute. SDS's ``rho_1`` achieves that for
    *continuous* Gaussian noise; the discrete Gaussian has a heavier tail at the integers (about a
    continuity correction of half a count), so ``1 + Z > rho_1`` can exceed ``q``. The threshold
    here is ``max(rho_1, m)`` with ``m`` the smallest integer such that ``P(Z >= m) <= q``: since
    ``1 + Z > m`` exactly when ``Z >= m``, the bound holds exactly for the discrete noise, and the
    released counts differ from SDS's rule by at most one count of threshold.

    Args:
        k: Combination length, 1..L.
        sigma_k: ``sigma_k``, > 0.
        delta_k: Allowed sensitivity ``Delta_k`` >= 1.
        delta: The run's delta in (0, 1).
        spec: Thresholds of lengths 2..L.

    Returns:
        The threshold.

    Raises:
        ValueError: If an argument is out of range (see :func:`threshold_rho`).
    """
    rho = threshold_rho(k, sigma_k, delta_k, delta, spec)
    if k != 1:
        return rho
    per_attribute = -math.expm1(math.log1p(-delta / 2.0) / delta_k)
    tail = discrete_gaussian_tail(float(sigma_k) * math.sqrt(delta_k))
    smallest = int(np.argmax(tail <= per_attribute))  # the tail reaches 0, so some m qualifies
    return max(rho, float(smallest))


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _check_length(length: int) -> int:
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ConfigError(
            f"privacy.reporting_length: DP aggregation needs an explicit L >= 1, got {length!r} "
            "(0 = all lengths is not supported with DP)."
        )
    return length


def _check_epsilon(epsilon: float) -> float:
    eps = float(epsilon)
    if not (math.isfinite(eps) and eps >= 2.0**-50):
        raise ConfigError(f"privacy.dp.epsilon: must be a finite number > 0 (e.g. 4.0), got {epsilon!r}.")
    return eps


def _check_open_unit(name: str, key: str, value: float, hint: str) -> float:
    v = float(value)
    if not 0.0 < v < 1.0:
        raise ConfigError(f"{key} ({name}): must be strictly between 0 and 1 ({hint}), got {value!r}.")
    return v


def _precheck_delta(delta: float | None, delta_factor: float | None) -> None:
    if delta is not None and delta_factor is not None:
        raise ConfigError("privacy.dp: set either delta or delta_factor, not both.")
    if delta is not None:
        _check_open_unit("delta", "privacy.dp.delta", delta, "e.g. 1e-6, or null to derive it")
    if delta_factor is not None:
        factor = float(delta_factor)
        if not (math.isfinite(factor) and factor > 0):
            raise ConfigError("privacy.dp.delta_factor: must be a finite number > 0 (e.g. 10), or null.")


def _check_count_argument(name: str, value: int | None, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        # The value itself is not echoed: record counts can be sensitive.
        raise ValueError(f"{name}: must be a whole number >= {minimum}.")
    return value


def _check_sigma_proportions(values: Sequence[float], length: int) -> tuple[float, ...]:
    proportions = tuple(float(p) for p in values)
    if len(proportions) != length:
        raise ConfigError(
            f"privacy.dp.sigma_proportions: has {len(proportions)} values but reporting_length is {length}; "
            "give exactly one value per length."
        )
    if not all(math.isfinite(p) and p > 0 for p in proportions):
        raise ConfigError("privacy.dp.sigma_proportions: all values must be finite numbers > 0.")
    return proportions


def _validate_step_a_inputs(
    *,
    epsilon: float,
    length: int,
    sigma_proportions: Sequence[float],
    percentile_epsilon_proportion: float,
    number_of_records_epsilon_proportion: float | None,
) -> tuple[float, ...]:
    _check_epsilon(epsilon)
    _check_length(length)
    proportions = _check_sigma_proportions(sigma_proportions, length)
    _check_open_unit(
        "percentile_epsilon_proportion",
        "privacy.dp.percentile_epsilon_proportion",
        percentile_epsilon_proportion,
        "e.g. 0.01",
    )
    split_epsilon(epsilon, number_of_records_epsilon_proportion)
    return proportions
