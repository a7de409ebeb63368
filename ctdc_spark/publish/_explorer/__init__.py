"""The offline explorer (EXPLORER.md): :mod:`.compile` checks a payload and compiles the page's model,
:mod:`.html` writes the self-contained ``index.html``.
"""

from __future__ import annotations

from ctdc_spark.publish._explorer.compile import SUPPORTED_LANGUAGES, compile_payload
from ctdc_spark.publish._explorer.html import build_explorer, json_for_script, render_html

__all__ = ["SUPPORTED_LANGUAGES", "build_explorer", "compile_payload", "json_for_script", "render_html"]
