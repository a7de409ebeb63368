"""Which cells are attributes, and records as attribute ids (docs/spec.md 2.2-2.5).

An attribute is the string ``"{column}:{value}"`` of a normalised header and a normalised value; a
record is the set of its attributes. Encoded records number the attributes in canonical order: the
ascending attribute strings, which for Python strings is the byte order of their UTF-8 encoding that
SDS sorts by (docs/spec.md 2.4), so a record's ascending ids are its canonical combination order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pandas as pd

IntArray = npt.NDArray[np.int64]

SEMICOLON = "<semicolon>"
COLON = "<colon>"
# ctdc-spark reserves tabs and line breaks as well (its TSV outputs are line- and tab-delimited).
_TABS_AND_LINE_BREAKS = re.compile(r"[\t\r\n]+")
_INDICATOR = "1"


def normalise(text: str) -> str:
    """A header or value as SDS stores it (docs/spec.md 2.2).

    Trims surrounding whitespace, turns each run of tabs and line breaks into one space, then
    replaces the reserved delimiters ``;`` and ``:``.

    Example:
        >>> normalise("  D;h "), normalise("E:h")
        ('D<semicolon>h', 'E<colon>h')
    """
    trimmed = _TABS_AND_LINE_BREAKS.sub(" ", text.strip())
    return trimmed.replace(";", SEMICOLON).replace(":", COLON)


def column_of(attribute: str) -> str:
    """The column part of ``"{column}:{value}"`` (normalised headers hold no ``:``)."""
    return attribute.split(":", 1)[0]


@dataclass(frozen=True)
class CellRules:
    """Which normalised cells are not attributes, and which columns hold several values.

    Attributes:
        unknown_values: Values that mean "unknown" (normalised here); ``""`` always is one.
        sensitive_zeros: Headers of the columns where ``"0"`` is an ordinary value (docs/spec.md 2.3).
        multi_value_columns: Header -> delimiter of the columns whose cells list several values
            (docs/spec.md 2.5).

    Headers are matched after normalisation, exactly (SDS also ignores case; callers here spell
    them as in the file).
    """

    unknown_values: Iterable[str] = ()
    sensitive_zeros: Iterable[str] = ()
    multi_value_columns: Mapping[str, str] | None = None

    @cached_property
    def _unknown(self) -> frozenset[str]:
        return frozenset(normalise(v) for v in self.unknown_values) | {""}

    @cached_property
    def _zero_columns(self) -> frozenset[str]:
        return frozenset(normalise(c) for c in self.sensitive_zeros)

    @cached_property
    def _delimiters(self) -> dict[str, str]:
        return {normalise(c): d for c, d in (self.multi_value_columns or {}).items()}

    def is_attribute(self, column: str, value: str) -> bool:
        """docs/spec.md 2.3: a normalised value is an attribute unless unknown (or empty) or a plain
        ``"0"``."""
        if value in self._unknown:
            return False
        return value != "0" or column in self._zero_columns

    def cell_attributes(self, header: str, cell: str) -> set[str]:
        """The attributes one cell contributes: none, one, or one per piece of a multi-value cell.

        A piece ``v`` of a multi-value column ``C`` becomes the attribute ``C_v:1`` of the expanded
        binary column ``C_v`` (docs/spec.md 2.5).
        """
        column = normalise(header)
        delimiter = self._delimiters.get(column)
        if delimiter is None:
            value = normalise(cell)
            return {f"{column}:{value}"} if self.is_attribute(column, value) else set()
        pieces = {normalise(piece) for piece in cell.split(delimiter)}
        return {f"{column}_{p}:{_INDICATOR}" for p in pieces if self.is_attribute(column, p)}

    def record(self, header: Sequence[str], row: Sequence[str]) -> frozenset[str]:
        """The attributes of one input row."""
        return frozenset(
            a for h, cell in zip(header, row, strict=True) for a in self.cell_attributes(h, cell)
        )


@dataclass(frozen=True)
class EncodedRecords:
    """Records as ascending attribute ids in CSR form.

    Attributes:
        names: Attribute strings; the id of an attribute is its position (canonical order).
        attr_column: ``int64[A]`` column number of each attribute (columns numbered in name order).
        indptr: ``int64[n + 1]`` offsets of each record's ids in ``indices``.
        indices: ``int64[nnz]`` ascending attribute ids of each record.
    """

    names: list[str]
    attr_column: IntArray
    indptr: IntArray
    indices: IntArray

    def records(self) -> list[list[int]]:
        """Each record's ascending attribute ids."""
        ids = self.indices.tolist()
        return [
            ids[lo:hi] for lo, hi in zip(self.indptr[:-1].tolist(), self.indptr[1:].tolist(), strict=True)
        ]


def encode(records: Iterable[Iterable[str]]) -> EncodedRecords:
    """Number the attributes of attribute-string records canonically and lay the records out as CSR."""
    sets = [set(r) for r in records]
    names = sorted(set().union(*sets))
    rank = {a: i for i, a in enumerate(names)}
    rows = np.array([row for row, attrs in enumerate(sets) for _ in attrs], dtype=np.int64)
    ids = np.array([rank[a] for attrs in sets for a in attrs], dtype=np.int64)
    return _from_pairs(len(sets), rows, ids, names)


def encode_frame(frame: pd.DataFrame, rules: CellRules) -> EncodedRecords:
    """Encode a table of string cells (one column per header), applying ``rules`` to every cell.

    Each distinct cell of a column is read once, so a large frame costs a few numpy passes per column.
    """
    columns = []
    for header in frame.columns:
        distinct, codes = np.unique(frame[header].astype(str).to_numpy(), return_inverse=True)
        columns.append((codes.ravel(), [sorted(rules.cell_attributes(str(header), c)) for c in distinct]))
    names = sorted({a for _, cells in columns for attrs in cells for a in attrs})
    rank = {a: i for i, a in enumerate(names)}
    rows: list[IntArray] = []
    ids: list[IntArray] = []
    for codes, cells in columns:
        # The j-th attribute of every cell at once (a multi-value cell may have several).
        for j in range(max(map(len, cells), default=0)):
            id_of_cell = np.array([rank[attrs[j]] if j < len(attrs) else -1 for attrs in cells])
            cell_ids = id_of_cell[codes]
            held = np.flatnonzero(cell_ids >= 0)
            rows.append(held)
            ids.append(cell_ids[held])
    empty = np.zeros(0, dtype=np.int64)
    return _from_pairs(len(frame), np.concatenate([empty, *rows]), np.concatenate([empty, *ids]), names)


def _from_pairs(n_records: int, rows: IntArray, ids: IntArray, names: list[str]) -> EncodedRecords:
    """CSR of ``(record, attribute id)`` pairs; a pair given twice is held once."""
    # One int64 key per pair sorts by record, then id.
    keys = np.unique(rows * max(len(names), 1) + ids)
    rows, ids = np.divmod(keys, max(len(names), 1))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_records))]).astype(np.int64)
    return EncodedRecords(names, _columns_of(names), indptr, ids.astype(np.int64))


def _columns_of(names: Sequence[str]) -> IntArray:
    columns = sorted({column_of(a) for a in names})
    number = {c: i for i, c in enumerate(columns)}
    return np.array([number[column_of(a)] for a in names], dtype=np.int64)
