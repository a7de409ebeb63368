"""The publish stage (:mod:`.stage`): the offline explorer and the release metadata, from public artefacts.

``_explorer`` holds the page's payload model (``model``), its compilation and the page itself, ``_bundle``
the bundle's README and codebook, all in plain Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctdc_spark._lazy import stage_entry

if TYPE_CHECKING:
    from ctdc_spark.publish.stage import run_publish

__all__ = ["run_publish"]

__getattr__ = stage_entry(__name__, "run_publish")
