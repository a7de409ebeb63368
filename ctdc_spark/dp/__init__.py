"""Differential-privacy building blocks for DP marginals (docs/spec.md 3.4), free of Spark.

* :mod:`._params` - presets, budget split (Step A), sigmas and suppression thresholds;
* :mod:`._percentile` - the DP percentile that picks each level's allowed sensitivity (the sound
  ``rank`` mechanism, or SDS's ``sds_compatible`` scores);
* :mod:`._noise` - the :class:`NoiseSource` every DP draw comes from, passed explicitly; the
  production one is OpenDP's exact samplers (:mod:`._opendp`), tests pass their own;
* :mod:`._accounting` - the privacy spent, as OpenDP's privacy maps state it.

The Spark level-wise aggregator (:mod:`ctdc_spark.aggregate._dp`) calls these per combination length.
"""

from __future__ import annotations

from ctdc_spark.dp._accounting import MeasurementLoss, PrivacyAccounting, privacy_accounting
from ctdc_spark.dp._noise import PRODUCTION_NOISE, NoiseSource, OpenDPNoiseSource, SelectionNoise
from ctdc_spark.dp._opendp import OPENDP_VERSION
from ctdc_spark.dp._params import (
    BudgetEntry,
    NoiseParameters,
    RhoEntry,
    ThresholdSpec,
    compute_noise_parameters,
    discrete_gaussian_tail,
    noise_parameters_for,
    protected_number_of_records,
    released_threshold,
    sigma_proportions_for,
    split_epsilon,
    threshold_rho,
    thresholds_for,
)
from ctdc_spark.dp._percentile import (
    PercentileMechanism,
    allowed_sensitivity,
    dp_percentile,
    percentile_candidates,
    percentile_scores,
    r8_quantile,
    rank_percentile,
)

__all__ = [
    "OPENDP_VERSION",
    "PRODUCTION_NOISE",
    "BudgetEntry",
    "MeasurementLoss",
    "NoiseParameters",
    "NoiseSource",
    "OpenDPNoiseSource",
    "PercentileMechanism",
    "PrivacyAccounting",
    "RhoEntry",
    "SelectionNoise",
    "ThresholdSpec",
    "allowed_sensitivity",
    "compute_noise_parameters",
    "discrete_gaussian_tail",
    "dp_percentile",
    "noise_parameters_for",
    "percentile_candidates",
    "percentile_scores",
    "privacy_accounting",
    "protected_number_of_records",
    "r8_quantile",
    "rank_percentile",
    "released_threshold",
    "sigma_proportions_for",
    "split_epsilon",
    "threshold_rho",
    "thresholds_for",
]
