"""The import contract: what a package keeps private, only that package imports.

A dotted name is private when one of its parts starts with ``_`` (dunders such as ``__version__``
aside), and it belongs to the package that holds that part: ``ctdc_spark.aggregate._dp`` is
``ctdc_spark.aggregate``'s, ``_gather`` in the public module ``ctdc_spark.combos.enumeration`` is
``ctdc_spark.combos``'s, ``ctdc_spark._random`` is the root package's. A module may import a
private name only from inside the package that owns it. So the root's private helpers
(``_random``, ``_holdout``, ``_faults``) serve every subpackage, while a subpackage's private
modules and functions are closed to its siblings and to the root's own modules (``cli``,
``pipeline``): what two packages share is made public where it lives, or moved to a package of its
own (``ctdc_spark.combos``). Imports inside functions and under ``TYPE_CHECKING`` count too.

Tests are outside the contract: they test private modules on purpose.

import-linter cannot state this rule: its contracts see modules, not the private functions a
public module holds, and would need one contract per pair of packages.

Usage: ``python -m tools.check_imports ctdc_spark`` prints one line per violation and exits 1 if
there is any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Violation:
    """One import of a private name from outside the package that owns it."""

    path: Path
    line: int
    importer: str
    imported: str
    owner: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}, private to {self.owner}"


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _inside(package: str, owner: str) -> bool:
    return package == owner or package.startswith(owner + ".")


@dataclass(frozen=True)
class _Tree:
    """The modules and packages under one root package directory."""

    root: Path
    packages: frozenset[str]

    @classmethod
    def of(cls, root: Path) -> _Tree:
        packages = frozenset(cls.dotted(root, init.parent) for init in root.rglob("__init__.py"))
        return cls(root, packages)

    @staticmethod
    def dotted(root: Path, path: Path) -> str:
        return ".".join(path.relative_to(root.parent).with_suffix("").parts)

    def module_of(self, path: Path) -> tuple[str, str]:
        """Dotted name of the module at ``path`` and of the package it belongs to."""
        if path.name == "__init__.py":
            package = self.dotted(self.root, path.parent)
            return package, package
        module = self.dotted(self.root, path)
        return module, module.rpartition(".")[0]

    def owner(self, name: str) -> str | None:
        """The package a dotted name is private to, or None when it is public."""
        parts = name.split(".")
        for i, part in enumerate(parts):
            if _is_private(part):
                holder = ".".join(parts[:i])
                # A private name in a module belongs to the module's package.
                return holder if holder in self.packages else holder.rpartition(".")[0]
        return None


def _imported_names(tree: ast.AST, package: str) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of everything a module imports, relative imports resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def check(root: Path) -> list[Violation]:
    """Every violation of the contract in the package directory ``root``, in file and line order.

    Args:
        root: A package directory, e.g. ``Path("ctdc_spark")``; only imports of its own names count.

    Returns:
        The violations, empty when the tree keeps the contract.
    """
    tree = _Tree.of(root)
    violations = []
    for path in sorted(root.rglob("*.py")):
        importer, package = tree.module_of(path)
        for line, name in _imported_names(ast.parse(path.read_text(encoding="utf-8")), package):
            if name.split(".")[0] != root.name:
                continue
            owner = tree.owner(name)
            if owner is not None and not _inside(package, owner):
                violations.append(Violation(path, line, importer, name, owner))
    return sorted(violations, key=lambda v: (str(v.path), v.line, v.imported))


def main(argv: Sequence[str] | None = None) -> int:
    """Check the package directories named in ``argv``; 1 if any import breaks the contract."""
    violations = [v for root in (argv if argv is not None else sys.argv[1:]) for v in check(Path(root))]
    for violation in violations:
        print(violation)
    return 1 if violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
