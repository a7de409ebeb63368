"""The offline explorer (docs/explorer.md): one self-contained ``index.html`` from public artefacts only.

:mod:`.model` is the payload contract (typed, checked dataclasses), :mod:`.compile` turns a payload into the
compact model the page reads, :mod:`.html` writes the page.
"""

from __future__ import annotations

from ctdc_spark.publish._explorer.compile import compile_payload
from ctdc_spark.publish._explorer.html import build_explorer, json_for_script, render_html
from ctdc_spark.publish._explorer.model import EMPTY_STATS, SUPPORTED_LANGUAGES, ExplorerPayload

__all__ = [
    "EMPTY_STATS",
    "SUPPORTED_LANGUAGES",
    "ExplorerPayload",
    "build_explorer",
    "compile_payload",
    "json_for_script",
    "render_html",
]
