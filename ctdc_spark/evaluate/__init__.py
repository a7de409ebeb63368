"""The evaluate stage (:mod:`.stage`): verify the synthetic data's guarantee, then measure its fidelity.

``_verify``, ``_compare`` and ``_rare`` run in Spark; the metrics (``_metrics``) are plain Python.
:mod:`.stats` is public: the statistics evaluation.json hands the publish stage, with the
:class:`AgreementRule` they applied, which the release states for the explorer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctdc_spark._lazy import stage_entry
from ctdc_spark.evaluate.stats import AgreementRule

if TYPE_CHECKING:
    from ctdc_spark.evaluate.stage import run_evaluate

__all__ = ["AgreementRule", "run_evaluate"]

__getattr__ = stage_entry(__name__, "run_evaluate")
