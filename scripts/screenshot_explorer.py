"""Screenshots of every view of an offline explorer, in each of its languages, at desktop and mobile width.

Opens the page from ``file://`` in headless Chromium (the Debian ``chromium`` package, or ``CTDC_CHROMIUM``),
renders every chart (not only those on screen) and writes full-page PNGs named
``<view>[-<page>]-<lang>-<width>x<height>.png``: the five views, plus one Explore shot per configured page.
The PNGs are for reviewing layout and translations by eye; they are not committed.

Usage::

    python scripts/screenshot_explorer.py                                   # output/release/latest/explorer
    python scripts/screenshot_explorer.py path/to/explorer/index.html --out /tmp/shots
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import urllib.parse
from pathlib import Path

VIEWS = ("home", "explore", "fidelity", "privacy", "downloads")
VIEWPORTS = ((1400, 1000), (390, 844))
DEFAULT_PAGE = Path("output/release/latest/explorer/index.html")
DEFAULT_OUT = Path("output/screenshots")


def _chromium() -> str:
    candidates = [os.environ.get("CTDC_CHROMIUM", ""), "/usr/bin/chromium", shutil.which("chromium") or ""]
    found = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if found is None:
        raise SystemExit("Chromium not found: apt-get install chromium, or set CTDC_CHROMIUM")
    return found


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "page"


def take(index: Path, out: Path) -> list[Path]:
    """Write the screenshots of `index` into `out`; return their paths."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    url = index.resolve().as_uri() + "?test=1"
    written: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        for width, height in VIEWPORTS:
            context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
            page = context.new_page()
            page.goto(url)
            page.wait_for_function("() => window.__explorerReady === true", timeout=60000)
            meta = page.evaluate("window.__explorer.model.meta")
            pages = page.evaluate("window.__explorer.model.pages.map(p => p.name)")
            shots = [(view, None) for view in VIEWS] + [("explore", name) for name in pages]
            for lang in meta["languages"]:
                for view, page_name in shots:
                    params = [("view", view), ("lang", lang)] + ([("page", page_name)] if page_name else [])
                    version = page.evaluate("document.documentElement.dataset.stateVersion")
                    page.evaluate("(h) => { location.hash = h; }", urllib.parse.urlencode(params))
                    page.wait_for_function(
                        "(v) => document.documentElement.dataset.stateVersion !== v", arg=version
                    )
                    page.evaluate("window.__explorer.renderAll()")
                    name = f"{view}{'-' + _slug(page_name) if page_name else ''}-{lang}-{width}x{height}.png"
                    page.screenshot(path=str(out / name), full_page=True)
                    written.append(out / name)
            context.close()
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", nargs="?", type=Path, default=DEFAULT_PAGE, help="explorer index.html")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PNGs")
    args = parser.parse_args()
    if not args.index.is_file():
        raise SystemExit(f"no explorer page at {args.index}: run the pipeline first (scripts/dev.sh run)")
    written = take(args.index, args.out)
    print(f"{len(written)} screenshots in {args.out}")


if __name__ == "__main__":
    main()
