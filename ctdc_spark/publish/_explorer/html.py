"""Write the offline explorer: one self-contained ``index.html`` (docs/explorer.md, docs/architecture.md 3.3).

:func:`build_explorer` compiles the payload (:mod:`.compile`) and inlines the result, together with the CSS
and the one script ``explorer_assets/explorer.js`` (bundled by esbuild from ``frontend/src``; committed, so
building a release needs no Node), into a single HTML file that works from ``file://`` with no network:

* a Content-Security-Policy meta tag with ``default-src 'none'`` allows only this file's own inline script and
  style blocks (pinned by their SHA-256 hashes) and ``data:``/``blob:`` images, so the page can never fetch
  anything;
* all data sits in one ``<script type="application/json">`` block; every ``<``, ``>``, ``&``, U+2028 and
  U+2029 inside it is written as a JSON ``\\uXXXX`` escape, so no value (e.g. ``</script>``) can end the block
  or start markup, and the page only ever inserts values as text (never as HTML).

Example:
    >>> from pathlib import Path
    >>> html_path = build_explorer(payload, Path("output/release/run-1/explorer"))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ctdc_spark.publish._explorer.compile import compile_payload
from ctdc_spark.publish._explorer.model import ExplorerPayload

__all__ = ["build_explorer", "json_for_script", "render_html"]

_ASSET_PACKAGE = "ctdc_spark.publish"
_ASSET_DIR = "explorer_assets"
# The esbuild bundle of frontend/src (one classic script; ES-module src= imports are blocked under file://).
_SCRIPT_ASSET = "explorer.js"
_STYLE_ASSET = "explorer.css"
_TEMPLATE_ASSET = "template.html"


_JSON_ESCAPES = {
    "<": "\\u003c",  # no "</script>" or "<!--" can appear inside the data block
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",  # line separators are legal in JSON but were not in older JS string literals
    "\u2029": "\\u2029",
}
_JSON_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


def json_for_script(data: Any) -> str:
    """Serialise ``data`` as JSON that is safe inside ``<script type="application/json">``.

    Example:
        >>> json_for_script({"a": "</script>"})
        '{"a":"\\\\u003c/script\\\\u003e"}'
    """
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return _JSON_ESCAPE_RE.sub(lambda m: _JSON_ESCAPES[m.group(0)], text)


def _html_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def _asset(name: str) -> str:
    return resources.files(_ASSET_PACKAGE).joinpath(_ASSET_DIR, name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render_html(model: Mapping[str, Any]) -> str:
    """Assemble the self-contained page for a compiled model (see :func:`compile_payload`)."""
    style = _asset(_STYLE_ASSET)
    script = _asset(_SCRIPT_ASSET)
    if "</script" in script.lower() or "<!--" in script:
        raise RuntimeError(
            f"explorer asset {_SCRIPT_ASSET} contains a sequence that would end its script block"
        )
    # Hashes pin exactly these inline blocks: nothing else (not even an injected inline script) may run.
    csp = "; ".join(
        [
            "default-src 'none'",
            "script-src " + _csp_hash(script),
            "style-src " + _csp_hash(style),
            "img-src data: blob:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    if re.search(r'[<>&"]', csp):
        raise RuntimeError("the explorer CSP must not contain markup characters")
    meta = model["meta"]
    data_block = json_for_script(model)

    replacements = {
        "@@CSP@@": csp,  # our own fixed text: no quotes or markup characters (checked below)
        "@@LANG@@": _html_escape(meta["default_language"]),
        "@@DIR@@": "rtl" if meta["default_language"] == "ar" else "ltr",
        "@@TITLE@@": _html_escape(meta["title"][meta["default_language"]]),
        "@@STYLE@@": style,
        "@@DATA@@": data_block,
        "@@SCRIPTS@@": f"<script>{script}</script>",
    }
    template = _asset(_TEMPLATE_ASSET)
    # One pass, so a placeholder-looking string inside the data can never be substituted again.
    return re.sub(r"@@[A-Z]+@@", lambda m: replacements[m.group(0)], template)


def build_explorer(payload: ExplorerPayload | Mapping[str, Any], out_dir: Path) -> Path:
    """Write the offline explorer of ``payload`` to ``out_dir/index.html``.

    The file is written to a temporary name in ``out_dir`` and renamed into place, so a reader never sees
    a half-written page.

    Args:
        payload: The explorer payload, typed (:class:`.model.ExplorerPayload`) or JSON-like (read with
            :meth:`.model.ExplorerPayload.from_mapping`).
        out_dir: Directory to write into (created if missing), e.g. ``release/<run_id>/explorer``.

    Returns:
        The path of the written ``index.html``.

    Raises:
        ValueError: The payload is invalid; the message names the field and never quotes data values.

    Example:
        >>> build_explorer(payload, Path("release/run-1/explorer"))  # doctest: +SKIP
        PosixPath('release/run-1/explorer/index.html')
    """
    if not isinstance(payload, ExplorerPayload):
        payload = ExplorerPayload.from_mapping(payload)
    html = render_html(compile_payload(payload))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "index.html"
    fd, tmp_name = tempfile.mkstemp(prefix=".index.", suffix=".html.tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(html)
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; the page is meant to be published
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target
