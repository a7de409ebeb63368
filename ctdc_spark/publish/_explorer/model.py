"""The explorer payload: what the publish stage hands the page builder, as typed values that check themselves.

The contract is this module's dataclasses, each field described where it is declared. The publish stage
builds an :class:`ExplorerPayload` directly; a payload that arrives as JSON-like data (tests, the explorer
benchmark, older v1 payloads) goes through :meth:`ExplorerPayload.from_mapping`, which checks its types and
reads the v1 forms. Either way the payload checks every value rule when it is built (``__post_init__``), so
an :class:`ExplorerPayload` that exists is valid, and :func:`.compile.compile_payload` trusts it.

Terms: a *lang map* (:data:`LangMap`) is ``{language code: text}``; a *text* (:data:`Text`) is a lang map
that holds ``meta.default_language``. In JSON-like data a field with a default is optional (absent and null
both mean the default), a v1 plain string stands for a text in the default language, and keys the contract
does not name are ignored.

Errors are ``ValueError`` naming the offending field by its path (``payload.columns[2].values[0].rank``)
and the fix; they never quote a data value, because values of a sensitive dataset must not reach logs.

Example:
    >>> payload = ExplorerPayload.from_mapping(json.loads(text))  # doctest: +SKIP
    >>> payload.meta.k, len(payload.columns)  # doctest: +SKIP
    (10, 60)
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import itertools
import json
import math
import re
import types
import typing
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Final, Literal, NamedTuple, TypeVar, get_args, get_origin

import numpy as np
import numpy.typing as npt

from ctdc_spark.evaluate import AgreementRule

# The public evaluation statistics are evaluate's hand-off to publish, defined once there; they are part of
# this contract (ExplorerPayload.stats) and re-exported with it.
from ctdc_spark.evaluate.stats import (
    EMPTY_STATS,
    EVALUATION_JSON,
    AgreementCount,
    AgreementStats,
    BucketStats,
    LengthAgreement,
    LengthStats,
    MultiStats,
    OverallStats,
    PublicEvaluation,
    Stats,
)

__all__ = [
    "DEFAULT_RELATIVE_TOLERANCE",
    "DOWNLOAD_KINDS",
    "EMPTY_STATS",
    "GEO_ALPHA2",
    "SUPPORTED_LANGUAGES",
    "UINT16_MAX",
    "Aggregates",
    "AgreementCount",
    "AgreementStats",
    "BucketStats",
    "CanonicalAttribute",
    "Column",
    "Download",
    "DownloadKind",
    "DpParameters",
    "ExplorerPayload",
    "Group",
    "KeyTable",
    "LangMap",
    "LengthAgreement",
    "LengthStats",
    "Meta",
    "MultiStats",
    "OverallStats",
    "Page",
    "Stats",
    "SyntheticCells",
    "Text",
    "Value",
    "parse",
    "read_evaluation",
]

#: UI languages with a complete string table in ``locales/ui/<lang>.json``.
SUPPORTED_LANGUAGES = ("en", "fr", "es", "de", "ar")

#: What a download is; the page describes each kind with the string table's ``download_<kind>`` sentence.
DownloadKind = Literal[
    "synthetic_microdata",
    "synthetic_microdata_long",
    "aggregates_tsv",
    "aggregates_csv",
    "aggregates_tidy",
    "evaluation",
    "codebook",
    "readme",
    "licence",
]
DOWNLOAD_KINDS: tuple[str, ...] = get_args(DownloadKind)

#: The only ``Column.geo`` value: ISO 3166-1 alpha-2 country codes.
GEO_ALPHA2: Final = "iso3166-1-alpha2"

#: Agreement tolerance when a payload does not state one (the Python side's defaults).
DEFAULT_RELATIVE_TOLERANCE = 0.1

#: Cell codes, and the page's attribute ids up to this many, are stored as Uint16.
UINT16_MAX = 0xFFFF

#: ``{language code: text}``, e.g. ``{"en": "Female", "fr": "Femme"}``.
LangMap = Annotated[Mapping[str, str], "lang map"]
#: A lang map that holds ``meta.default_language`` (in JSON-like data, a v1 str is that language's text).
Text = Annotated[Mapping[str, str], "text"]
#: ``(key, protected_count)`` pairs; read from JSON with one loop, as there may be millions.
AggregateEntries = Annotated[tuple[tuple[str, int], ...], "aggregate entries"]

_ROOT = "payload"
#: What the value checks of the shared types (stats, the agreement rule) name in their messages.
_DOCUMENT = "explorer payload"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_ALPHA2_RE = re.compile(r"^[A-Z]{2}$")
_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_COUNT_LIMIT = 2**32  # the page stores counts as Uint32


def _fail(path: str, problem: str) -> ValueError:
    return ValueError(f"{_DOCUMENT}: {path}: {problem}")


def _at_least(value: float, minimum: int, path: str) -> None:
    if value < minimum:
        raise _fail(path, f"must be >= {minimum}")


def _not_empty(text: str, path: str) -> None:
    if not text.strip():
        raise _fail(path, "must not be empty")


def _holds_default_language(texts: Mapping[str, str], path: str, default_language: str) -> None:
    if default_language not in texts:
        raise _fail(path, "must give a text for meta.default_language")


# --------------------------------------------------------------------------------------------------------
# meta
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DpParameters:
    """The differential-privacy budget a DP release states."""

    #: > 0.
    epsilon: float
    #: None when the mechanism has no delta.
    delta: float | None


@dataclass(frozen=True)
class Meta:
    """What the release is: its texts, its guarantee and the page's languages."""

    #: Non-empty in the default language.
    title: Text
    description: Text
    dataset_version: str
    #: Non-empty.
    run_id: str
    #: An ISO-8601 timestamp, e.g. ``2025-03-01T12:00:00Z``.
    created: str
    pipeline_version: str
    privacy_mode: Literal["k_anonymity", "dp"]
    #: The resolution: >= 1; in k-anonymity mode every count is a multiple of k.
    k: int
    #: The effective reporting length, >= 1 (resolve the configuration's "0 = all" first).
    L: int
    #: Required when ``privacy_mode`` is ``"dp"``.
    dp: DpParameters | None
    synthesis_mode: str
    #: = ``synthetic.n``.
    synthetic_records: int
    #: The protected number of records, = ``aggregates.record_count``.
    reportable_record_count: int
    licence: Text
    citation: Text
    #: A non-empty subset of :data:`SUPPORTED_LANGUAGES`, without repeats.
    languages: tuple[str, ...]
    #: One of ``languages``: the page opens in it, and v1 plain texts are in it.
    default_language: str
    #: >= 1, or None for k: synthetic counts below it show as "< k" until the reader switches them on.
    small_count_threshold: int | None
    #: What one record is, e.g. ``{"en": "identified victims"}``.
    record_noun: LangMap = field(default_factory=dict)
    #: When a synthetic count agrees with an official one (frontend/src/core.js ``agrees``; evaluation.json
    #: applies the same): an official count a stands for [a, a + interval - 1], and a synthetic count s
    #: agrees with it when max(a - s, s - (a + interval - 1), 0) <= max(absolute, relative * a).
    #: interval >= 1, relative >= 0, absolute >= 0; None (v1 payloads) means :attr:`effective_agreement`.
    agreement: AgreementRule | None = None

    @property
    def effective_small_count_threshold(self) -> int:
        """``small_count_threshold``, with None meaning k."""
        return self.k if self.small_count_threshold is None else self.small_count_threshold

    @property
    def effective_agreement(self) -> AgreementRule:
        """``agreement``, or the Python side's default: interval k (1 for DP), 10 % or k records."""
        if self.agreement is not None:
            return self.agreement
        interval = self.k if self.privacy_mode == "k_anonymity" else 1
        return AgreementRule(interval=interval, relative=DEFAULT_RELATIVE_TOLERANCE, absolute=self.k)

    def _check(self, path: str) -> None:
        if not self.languages:
            raise _fail(f"{path}.languages", "list at least one language, e.g. ['en']")
        for i, lang in enumerate(self.languages):
            if lang not in SUPPORTED_LANGUAGES:
                raise _fail(
                    f"{path}.languages[{i}]",
                    f"unsupported UI language; supported: {', '.join(SUPPORTED_LANGUAGES)}",
                )
        if len(set(self.languages)) != len(self.languages):
            raise _fail(f"{path}.languages", "must not repeat a language")
        default = self.default_language
        if default not in self.languages:
            raise _fail(f"{path}.default_language", "must be one of meta.languages")
        for name, texts in (
            ("title", self.title),
            ("description", self.description),
            ("licence", self.licence),
            ("citation", self.citation),
        ):
            _holds_default_language(texts, f"{path}.{name}", default)
        _not_empty(self.title[default], f"{path}.title.{default}")
        _not_empty(self.run_id, f"{path}.run_id")
        _not_empty(self.created, f"{path}.created")
        _at_least(self.k, 1, f"{path}.k")
        _at_least(self.L, 1, f"{path}.L")
        _at_least(self.synthetic_records, 0, f"{path}.synthetic_records")
        _at_least(self.reportable_record_count, 0, f"{path}.reportable_record_count")
        try:
            # Python 3.10's parser does not accept a trailing "Z"; it means UTC.
            created = self.created
            datetime.fromisoformat(created[:-1] + "+00:00" if created.endswith("Z") else created)
        except ValueError:
            raise _fail(
                f"{path}.created", "must be an ISO-8601 timestamp, e.g. 2025-03-01T12:00:00Z"
            ) from None
        if self.dp is None:
            if self.privacy_mode == "dp":
                raise _fail(f"{path}.dp", "must give {epsilon, delta} when privacy_mode is 'dp'")
        elif self.dp.epsilon <= 0:
            raise _fail(f"{path}.dp.epsilon", "must be a number > 0")
        if self.small_count_threshold is not None:
            _at_least(self.small_count_threshold, 1, f"{path}.small_count_threshold")
        if self.agreement is not None:
            self.agreement.check(f"{path}.agreement", document=_DOCUMENT)


# --------------------------------------------------------------------------------------------------------
# the codebook and the layout
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """One public value of a column: an attribute ``"<column id>:<value>"``."""

    #: 1..65535, distinct within the column: the value's cell code in ``synthetic.columns``.
    code: int
    #: Normalised as in docs/spec.md 2.2: non-empty, no ";" or ":".
    value: str
    #: ``"<column id>:<value>"`` of this column and value.
    attribute: str
    #: >= 0 and distinct over all columns: ranks order attributes like their attribute strings in byte order
    #: (not necessarily contiguous; the page's dense canonical id is an attribute's position in that order).
    rank: int
    labels: LangMap = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    """One attribute column of the microdata (in microdata order).

    A multi-value source column (e.g. ``IP_Gender = "Female;Male"``) appears as indicator columns
    ``IP_Gender_Female`` (value ``"1"``) etc. with kind ``"multi"`` and the same ``source_column``.
    """

    #: The normalised header: non-empty, no ";" or ":", distinct.
    id: str
    #: The input column it comes from (non-empty).
    source_column: str
    #: ``"multi"`` for an indicator column of a multi-value source column.
    kind: Literal["single", "multi"]
    #: For an indicator column of a multi-value source they name the indicator, e.g. ``{"en": "Female"}``.
    labels: LangMap
    #: Non-empty; in natural order for an ordinal column.
    values: tuple[Value, ...]
    #: In JSON-like data, v1's ``description`` (a text) stands in for it.
    descriptions: LangMap = field(default_factory=dict)
    #: ``values`` are listed in natural order, codes ascending.
    ordinal: bool = False
    #: :data:`GEO_ALPHA2`: the values are ISO alpha-2 codes, named by the browser in the page language (their
    #: labels may be absent or equal to the code); the page adds a world map before the column's chart.
    geo: Literal["iso3166-1-alpha2"] | None = None
    #: A yes/no column whose only value is ``"1"``, shown as "yes" inside its group.
    indicator: bool = False

    def _check(self, path: str) -> None:
        _not_empty(self.id, f"{path}.id")
        if ";" in self.id or ":" in self.id:
            raise _fail(f"{path}.id", "must be a normalised header (no ';' or ':')")
        if not self.values:
            raise _fail(f"{path}.values", "list at least one value")
        codes: set[int] = set()
        for vi, val in enumerate(self.values):
            vpath = f"{path}.values[{vi}]"
            _at_least(val.code, 1, f"{vpath}.code")
            if val.code > UINT16_MAX:
                raise _fail(f"{vpath}.code", f"must be <= {UINT16_MAX} (codes are stored as Uint16)")
            if val.code in codes:
                raise _fail(f"{vpath}.code", "duplicate code in this column")
            codes.add(val.code)
            _not_empty(val.value, f"{vpath}.value")
            if ";" in val.value or ":" in val.value:
                raise _fail(f"{vpath}.value", "must be normalised (';' and ':' replaced, docs/spec.md 2.2)")
            if val.attribute != f"{self.id}:{val.value}":
                raise _fail(f"{vpath}.attribute", "must equal '<column id>:<value>' of this column and value")
            _at_least(val.rank, 0, f"{vpath}.rank")
        if self.geo and not all(_ALPHA2_RE.match(v.value) for v in self.values):
            raise _fail(
                f"{path}.values", "a country column's values must be ISO 3166-1 alpha-2 codes (two capitals)"
            )
        if self.indicator and [v.value for v in self.values] != ["1"]:
            raise _fail(f"{path}.values", "an indicator column has exactly one value, '1'")
        if self.ordinal and [v.code for v in self.values] != sorted(v.code for v in self.values):
            raise _fail(
                f"{path}.values", "an ordinal column lists its values in natural order, codes ascending"
            )
        _not_empty(self.source_column, f"{path}.source_column")


class CanonicalAttribute(NamedTuple):
    """An attribute at its place in the canonical order (ascending rank); its position is its canonical id."""

    attribute: str
    column_index: int
    value_index: int


@dataclass(frozen=True)
class Group:
    """A multi-attribute visual: one chart of several attributes.

    One group per multi-value source column is added automatically (named by the source column) unless a
    group of that name exists.
    """

    #: Non-empty, distinct.
    name: str
    #: ``"col:value"`` attributes of ``columns``, at least one, without repeats.
    attributes: tuple[str, ...]
    labels: LangMap = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """A named set of visuals."""

    #: Non-empty, distinct.
    name: str
    #: Column ids, group names or multi-value source columns, as in ``ExplorerPayload.default_columns``.
    columns: tuple[str, ...]
    labels: LangMap = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------
# the data: synthetic cells and reportable aggregates
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticCells:
    """The synthetic microdata as a column store of cell codes."""

    #: The number of synthetic records (= ``meta.synthetic_records``).
    n: int
    #: For every column id: base64 of a little-endian Uint16Array of length n; 0 is an empty cell, any other
    #: code is one listed in that column's values.
    columns: Mapping[str, str]


@dataclass(frozen=True)
class Aggregates:
    """The reportable aggregates: every combination of length <= L with a count >= k (absent = "< k")."""

    #: The protected number of records (= ``meta.reportable_record_count``).
    record_count: int
    #: ``(key, protected_count)``: key = the combination's attributes joined by ";" in ascending rank order
    #: (each key once, at most L attributes); in k-anonymity mode a count is a multiple of k and >= k, in DP
    #: mode any count >= 0; counts are below 2^32.
    entries: AggregateEntries


@dataclass(frozen=True, eq=False)  # ndarray fields compare element-wise
class KeyTable:
    """The reportable combinations of one length, as the page looks them up (binary search)."""

    #: Shape (m, length): each row a key's canonical attribute ids, ascending; rows in ascending order.
    ids: npt.NDArray[np.int64]
    #: Shape (m,): the protected counts, row for row.
    counts: npt.NDArray[np.int64]


# --------------------------------------------------------------------------------------------------------
# downloads and the payload
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    """A file of the release the page links to."""

    #: Non-empty.
    name: str
    #: A relative path, e.g. ``../synthetic_microdata.csv``.
    href: str
    #: The file's size, >= 0.
    bytes: int
    #: The file's SHA-256, 64 lower-case hexadecimal digits.
    sha256: str
    #: With a kind, the page describes the file with the string table's ``download_<kind>`` sentence in the
    #: page language (the bundle's README reads the same sentences in locales/ui/<lang>.json). Required
    #: unless ``description`` is given (v1).
    kind: DownloadKind | None = None
    #: Shown only without a kind.
    description: str | None = None

    def _check(self, path: str) -> None:
        _not_empty(self.name, f"{path}.name")
        _not_empty(self.href, f"{path}.href")
        # Only relative links: an absolute URL would make a "downloads" click leave the offline bundle.
        if _SCHEME_RE.match(self.href) or self.href.startswith(("/", "\\")) or "\\" in self.href:
            raise _fail(f"{path}.href", "must be a relative path such as ../synthetic_microdata.csv")
        _at_least(self.bytes, 0, f"{path}.bytes")
        if not _SHA256_RE.match(self.sha256):
            raise _fail(f"{path}.sha256", "must be 64 lower-case hexadecimal digits")
        if self.kind is None and self.description is None:
            raise _fail(f"{path}.kind", "missing field (v1 payloads may give a description instead)")


@dataclass(frozen=True)
class ExplorerPayload:
    """Everything the page shows, from public artefacts only; checked as a whole when built.

    Raises:
        ValueError: A value breaks the contract; the message names the field by its path and the fix.
    """

    meta: Meta
    #: One per attribute column, in the order of the microdata; at least one.
    columns: tuple[Column, ...]
    #: The visuals shown first: column ids, group names or multi-value source columns. An indicator column
    #: stands for the first group holding it (so 19 indicators make one grouped chart), a country column
    #: brings its world map just before its bar chart. Empty: the first six visuals.
    default_columns: tuple[str, ...]
    pages: tuple[Page, ...]
    groups: tuple[Group, ...]
    synthetic: SyntheticCells
    aggregates: Aggregates
    stats: Stats
    downloads: tuple[Download, ...]
    #: Derived when built: every attribute in canonical order (checking the ranks is sorting by them).
    attribute_order: tuple[CanonicalAttribute, ...] = field(init=False, repr=False, compare=False)
    #: Derived when built, by key length: checking the keys is resolving them to canonical ids and sorting
    #: them (for repeats), so the result is kept for the page rather than redone over millions of keys.
    aggregate_tables: Mapping[int, KeyTable] = field(init=False, repr=False, compare=False)

    @classmethod
    def from_mapping(cls, payload: Mapping[str, Any]) -> ExplorerPayload:
        """Read and check a JSON-like payload (v2, or v1 with its plain texts and descriptions).

        Raises:
            ValueError: A field is missing, of the wrong type or invalid; the message names it by path.

        Example:
            >>> ExplorerPayload.from_mapping({"meta": {}})
            Traceback (most recent call last):
            ...
            ValueError: explorer payload: payload.meta.title: missing field
        """
        meta = _mapping(_get(_mapping(payload, _ROOT), "meta", _ROOT), f"{_ROOT}.meta")
        return parse(cls, payload, _ROOT, language=meta.get("default_language"))

    def __post_init__(self) -> None:
        self.meta._check(f"{_ROOT}.meta")
        path = f"{_ROOT}.columns"
        if not self.columns:
            raise _fail(path, "list at least one column")
        seen_ids: set[str] = set()
        for ci, col in enumerate(self.columns):
            col._check(f"{path}[{ci}]")
            if col.id in seen_ids:
                raise _fail(f"{path}[{ci}].id", f"duplicate column id {col.id!r}")
            seen_ids.add(col.id)
        # A frozen dataclass sets its derived fields through object.__setattr__, once, here.
        object.__setattr__(self, "attribute_order", self._canonical_order())
        self._check_layout()
        self._check_synthetic()
        aggregates, apath = self.aggregates, f"{_ROOT}.aggregates"
        _at_least(aggregates.record_count, 0, f"{apath}.record_count")
        if aggregates.record_count != self.meta.reportable_record_count:
            raise _fail(f"{apath}.record_count", "must equal meta.reportable_record_count")
        object.__setattr__(self, "aggregate_tables", self._key_tables())
        self.stats.check(f"{_ROOT}.stats", document=_DOCUMENT)
        for i, download in enumerate(self.downloads):
            download._check(f"{_ROOT}.downloads[{i}]")

    def _canonical_order(self) -> tuple[CanonicalAttribute, ...]:
        # Ranks must order attributes exactly like their strings in byte order (= code point order for str),
        # because the aggregate keys and the page's binary search both rely on that canonical order.
        path = f"{_ROOT}.columns"
        by_rank = sorted(
            (v.rank, ci, vi, v.attribute)
            for ci, c in enumerate(self.columns)
            for vi, v in enumerate(c.values)
        )
        for (rank, pci, pvi, previous), (next_rank, ci, vi, attribute) in itertools.pairwise(by_rank):
            if rank == next_rank:
                raise _fail(
                    f"{path}[{ci}].values[{vi}].rank", f"rank is also used by {path}[{pci}].values[{pvi}]"
                )
            if previous >= attribute:
                raise _fail(
                    f"{path}[{ci}].values[{vi}].rank",
                    "ranks must follow the byte order of the attribute strings ('col:value')",
                )
        return tuple(CanonicalAttribute(attribute, ci, vi) for _, ci, vi, attribute in by_rank)

    def _check_layout(self) -> None:
        attributes = {a.attribute for a in self.attribute_order}
        gpath = f"{_ROOT}.groups"
        group_names: set[str] = set()
        for gi, group in enumerate(self.groups):
            path = f"{gpath}[{gi}]"
            _not_empty(group.name, f"{path}.name")
            if group.name in group_names:
                raise _fail(f"{path}.name", "duplicate group name")
            group_names.add(group.name)
            if not group.attributes:
                raise _fail(f"{path}.attributes", "list at least one attribute")
            for ai, attribute in enumerate(group.attributes):
                if attribute not in attributes:
                    raise _fail(f"{path}.attributes[{ai}]", "is not an attribute of payload.columns")
            if len(set(group.attributes)) != len(group.attributes):
                raise _fail(f"{path}.attributes", "lists an attribute twice")
        # The names a page may list: each stands for one or more visuals (see default_columns).
        visual_names = group_names | {c.id for c in self.columns}
        visual_names |= {c.source_column for c in self.columns if c.kind == "multi"}

        def check_names(names: Sequence[str], path: str) -> None:
            for i, name in enumerate(names):
                if name not in visual_names:
                    raise _fail(f"{path}[{i}]", "is not a column id, group name or multi-value source column")

        check_names(self.default_columns, f"{_ROOT}.default_columns")
        ppath = f"{_ROOT}.pages"
        for pi, page in enumerate(self.pages):
            _not_empty(page.name, f"{ppath}[{pi}].name")
            check_names(page.columns, f"{ppath}[{pi}].columns")
        if len({p.name for p in self.pages}) != len(self.pages):
            raise _fail(ppath, "page names must be unique")

    def _check_synthetic(self) -> None:
        syn, path = self.synthetic, f"{_ROOT}.synthetic"
        _at_least(syn.n, 0, f"{path}.n")
        if syn.n != self.meta.synthetic_records:
            raise _fail(f"{path}.n", "must equal meta.synthetic_records")
        known = {c.id for c in self.columns}
        for col_id in syn.columns:
            if col_id not in known:
                raise _fail(f"{path}.columns", f"has codes for {col_id!r}, which is not in payload.columns")
        for col in self.columns:
            cpath = f"{path}.columns.{col.id}"
            if col.id not in syn.columns:
                raise _fail(cpath, "missing field")
            try:
                raw = base64.b64decode(syn.columns[col.id], validate=True)
            except (binascii.Error, ValueError):
                raise _fail(cpath, "is not valid base64") from None
            if len(raw) != 2 * syn.n:
                raise _fail(cpath, f"decodes to {len(raw)} bytes; expected 2 * synthetic.n = {2 * syn.n}")
            present = np.unique(np.frombuffer(raw, dtype="<u2"))
            if not set(present.tolist()) - {0} <= {v.code for v in col.values}:
                raise _fail(cpath, "contains a code that is not listed in the column's values")

    def _key_tables(self) -> dict[int, KeyTable]:
        path = f"{_ROOT}.aggregates.entries"
        meta = self.meta
        canonical_id = {a.attribute: i for i, a in enumerate(self.attribute_order)}
        # k-anonymity counts are multiples of k and >= k; DP counts any whole number >= 0.
        smallest, step = (meta.k, meta.k) if meta.privacy_mode == "k_anonymity" else (0, 1)
        # Flat machine-integer arrays per length: millions of keys would not fit well as lists of lists.
        by_length: dict[int, tuple[array[int], array[int]]] = {}
        for i, (key, count) in enumerate(self.aggregates.entries):
            if count < smallest or count % step:
                problem = "in k_anonymity mode a count must be a multiple of k and >= k"
                raise _fail(
                    f"{path}[{i}][1]", "protected_count must be a whole number >= 0" if count < 0 else problem
                )
            ids = [canonical_id.get(attribute, -1) for attribute in key.split(";")]
            # The usual case in one test (this loop runs once per key); the slow path says what is wrong.
            if ids[0] < 0 or len(ids) > meta.L or (len(ids) > 1 and ids != sorted(set(ids))):
                raise _fail(f"{path}[{i}][0]", _key_problem(ids, meta.L))
            table = by_length.get(len(ids))
            if table is None:
                table = by_length[len(ids)] = (array("q"), array("q"))
            table[0].extend(ids)
            table[1].append(count)
        tables = {}
        for length in sorted(by_length):
            id_rows, counts = by_length[length]
            ids_arr: npt.NDArray[np.int64] = np.frombuffer(id_rows, dtype=np.int64).reshape(-1, length)
            order = np.lexsort(ids_arr.T[::-1])  # lexicographic by id tuple = canonical key order
            ids_arr = ids_arr[order]
            if len(ids_arr) > 1 and bool(np.any(np.all(ids_arr[1:] == ids_arr[:-1], axis=1))):
                raise _fail(path, f"repeats a key of length {length}")
            counts_arr = np.frombuffer(counts, dtype=np.int64)[order]
            if int(counts_arr.max(initial=0)) >= _COUNT_LIMIT:
                raise _fail(path, "a count does not fit in 32 bits")
            tables[length] = KeyTable(ids=ids_arr, counts=counts_arr)
        return tables


def _key_problem(ids: Sequence[int], max_length: int) -> str:
    """What is wrong with an aggregate key, given as canonical ids (-1 = an attribute not in the columns)."""
    if min(ids) < 0:
        return "names an attribute that is not in payload.columns"
    if len(ids) > max_length:
        return "combination is longer than meta.L"
    return "key is not canonical: attributes must be in ascending rank order, once"


# --------------------------------------------------------------------------------------------------------
# Reading JSON-like data: the dataclasses' type hints say what each field holds
# --------------------------------------------------------------------------------------------------------

_T = TypeVar("_T")

# v2 fields that v1 payloads give under another key, as a text in the default language.
_V1_TEXT_KEYS: dict[tuple[type[Any], str], str] = {(Column, "descriptions"): "description"}


def parse(model: type[_T], data: Any, path: str, *, language: Any = None) -> _T:
    """Read one dataclass of the contract from JSON-like data, checking the types its fields declare.

    The value rules are checked when the enclosing :class:`ExplorerPayload` is built, so use this for a part
    the payload will embed, and :meth:`ExplorerPayload.from_mapping` for a whole payload.

    Args:
        model: The dataclass, e.g. :class:`Stats`.
        data: The JSON-like value (mappings, lists, str, numbers, bools, None; numpy scalars are accepted).
        path: Where ``data`` sits in the payload, for error messages, e.g. ``payload.stats``.
        language: The default language, which a v1 plain text is written in.

    Raises:
        ValueError: A field is missing or of the wrong type; the message names it by path.

    Example:
        >>> parse(DpParameters, {"epsilon": 1, "delta": None}, "payload.meta.dp")
        DpParameters(epsilon=1, delta=None)
    """
    obj = _mapping(data, path)
    kwargs = {}
    # The ignore: mypy takes a class's __hash__ for the unbound method and so the class for unhashable.
    for name, hint, optional in _init_fields(model):  # type: ignore[arg-type]
        if name not in obj and (model, name) in _V1_TEXT_KEYS:
            v1_key = _V1_TEXT_KEYS[model, name]
            v1_path = f"{path}.{v1_key}"
            texts = _read(Text, _get(obj, v1_key, path), v1_path, language)
            _holds_default_language(texts, v1_path, language)
            kwargs[name] = texts
        elif obj.get(name) is None and optional:
            continue  # absent or null: the default
        else:
            kwargs[name] = _read(hint, _get(obj, name, path), f"{path}.{name}", language)
    return model(**kwargs)


def read_evaluation(staging_dir: Path) -> PublicEvaluation | None:
    """The statistics of the run's ``evaluation.json`` (the evaluate stage's hand-off), or None without one.

    The document is read with :func:`parse` by the types :class:`Stats` and :class:`AgreementRule` declare
    (the evaluate stage writes it from the same dataclasses, :meth:`PublicEvaluation.as_json`), then their
    value rules are checked. Fields that files older than contract v2 lack (``multi``, ``agreement``, a
    length's ``mean_proportional_error``, the rule) read as their defaults.

    Raises:
        ValueError: The document is not JSON or a field is missing, of the wrong type or out of bounds; the
            message starts with ``evaluation.json:`` and names the field by its path.
    """
    path = staging_dir / EVALUATION_JSON
    if not path.exists():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    try:
        if not isinstance(document, Mapping) or "stats" not in document:
            raise _fail("stats", "missing field")
        data = _mapping(document["stats"], "stats")
        stats = parse(Stats, data, "stats")
        stats.check("stats", document=_DOCUMENT)
        agreement = data.get("agreement")  # parse has checked it is an object when it is not null
        stated = agreement.get("rule") if agreement else None
        rule = None if stated is None else parse(AgreementRule, stated, "stats.agreement.rule")
        if rule is not None:
            rule.check("stats.agreement.rule", document=_DOCUMENT)
    except ValueError as error:
        # The reader's messages name the payload; this document is evaluation.json.
        raise ValueError(f"{EVALUATION_JSON}: {str(error).removeprefix(f'{_DOCUMENT}: ')}") from None
    return PublicEvaluation(stats=stats, agreement_rule=rule)


@cache
def _init_fields(model: type[Any]) -> tuple[tuple[str, Any, bool], ...]:
    """``(name, type hint, has a default)`` of each field ``model.__init__`` takes."""
    hints = typing.get_type_hints(model, include_extras=True)
    return tuple(
        (
            f.name,
            hints[f.name],
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
        )
        for f in dataclasses.fields(model)
        if f.init
    )


def _get(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _fail(f"{path}.{key}", "missing field")
    return obj[key]


def _is_list(value: Any) -> bool:
    # list and tuple first: the ABC check is slow, and it runs once per aggregate entry.
    return type(value) in (list, tuple) or (
        not isinstance(value, str | bytes) and isinstance(value, Sequence)
    )


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, "must be an object (mapping)")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if not _is_list(value):
        raise _fail(path, "must be a list")
    return typing.cast("Sequence[Any]", value)


def _is_whole_number(value: Any) -> bool:
    # bool is an int subclass in Python; a flag where a count belongs is a bug upstream.
    return type(value) is int or (not isinstance(value, bool) and isinstance(value, int | np.integer))


def _read(hint: Any, value: Any, path: str, language: Any, or_null: str = "") -> Any:
    """``value`` as the type ``hint`` (a field's type); ``or_null`` ends messages of a nullable field."""
    if hint == LangMap:
        return _lang_map(value, path)
    if hint == Text:
        return {language: value} if isinstance(value, str) else _lang_map(value, path)
    if hint == AggregateEntries:
        return _aggregate_entries(value, path)
    origin, args = get_origin(hint), get_args(hint)
    if origin in (types.UnionType, typing.Union):  # the contract's only unions are `X | None`
        (inner,) = (a for a in args if a is not type(None))
        return None if value is None else _read(inner, value, path, language, " or null")
    if origin is Literal:
        if value in args:
            return value
        choices = " or ".join(map(repr, args)) if len(args) <= 2 else "one of " + ", ".join(args)
        raise _fail(path, f"must be {choices}{or_null}")
    if dataclasses.is_dataclass(hint):
        return parse(typing.cast("type[Any]", hint), value, path, language=language)
    if origin is tuple:
        (item, _ellipsis) = args
        return tuple(_read(item, v, f"{path}[{i}]", language) for i, v in enumerate(_list(value, path)))
    if origin is Mapping:
        return {
            _read(str, k, path, language): _read(args[1], v, f"{path}.{k}", language)
            for k, v in _mapping(value, path).items()
        }
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(path, f"must be true or false{or_null}")
        return value
    if hint is int:
        if not _is_whole_number(value):
            raise _fail(path, f"must be a whole number{or_null}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise _fail(path, f"must be a number{or_null}")
        if not math.isfinite(float(value)):
            raise _fail(path, f"must be a finite number{or_null} (NaN and infinity cannot be shown)")
        # A whole number stays one: the page's JSON writes 5 for 5 and 5.0 for 5.0, as the payload did.
        return int(value) if isinstance(value, int | np.integer) else float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _fail(path, f"must be a string{or_null}")
        return value
    raise TypeError(f"explorer payload model: no reader for the type {hint!r} ({path})")


def _lang_map(value: Any, path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for lang, text in _mapping(value, path).items():
        if not isinstance(lang, str) or not _LANG_RE.match(lang):
            raise _fail(path, "keys must be language codes such as 'en' or 'fr'")
        if not isinstance(text, str):
            raise _fail(f"{path}.{lang}", "must be a string")
        out[lang] = text
    return out


def _aggregate_entries(value: Any, path: str) -> tuple[tuple[str, int], ...]:
    entries = []
    for i, entry in enumerate(_list(value, path)):
        if not _is_list(entry) or len(entry) != 2:
            raise _fail(f"{path}[{i}]", "must be a [key, protected_count] pair")
        key, count = entry
        if not isinstance(key, str) or not key:
            raise _fail(f"{path}[{i}][0]", "key must be a non-empty string")
        if not _is_whole_number(count):
            raise _fail(f"{path}[{i}][1]", "protected_count must be a whole number >= 0")
        entries.append((key, int(count)))
    return tuple(entries)
