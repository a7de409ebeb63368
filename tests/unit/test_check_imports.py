"""The import contract's checker (tools/check_imports.py) on a small tree, and on ctdc_spark."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.check_imports import check, main

_TREE = {
    "__init__.py": "",
    "_shared.py": "def helper() -> None: ...\n",
    "cli.py": "from pkg.a._impl import value\n",
    "a/__init__.py": "from pkg.a._impl import value\n",
    "a/_impl.py": "value = 1\n",
    "a/api.py": "def _hidden() -> None: ...\ndef shown() -> None: ...\n",
    "a/inner.py": "from pkg.a._impl import value\nfrom pkg.a.api import _hidden\n",
    "b/__init__.py": "",
    "b/user.py": (
        "from __future__ import annotations\n"
        "from pkg._shared import helper\n"
        "from pkg.a import value\n"
        "from pkg.a.api import _hidden, shown\n"
        "from ..a import _impl\n"
        "def late() -> None:\n"
        "    import pkg.a._impl\n"
        "import pandas._typing\n"
    ),
}


def _write_tree(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    for name, text in _TREE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_private_imports_from_outside_the_owning_package_are_reported(tmp_path: Path) -> None:
    found = [(v.importer, v.line, v.imported, v.owner) for v in check(_write_tree(tmp_path))]
    assert found == [
        ("pkg.b.user", 4, "pkg.a.api._hidden", "pkg.a"),
        ("pkg.b.user", 5, "pkg.a._impl", "pkg.a"),
        ("pkg.b.user", 7, "pkg.a._impl", "pkg.a"),
        ("pkg.cli", 1, "pkg.a._impl.value", "pkg.a"),
    ]


def test_main_prints_each_violation_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _write_tree(tmp_path)
    assert main([str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{root / 'cli.py'}:1: pkg.cli imports pkg.a._impl.value, private to pkg.a" in out.splitlines()


def test_the_package_keeps_the_contract() -> None:
    assert check(Path(__file__).resolve().parents[2] / "ctdc_spark") == []
