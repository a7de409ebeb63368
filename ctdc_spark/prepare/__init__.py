"""The prepare stage (:mod:`.stage`): the input becomes the ``records``, ``attributes``, ``columns`` tables.

``_layout`` (the header, column roles and input files) is plain Python, so ``ctdc-spark validate``
checks a config against its input without pyspark installed. Its names the CLI, the pipeline and
publish use are re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctdc_spark._lazy import stage_entry
from ctdc_spark.prepare._layout import bin_labels, inspect_input, list_input_files

if TYPE_CHECKING:
    from ctdc_spark.prepare.stage import run_prepare

__all__ = ["bin_labels", "inspect_input", "list_input_files", "run_prepare"]

__getattr__ = stage_entry(__name__, "run_prepare")
