"""Differential-privacy building blocks for DP marginals (SPEC.md 3.4), free of Spark.

* :mod:`._params` - presets, budget split (Step A), sigmas and suppression thresholds;
* :mod:`._percentile` - the DP percentile that picks each level's allowed sensitivity;
* :mod:`._noise` - the only source of DP noise (``os.urandom``; seeded only inside unit tests).

The Spark level-wise aggregator calls these per combination length.
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
from ctdc_spark.dp._percentile import dp_percentile, percentile_scores, r8_quantile

__all__ = [
    "BudgetEntry",
    "NoiseParameters",
    "RhoEntry",
    "ThresholdSpec",
    "compute_noise_parameters",
    "dp_percentile",
    "exponential",
    "gaussian",
    "laplace",
    "noise_parameters_for",
    "percentile_scores",
    "protected_number_of_records",
    "r8_quantile",
    "sigma_proportions_for",
    "split_epsilon",
    "threshold_rho",
    "thresholds_for",
]
