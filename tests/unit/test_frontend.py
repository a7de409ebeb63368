"""The explorer's front end (frontend/): its Node unit tests pass and the committed bundle is fresh.

``ctdc_spark/publish/explorer_assets/explorer.js`` is built from ``frontend/src`` by a pinned esbuild and
committed, so building a release needs no Node. This test rebuilds it into a temporary file and requires the
committed one to be byte-identical, so a source change without a rebuild fails here. Without node/npm (or
without ``npm ci --prefix frontend``) the tests skip locally and fail in CI (CI=true).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend"
BUNDLE = REPO / "ctdc_spark" / "publish" / "explorer_assets" / "explorer.js"


def _node() -> str:
    node = shutil.which("node")
    reason = None
    if node is None or shutil.which("npm") is None:
        reason = "node and npm are not installed"
    elif not (FRONTEND / "node_modules" / "esbuild").is_dir():
        reason = "frontend dependencies are missing: run `npm ci --prefix frontend`"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true makes this an error)")
        pytest.skip(reason)
    assert node is not None
    return node


def test_frontend_unit_tests_pass() -> None:
    proc = subprocess.run(
        [_node(), "--test", "test/"], cwd=FRONTEND, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout


def test_committed_bundle_is_fresh(tmp_path: Path) -> None:
    rebuilt = tmp_path / "explorer.js"
    proc = subprocess.run(
        [_node(), "build.mjs", "--outfile", str(rebuilt)],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert rebuilt.read_bytes() == BUNDLE.read_bytes(), "stale bundle: run `npm --prefix frontend run build`"
