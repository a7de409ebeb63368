"""The privacy a DP-marginals release spent, as OpenDP's privacy maps state it.

Step A (:mod:`._params`) budgets the release with SDS's arithmetic: ``rho`` from ``(eps_M, delta/2)``
by Bun & Steinke's conversion, ``eps_Q^2 / 2`` per percentile and ``1 / (2 sigma_k^2)`` per level.
This module asks OpenDP (:mod:`._opendp`) what the measurements that actually ran cost:

* the record count: the discrete Laplace mechanism's epsilon (pure DP);
* each level's percentile: the report-noisy-max's rho, Gumbel noise (``rank``: the exponential
  mechanism, ``eps_Q^2 / 8``) or exponential noise (``sds_compatible``: ``eps_Q``-DP converted to
  ``eps_Q^2 / 2``-zCDP); both maps assume scores of sensitivity 1, which SDS's scores are not, so
  for ``sds_compatible`` the figures are nominal;
* each level's counts: the discrete Gaussian mechanism's rho at L2 sensitivity ``sqrt(Delta_k)``.

The marginals' rho add up (zCDP composes by addition), OpenDP converts the sum to epsilon at
``delta / 2``, the length-1 threshold spends the other ``delta / 2`` (:func:`._params.released_threshold`),
and the record count's epsilon is added (basic composition). The result can only be tighter than the
configured ``(epsilon, delta)``, because OpenDP's conversion is tighter than Bun & Steinke's and the
exponential mechanism's zCDP bound tighter than ``eps_Q^2 / 2``; :func:`privacy_accounting` refuses
a release where it is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ctdc_spark.dp import _opendp
from ctdc_spark.dp._params import NoiseParameters
from ctdc_spark.dp._percentile import PERCENTILE_NOISE, PercentileMechanism, percentile_noise_scale
from ctdc_spark.errors import CtdcInternalError

__all__ = ["MeasurementLoss", "PrivacyAccounting", "privacy_accounting"]

_MECHANISM_NAMES = {
    "gumbel": "report noisy max (Gumbel noise): the exponential mechanism",
    "exponential": "report noisy max (exponential noise)",
}
_SLACK = 1e-9
"""Relative slack for OpenDP's maps, which round up in the last bits."""


@dataclass(frozen=True)
class MeasurementLoss:
    """The privacy loss of one measurement of the release, as its OpenDP privacy map states it.

    Attributes:
        component: ``number_of_records``, ``percentile`` or ``counts``.
        length: The combination length (None for the record count).
        mechanism: ``discrete Laplace``, ``discrete Gaussian`` or a report-noisy-max variant.
        measure: ``pure DP`` (``epsilon``) or ``zCDP`` (``rho``).
        value: The epsilon or rho.
    """

    component: str
    length: int | None
    mechanism: str
    measure: str
    value: float


@dataclass(frozen=True)
class PrivacyAccounting:
    """What a release spent, composed from OpenDP's per-measurement losses.

    Attributes:
        losses: Every measurement that ran.
        rho: Sum of the marginals' zCDP losses (percentiles and counts).
        marginals_epsilon: OpenDP's conversion of ``rho`` to epsilon at ``delta / 2``.
        number_of_records_epsilon: The discrete Laplace epsilon (0 when the count is exact).
        epsilon: ``marginals_epsilon + number_of_records_epsilon``.
        delta: ``delta / 2`` (conversion) + ``delta / 2`` (length-1 threshold).
        proven: False for ``sds_compatible`` (its percentile scores do not have sensitivity 1).
    """

    losses: tuple[MeasurementLoss, ...]
    rho: float
    marginals_epsilon: float
    number_of_records_epsilon: float
    epsilon: float
    delta: float
    proven: bool


def privacy_accounting(
    params: NoiseParameters, allowed_sensitivities: Sequence[int], mechanism: PercentileMechanism
) -> PrivacyAccounting:
    """Compose OpenDP's losses of the measurements a release ran (see the module docstring).

    Args:
        params: Step A of the run.
        allowed_sensitivities: ``Delta_k`` of every level that ran, in order (a level with
            ``Delta_k = 0`` spent its percentile but drew no count noise).
        mechanism: The percentile mechanism.

    Returns:
        The :class:`PrivacyAccounting`.

    Raises:
        ValueError: If more levels than L are given.
        CtdcInternalError: If OpenDP states more than the configured (epsilon, delta) (a bug).
    """
    if len(allowed_sensitivities) > params.reporting_length:
        raise ValueError(f"allowed_sensitivities: at most L = {params.reporting_length} levels.")
    losses: list[MeasurementLoss] = []
    count_epsilon = 0.0
    if params.protected_number_of_records is not None:
        count_epsilon = _opendp.laplace_epsilon(1.0 / params.number_of_records_epsilon)
        losses.append(
            MeasurementLoss("number_of_records", None, "discrete Laplace", "pure DP", count_epsilon)
        )
    noise = PERCENTILE_NOISE[mechanism]
    selection_scale = percentile_noise_scale(params.percentile_epsilon)
    for k, allowed in enumerate(allowed_sensitivities, start=1):
        losses.append(
            MeasurementLoss(
                "percentile",
                k,
                _MECHANISM_NAMES[noise],
                "zCDP",
                _opendp.noisy_max_rho(selection_scale, noise),
            )
        )
        if allowed > 0:
            rho_k = _opendp.gaussian_rho(params.noise_scale(k, allowed), math.sqrt(allowed))
            losses.append(MeasurementLoss("counts", k, "discrete Gaussian", "zCDP", rho_k))
    rho = math.fsum(loss.value for loss in losses if loss.measure == "zCDP")
    marginals_epsilon = _opendp.zcdp_epsilon(rho, params.delta / 2.0) if rho > 0 else 0.0
    epsilon = marginals_epsilon + count_epsilon
    if epsilon > params.epsilon * (1.0 + _SLACK) or rho > params.rho * (1.0 + _SLACK):
        raise CtdcInternalError(
            "OpenDP's accounting exceeds the configured privacy budget; the noise scales are wrong (a bug)."
        )
    return PrivacyAccounting(
        losses=tuple(losses),
        rho=rho,
        marginals_epsilon=marginals_epsilon,
        number_of_records_epsilon=count_epsilon,
        epsilon=epsilon,
        delta=params.delta,
        proven=mechanism == "rank",
    )
