"""The aggregate stage (:mod:`.stage`): sensitive counts, reportable aggregates, risk analysis.

``_dp`` is its differentially private mode, ``_dp_tasks`` that mode's numpy tasks; the counting
itself is the shared combinations kernel, :mod:`ctdc_spark.combos`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctdc_spark._lazy import stage_entry

if TYPE_CHECKING:
    from ctdc_spark.aggregate.stage import run_aggregate

__all__ = ["run_aggregate"]

__getattr__ = stage_entry(__name__, "run_aggregate")
