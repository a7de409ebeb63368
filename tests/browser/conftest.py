"""Headless-Chromium fixtures for the explorer tests (docs/explorer.md A.5.5).

The page is opened from ``file://`` exactly as a user would, WITHOUT ``--allow-file-access-from-files``, in a
fresh user-data directory. Every page records console errors, uncaught exceptions and network requests so a
test can assert that the explorer stays silent and offline.

Chromium: the Debian/Ubuntu ``chromium`` package (``apt-get install chromium``) or any Chrome/Chromium binary
named by ``CTDC_CHROMIUM``; Playwright's own browser download is not needed. Without a browser the tests are
skipped locally with a reason; CI sets ``CTDC_REQUIRE_BROWSER=1`` so a missing browser fails instead.

Pass functions (``"() => ..."``), not bare expressions, to ``wait_for_function``: Playwright polls a bare
expression with ``eval``, which the page's Content-Security-Policy rightly forbids.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from explorer_fixture import Fixture, build_fixture

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_PATH = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


def _missing(reason: str) -> None:
    if os.environ.get("CTDC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (CTDC_REQUIRE_BROWSER=1 makes this an error)")
    pytest.skip(reason)


def _find_chromium() -> str | None:
    candidates = [os.environ.get("CTDC_CHROMIUM", ""), "/usr/bin/chromium"]
    candidates += [shutil.which(n) or "" for n in ("chromium", "chromium-browser", "google-chrome", "chrome")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _find_chromium()
    if path is None:
        _missing(
            "Chromium not found: install it (apt-get install chromium) or set CTDC_CHROMIUM=/path/to/chrome"
        )
    assert path is not None
    return path


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    try:
        # Imported lazily so that a missing package skips (or fails in CI) with a clear reason.
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Python package 'playwright' is not installed (pip install playwright)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser_context(
    playwright_instance: Any, chromium_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One fresh-profile Chromium for the session; each test opens its own pages (own sessionStorage)."""
    context = playwright_instance.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),
        executable_path=chromium_path,
        headless=True,
        args=CHROMIUM_FLAGS,
        accept_downloads=True,
        viewport={"width": 1400, "height": 2400},
        locale="en-US",
        timezone_id="UTC",
    )
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    """The golden release: k = 5, L = 3, explicit records, public fidelity statistics."""
    return build_fixture(tmp_path_factory.mktemp("release"))


@dataclass
class ExplorerPage:
    """A page of the explorer with console/network monitors."""

    page: Any
    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, fragment: str = "") -> ExplorerPage:
        self.page.goto(self.url + "?test=1" + (("#" + fragment) if fragment else ""))
        self.page.wait_for_function("() => window.__explorerReady === true", timeout=15000)
        return self

    def go(self, fragment: str) -> None:
        """Same-document navigation to a new hash (like a bookmark or back/forward)."""
        version = self.page.evaluate("document.documentElement.dataset.stateVersion")
        changed = self.page.evaluate(
            "(h) => { if (location.hash === '#' + h) return false; location.hash = h; return true; }",
            fragment,
        )
        if changed:
            self.page.wait_for_function(
                "(v) => document.documentElement.dataset.stateVersion !== v", arg=version
            )

    def state(self) -> dict[str, Any]:
        return self.page.evaluate("window.__explorer.state()")  # type: ignore[no-any-return]

    def bars(self, visual: str | None = None) -> list[dict[str, str]]:
        """All bars currently in the DOM as dicts of their data attributes and shown texts."""
        return self.page.evaluate(  # type: ignore[no-any-return]
            """(visual) => Array.from(document.querySelectorAll('[data-testid="bar"]'))
                .filter(b => visual === null || b.dataset.visual === visual)
                .map(b => Object.assign({}, b.dataset, {
                    synText: b.querySelector('[data-testid="bar-syn-text"]').textContent,
                    offText: b.querySelector('[data-testid="bar-off-text"]').textContent,
                    selected: b.getAttribute('aria-selected'),
                    label: b.querySelector('.bar-label').textContent,
                }))""",
            visual,
        )

    def map_countries(self, visual: str | None = None) -> list[dict[str, str]]:
        """The countries of the world maps in the DOM: their data attributes, attr = "col:code"."""
        return self.page.evaluate(  # type: ignore[no-any-return]
            """(visual) => Array.from(document.querySelectorAll('[data-testid="map-country"]'))
                .filter(p => visual === null || p.closest('[data-testid="chart"]').dataset.visual === visual)
                .map(p => Object.assign({}, p.dataset, {
                    attr: window.__explorer.model.attrs[Number(p.dataset.attrIndex)].id,
                    name: p.getAttribute('aria-label'),
                    tabindex: p.getAttribute('tabindex'),
                }))""",
            visual,
        )

    def render_all(self) -> None:
        self.page.evaluate("window.__explorer.renderAll()")

    def assert_clean(self) -> None:
        """No console errors, no uncaught exceptions, no request other than the page file itself."""
        assert self.console_errors == [], self.console_errors
        page_file = self.url.split("?", 1)[0]
        foreign = [
            u
            for u in self.requests
            if u.split("?", 1)[0].split("#", 1)[0] != page_file and not u.startswith(("blob:", "data:"))
        ]
        assert foreign == [], foreign


@pytest.fixture
def open_explorer(browser_context: Any) -> Iterator[Any]:
    """Factory: open_explorer(url, fragment="") -> ExplorerPage; pages are closed after the test."""
    pages: list[Any] = []

    def _open(url: str, fragment: str = "", viewport: dict[str, int] | None = None) -> ExplorerPage:
        page = browser_context.new_page()
        if viewport:
            page.set_viewport_size(viewport)
        pages.append(page)
        wrapper = ExplorerPage(page=page, url=url)
        page.on("console", lambda m: wrapper.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: wrapper.console_errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: wrapper.requests.append(r.url))
        return wrapper.open(fragment)

    yield _open
    for page in pages:
        page.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_PATH.exists():
        _missing("axe-core is not installed: run `npm ci --prefix tests/browser`")
    return AXE_PATH.read_text(encoding="utf-8")
