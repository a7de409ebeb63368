"""Stage packages name their entry point without importing it, so their numpy engines load without pyspark."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def stage_entry(package: str, name: str) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``name`` from ``<package>.stage`` on first use.

    ``from ctdc_spark.synthesize import run_synthesize`` works as usual, while importing a pure
    module such as ``ctdc_spark.synthesize._sampler`` runs the package's ``__init__`` without the
    stage's Spark imports.

    Args:
        package: The package's ``__name__``.
        name: The entry point, e.g. ``run_synthesize``.

    Returns:
        The function to assign to the package's ``__getattr__``.
    """

    def __getattr__(attribute: str) -> object:
        if attribute != name:
            raise AttributeError(f"module {package!r} has no attribute {attribute!r}")
        return getattr(importlib.import_module(f"{package}.stage"), name)

    return __getattr__
