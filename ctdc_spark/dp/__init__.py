"""Differential-privacy building blocks for DP marginals (SPEC.md 3.4), free of Spark.

* :mod:`._params` - presets, budget split (Step A), sigmas and suppression thresholds;
* :mod:`._percentile` - the DP percentile that picks each level's allowed sensitivity (the sound
  ``rank`` mechanism, or SDS's ``sds_compatible`` scores);
* :mod:`._noise` - the only source of DP noise (``os.urandom``; seeded only inside unit tests).

The Spark level-wise aggregator (:mod:`ctdc_spark.aggregate._dp`) calls these per combination length.
"""

from __future__ import annotations

from ctdc_spark.dp._noise import exponential, gaussian, laplace
from ctdc_spark.dp._params import (
    BudgetEntry,
    NoiseParameters,
    RhoEntry,
    ThresholdSpec,
    compute_noise_parameters,
    noise_parameters_for,
    protected_number_of_records,
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
    "BudgetEntry",
    "NoiseParameters",
    "PercentileMechanism",
    "RhoEntry",
    "ThresholdSpec",
    "allowed_sensitivity",
    "compute_noise_parameters",
    "dp_percentile",
    "exponential",
    "gaussian",
    "laplace",
    "noise_parameters_for",
    "percentile_candidates",
    "percentile_scores",
    "protected_number_of_records",
    "r8_quantile",
    "rank_percentile",
    "sigma_proportions_for",
    "split_epsilon",
    "threshold_rho",
    "thresholds_for",
]
