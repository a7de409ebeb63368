"""The synthesize stage (:mod:`.stage`): k-synthetic microdata in every SDS mode.

``_distributed`` and ``_export`` run in Spark; the samplers (``_row_index``, ``_sampler``,
``_batch``, ``_combos``, ``_row_seeded``, ``_aggregate_seeded``, ``_unseeded``) are plain numpy
and import without pyspark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctdc_spark._lazy import stage_entry

if TYPE_CHECKING:
    from ctdc_spark.synthesize.stage import run_synthesize

__all__ = ["run_synthesize"]

__getattr__ = stage_entry(__name__, "run_synthesize")
