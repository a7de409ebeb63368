"""The prepare stage: the sensitive input becomes the ``records``, ``attributes`` and ``columns`` tables.

``stage`` holds the Spark orchestration (:func:`ctdc_spark.prepare.stage.run_prepare`); ``_layout``
(the header, column roles and input files) is plain Python, so ``ctdc-spark validate`` checks a
config against its input without pyspark installed. Its names the CLI, the pipeline and publish
use are re-exported here.
"""

from ctdc_spark.prepare._layout import bin_labels, inspect_input, list_input_files

__all__ = ["bin_labels", "inspect_input", "list_input_files"]
