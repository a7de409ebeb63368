"""The numpy engines and the explorer builder import without pyspark: a regression would tie them to Spark.

Each check runs in a fresh interpreter whose import system refuses ``pyspark`` and ``py4j``, so a
module that reaches Spark, directly or through its package's ``__init__``, fails to import.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]

_WITHOUT_SPARK = """
import importlib
import sys


class RefuseSpark:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("pyspark", "py4j"):
            raise ImportError(f"{name} refused: this check runs without pyspark")
        return None


sys.meta_path.insert(0, RefuseSpark())
for module in sys.argv[1:]:
    importlib.import_module(module)
"""

PURE_MODULES = [
    "ctdc_spark.combos.keys",
    "ctdc_spark.combos.enumeration",
    "ctdc_spark.combos.risk",
    "ctdc_spark.combos.sds_format",
    "ctdc_spark.prepare._layout",
    "ctdc_spark.synthesize._row_index",
    "ctdc_spark.synthesize._sampler",
    "ctdc_spark.synthesize._batch",
    "ctdc_spark.synthesize._combos",
    "ctdc_spark.synthesize._row_seeded",
    "ctdc_spark.synthesize._aggregate_seeded",
    "ctdc_spark.synthesize._unseeded",
    "ctdc_spark.synthesize._fit",
    "ctdc_spark.aggregate._dp_tasks",
    "ctdc_spark.evaluate._metrics",
    "ctdc_spark.evaluate.stats",
    "ctdc_spark.publish._explorer.model",
    "ctdc_spark.publish._explorer.compile",
    "ctdc_spark.publish._explorer.html",
    "ctdc_spark.dp",
    "ctdc_spark.stage",
    "ctdc_spark.cli",
]


def _import_without_spark(*modules: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_SPARK, *modules],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_pure_modules_import_without_pyspark() -> None:
    result = _import_without_spark(*PURE_MODULES)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", ["ctdc_spark.synthesize.stage", "ctdc_spark.combos.counting"])
def test_a_module_that_needs_spark_fails_the_check(module: str) -> None:
    result = _import_without_spark(module)
    assert result.returncode != 0
    assert "pyspark refused" in result.stderr
