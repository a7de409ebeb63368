"""Validate an explorer payload and compile it into the compact model the page reads.

The publish stage hands over a plain, JSON-compatible *payload* made only of public artifacts (the synthetic
microdata, the reportable aggregates and public-only evaluation statistics). :func:`compile_payload` validates
it and compiles it into a compact form the page can query quickly (canonical attribute ids, base64 typed
arrays, aggregates sorted for binary search).

Payload contract v2 (all keys required unless marked optional; "lang map" = ``{language code: text}``; a
"text" field is a lang map that must contain meta.default_language, or, as in v1, a plain str meaning that
language's text)::

    meta:
      title: text (non-empty)        description: text             dataset_version: str
      run_id: str                    created: ISO-8601 str         pipeline_version: str
      privacy_mode: "k_anonymity" | "dp"
      k: int >= 1                    L: int >= 1 (effective reporting length; resolve "0 = all" first)
      dp: null | {epsilon: number > 0, delta: number | null}
      synthesis_mode: str            synthetic_records: int (= synthetic.n)
      reportable_record_count: int   (protected n, = aggregates.record_count)
      licence: text                  citation: text
      languages: [str]               (subset of SUPPORTED_LANGUAGES)     default_language: str (in languages)
      small_count_threshold: int >= 1 | null (null = k): synthetic counts below it show as "< k" by default
      record_noun: lang map          (optional; what one record is, e.g. {"en": "identified victims"})
      agreement: {interval: int >= 1, relative: number >= 0, absolute: number >= 0}
                                     (optional; default {interval: k (dp: 1), relative: 0.1, absolute: k}).
        # The agreement rule (frontend/src/core.js `agrees`; evaluation.json applies the same): an official
        # count a stands for [a, a + interval - 1]; a synthetic count s agrees with it when
        # max(a - s, s - (a + interval - 1), 0) <= max(absolute, relative * a).
    columns: [                        # one entry per attribute column, in the order of the microdata
      {id: str (the normalised header), source_column: str, kind: "single" | "multi",
       labels: lang map, descriptions: lang map (optional; v1's `description: str` is still accepted),
       ordinal: bool (optional, default false: `values` are listed in natural order, codes ascending),
       geo: "iso3166-1-alpha2" | null (optional: values are ISO alpha-2 codes, named by the browser in the
            page language; value labels may be absent or equal to the code),
       indicator: bool (optional: a yes/no column whose only value is "1", shown as "yes" inside its group),
       values: [{code: int 1..65535, value: str, attribute: "<id>:<value>", rank: int >= 0,
                 labels: lang map}]}]
        # ids and values are normalised as in SPEC.md 2.2 (no ";" or ":"); values are never empty.
        # rank = the attribute's canonical id: ranks order attributes like their "col:value" strings in byte
        # order (distinct, not necessarily contiguous). A multi-value source column (e.g. IP_Gender =
        # "Female;Male") appears as indicator columns "IP_Gender_Female" (value "1") etc. with kind "multi"
        # and the same source_column; for those, labels name the indicator (e.g. {"en": "Female"}).
    default_columns: [str]            # column ids, group names or multi-value source columns
    pages: [{name: str, columns: [str], labels: lang map (optional)}]
        # default_columns and pages[].columns: an indicator column (kind "multi", or indicator: true) stands
        # for the first group holding it, so a page of 19 indicators shows one grouped chart; a country column
        # brings its world map (visual "map:<id>") just before its bar chart.
    groups: [{name: str, attributes: ["col:value", ...], labels: lang map (optional)}]
        # multi-attribute visuals; one group per multi-value source column is added automatically (named by
        # the source column) unless a group of that name exists.
    synthetic: {n: int, columns: {column id: base64 of a little-endian Uint16Array of length n}}
        # cell codes; 0 = empty cell, otherwise a code listed in that column's values
    aggregates: {record_count: int, entries: [[key, protected_count], ...]}
        # key = canonical combination: attributes joined by ";" in ascending rank order; every combination
        # of length <= L with count >= k (k-anonymity: counts are multiples of k; dp: counts >= 0).
        # Absent = "< k".
    stats: {by_length: [{length, official_combinations, synthetic_combinations, common, coverage_pct,
                         not_in_official_pct, mean_abs_error, mean_signed_error,
                         mean_proportional_error (optional)}],
            by_bucket: [{low, high, combinations, mean_abs_error, mean_proportional_error}],
            overall: {mean_abs_error, mean_proportional_error, coverage_pct, not_in_official_pct},
            multi: {min_length: 2, max_length: L, combinations: int, mean_abs_error, mean_proportional_error}
                   | null (optional; null when L < 2),
            agreement: {by_length: [{length, compared, agreeing, agreeing_pct}],
                        overall: {compared, agreeing, agreeing_pct}} (optional)}
        # public only (synthetic vs reportable aggregates); lists may be empty; metrics may be null.
        # *_pct are percentages (0-100); mean_proportional_error is a fraction (0.12 = 12 %); by_bucket.high
        # may be null for an open last bucket.
    downloads: [{name: str, href: relative path (e.g. "../synthetic_microdata.csv"), bytes: int,
                 sha256: 64 hex digits, kind: one of DOWNLOAD_KINDS (optional in v1 payloads),
                 description: str (optional; shown only when kind is absent)}]
        # with a kind the page shows the string table's download_<kind> sentence in the page language (the
        # publish stage writes the bundle's README from the same sentences in locales/ui/<lang>.json).

Errors are ``ValueError`` naming the offending field by its path (``payload.columns[2].values[0].rank``);
they never quote a data value, because values of a sensitive dataset must not reach logs.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re
from array import array
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DOWNLOAD_KINDS", "MODEL_FORMAT", "SUPPORTED_LANGUAGES", "compile_payload"]

#: UI languages with a complete string table in ``locales/ui/<lang>.json``.
SUPPORTED_LANGUAGES = ("en", "fr", "es", "de", "ar")

#: Version of the compiled model the page's script understands (MODEL_FORMAT in frontend/src/core.js).
MODEL_FORMAT = 2

#: What a download is; the page describes each kind with the string table's ``download_<kind>`` sentence.
DOWNLOAD_KINDS = (
    "synthetic_microdata",
    "synthetic_microdata_long",
    "aggregates_tsv",
    "aggregates_csv",
    "aggregates_tidy",
    "evaluation",
    "codebook",
    "readme",
    "licence",
)

#: The only ``columns[].geo`` value: ISO 3166-1 alpha-2 country codes.
GEO_ALPHA2 = "iso3166-1-alpha2"

#: Agreement tolerance when a payload does not state one (the Python side's defaults).
DEFAULT_RELATIVE_TOLERANCE = 0.1


_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_ALPHA2_RE = re.compile(r"^[A-Z]{2}$")
_MAX_CODE = 0xFFFF
_PRIVACY_MODES = ("k_anonymity", "dp")
_KINDS = ("single", "multi")


# --------------------------------------------------------------------------------------------------------
# Small typed readers. Each takes the parent mapping and the parent's path so errors name the full field.
# --------------------------------------------------------------------------------------------------------


def _fail(path: str, problem: str) -> ValueError:
    return ValueError(f"explorer payload: {path}: {problem}")


def _get(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _fail(f"{path}.{key}", "missing field")
    return obj[key]


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, "must be an object (mapping)")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _fail(path, "must be a list")
    return value


def _str(obj: Mapping[str, Any], key: str, path: str, *, non_empty: bool = False) -> str:
    value = _get(obj, key, path)
    if not isinstance(value, str):
        raise _fail(f"{path}.{key}", "must be a string")
    if non_empty and not value.strip():
        raise _fail(f"{path}.{key}", "must not be empty")
    return value


def _int(obj: Mapping[str, Any], key: str, path: str, *, minimum: int | None = None) -> int:
    value = _get(obj, key, path)
    # bool is an int subclass in Python; a flag where a count belongs is a bug upstream.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _fail(f"{path}.{key}", "must be a whole number")
    if minimum is not None and value < minimum:
        raise _fail(f"{path}.{key}", f"must be >= {minimum}")
    return int(value)


def _opt_number(obj: Mapping[str, Any], key: str, path: str) -> float | int | None:
    value = _get(obj, key, path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _fail(f"{path}.{key}", "must be a number or null")
    if not math.isfinite(float(value)):
        raise _fail(f"{path}.{key}", "must be a finite number or null (NaN and infinity cannot be shown)")
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def _lang_map(value: Any, path: str) -> dict[str, str]:
    mapping = _mapping(value, path)
    out: dict[str, str] = {}
    for lang, text in mapping.items():
        if not isinstance(lang, str) or not _LANG_RE.match(lang):
            raise _fail(path, "keys must be language codes such as 'en' or 'fr'")
        if not isinstance(text, str):
            raise _fail(f"{path}.{lang}", "must be a string")
        out[lang] = text
    return out


def _opt_lang_map(obj: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    if key not in obj or obj[key] is None:
        return {}
    return _lang_map(obj[key], f"{path}.{key}")


def _text(
    obj: Mapping[str, Any], key: str, path: str, default_language: str, *, non_empty: bool = False
) -> dict[str, str]:
    """A translatable text: a lang map holding the default language, or (v1) a str in the default language."""
    value = _get(obj, key, path)
    texts = {default_language: value} if isinstance(value, str) else _lang_map(value, f"{path}.{key}")
    if default_language not in texts:
        raise _fail(f"{path}.{key}", "must give a text for meta.default_language")
    if non_empty and not texts[default_language].strip():
        raise _fail(f"{path}.{key}.{default_language}", "must not be empty")
    return texts


def _opt_bool(obj: Mapping[str, Any], key: str, path: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise _fail(f"{path}.{key}", "must be true or false")
    return value


def _number(obj: Mapping[str, Any], key: str, path: str, *, minimum: float) -> float | int:
    value = _opt_number(obj, key, path)
    if value is None or value < minimum:
        raise _fail(f"{path}.{key}", f"must be a number >= {minimum:g}")
    return value


# --------------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------------


def _compile_meta(meta_raw: Any) -> dict[str, Any]:
    path = "payload.meta"
    meta = _mapping(meta_raw, path)
    languages = _list(_get(meta, "languages", path), f"{path}.languages")
    if not languages:
        raise _fail(f"{path}.languages", "list at least one language, e.g. ['en']")
    for i, lang in enumerate(languages):
        if lang not in SUPPORTED_LANGUAGES:
            raise _fail(
                f"{path}.languages[{i}]",
                f"unsupported UI language; supported: {', '.join(SUPPORTED_LANGUAGES)}",
            )
    if len(set(languages)) != len(languages):
        raise _fail(f"{path}.languages", "must not repeat a language")
    default_language = _get(meta, "default_language", path)
    if default_language not in languages:
        raise _fail(f"{path}.default_language", "must be one of meta.languages")
    out: dict[str, Any] = {
        "languages": list(languages),
        "default_language": default_language,
        "title": _text(meta, "title", path, default_language, non_empty=True),
        "description": _text(meta, "description", path, default_language),
        "dataset_version": _str(meta, "dataset_version", path),
        "run_id": _str(meta, "run_id", path, non_empty=True),
        "created": _str(meta, "created", path, non_empty=True),
        "pipeline_version": _str(meta, "pipeline_version", path),
        "synthesis_mode": _str(meta, "synthesis_mode", path),
        "licence": _text(meta, "licence", path, default_language),
        "citation": _text(meta, "citation", path, default_language),
        "k": _int(meta, "k", path, minimum=1),
        "L": _int(meta, "L", path, minimum=1),
        "synthetic_records": _int(meta, "synthetic_records", path, minimum=0),
        "reportable_record_count": _int(meta, "reportable_record_count", path, minimum=0),
    }
    try:
        # Python 3.10's parser does not accept a trailing "Z"; it means UTC.
        created = out["created"]
        datetime.fromisoformat(created[:-1] + "+00:00" if created.endswith("Z") else created)
    except ValueError:
        raise _fail(f"{path}.created", "must be an ISO-8601 timestamp, e.g. 2025-03-01T12:00:00Z") from None

    mode = _get(meta, "privacy_mode", path)
    if mode not in _PRIVACY_MODES:
        raise _fail(f"{path}.privacy_mode", "must be 'k_anonymity' or 'dp'")
    out["privacy_mode"] = mode

    dp = _get(meta, "dp", path)
    if dp is None:
        if mode == "dp":
            raise _fail(f"{path}.dp", "must give {epsilon, delta} when privacy_mode is 'dp'")
        out["dp"] = None
    else:
        dp_map = _mapping(dp, f"{path}.dp")
        epsilon = _opt_number(dp_map, "epsilon", f"{path}.dp")
        if epsilon is None or epsilon <= 0:
            raise _fail(f"{path}.dp.epsilon", "must be a number > 0")
        out["dp"] = {"epsilon": epsilon, "delta": _opt_number(dp_map, "delta", f"{path}.dp")}

    threshold = _get(meta, "small_count_threshold", path)
    if threshold is None:
        out["small_count_threshold"] = out["k"]
    else:
        out["small_count_threshold"] = _int(meta, "small_count_threshold", path, minimum=1)
    out["record_noun"] = _opt_lang_map(meta, "record_noun", path)
    out["agreement"] = _compile_agreement(meta.get("agreement"), out)
    return out


def _compile_agreement(raw: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The agreement rule's parameters (module docstring); v1 payloads get the Python side's defaults."""
    if raw is None:
        interval = meta["k"] if meta["privacy_mode"] == "k_anonymity" else 1
        return {"interval": interval, "relative": DEFAULT_RELATIVE_TOLERANCE, "absolute": meta["k"]}
    path = "payload.meta.agreement"
    rule = _mapping(raw, path)
    return {
        "interval": _int(rule, "interval", path, minimum=1),
        "relative": _number(rule, "relative", path, minimum=0),
        "absolute": _number(rule, "absolute", path, minimum=0),
    }


def _compile_columns(
    columns_raw: Any, default_language: str
) -> tuple[list[dict[str, Any]], list[tuple[str, int, int]]]:
    """Validate the codebook; return the columns and (attribute string, column index, value index) rows."""
    path = "payload.columns"
    columns_in = _list(columns_raw, path)
    if not columns_in:
        raise _fail(path, "list at least one column")
    columns: list[dict[str, Any]] = []
    attributes: list[tuple[str, int, int, int]] = []  # (attribute, rank, column index, value index)
    seen_ids: set[str] = set()
    for ci, col_raw in enumerate(columns_in):
        cpath = f"{path}[{ci}]"
        col = _mapping(col_raw, cpath)
        col_id = _str(col, "id", cpath, non_empty=True)
        if ";" in col_id or ":" in col_id:
            raise _fail(f"{cpath}.id", "must be a normalised header (no ';' or ':')")
        if col_id in seen_ids:
            raise _fail(f"{cpath}.id", f"duplicate column id {col_id!r}")
        seen_ids.add(col_id)
        kind = _get(col, "kind", cpath)
        if kind not in _KINDS:
            raise _fail(f"{cpath}.kind", "must be 'single' or 'multi'")
        values_in = _list(_get(col, "values", cpath), f"{cpath}.values")
        if not values_in:
            raise _fail(f"{cpath}.values", "list at least one value")
        values: list[dict[str, Any]] = []
        codes: set[int] = set()
        for vi, val_raw in enumerate(values_in):
            vpath = f"{cpath}.values[{vi}]"
            val = _mapping(val_raw, vpath)
            code = _int(val, "code", vpath, minimum=1)
            if code > _MAX_CODE:
                raise _fail(f"{vpath}.code", f"must be <= {_MAX_CODE} (codes are stored as Uint16)")
            if code in codes:
                raise _fail(f"{vpath}.code", "duplicate code in this column")
            codes.add(code)
            value = _str(val, "value", vpath, non_empty=True)
            if ";" in value or ":" in value:
                raise _fail(f"{vpath}.value", "must be normalised (';' and ':' replaced, SPEC.md 2.2)")
            attribute = _str(val, "attribute", vpath)
            if attribute != f"{col_id}:{value}":
                raise _fail(f"{vpath}.attribute", "must equal '<column id>:<value>' of this column and value")
            rank = _int(val, "rank", vpath, minimum=0)
            attributes.append((attribute, rank, ci, vi))
            values.append({"code": code, "value": value, "labels": _opt_lang_map(val, "labels", vpath)})
        if "descriptions" in col:
            descriptions = _lang_map(col["descriptions"], f"{cpath}.descriptions")
        else:  # v1: one description in the default language
            descriptions = _text(col, "description", cpath, default_language)
        geo = col.get("geo")
        if geo not in (None, GEO_ALPHA2):
            raise _fail(f"{cpath}.geo", f"must be {GEO_ALPHA2!r} or null")
        if geo and not all(_ALPHA2_RE.match(v["value"]) for v in values):
            raise _fail(
                f"{cpath}.values", "a country column's values must be ISO 3166-1 alpha-2 codes (two capitals)"
            )
        indicator = _opt_bool(col, "indicator", cpath)
        if indicator and [v["value"] for v in values] != ["1"]:
            raise _fail(f"{cpath}.values", "an indicator column has exactly one value, '1'")
        ordinal = _opt_bool(col, "ordinal", cpath)
        if ordinal and [v["code"] for v in values] != sorted(v["code"] for v in values):
            raise _fail(
                f"{cpath}.values", "an ordinal column lists its values in natural order, codes ascending"
            )
        columns.append(
            {
                "id": col_id,
                "source": _str(col, "source_column", cpath, non_empty=True),
                "kind": kind,
                "labels": _lang_map(_get(col, "labels", cpath), f"{cpath}.labels"),
                "descriptions": descriptions,
                "ordinal": ordinal,
                "geo": geo,
                "indicator": indicator,
                "values": values,
            }
        )

    # Ranks must order attributes exactly like their strings in byte order (= code point order for str),
    # because the aggregate keys and the page's binary search both rely on that canonical order.
    by_rank = sorted(attributes, key=lambda a: a[1])
    for prev, cur in itertools.pairwise(by_rank):
        if prev[1] == cur[1]:
            raise _fail(
                f"{path}[{cur[2]}].values[{cur[3]}].rank",
                f"rank is also used by {path}[{prev[2]}].values[{prev[3]}]",
            )
        if prev[0] >= cur[0]:
            raise _fail(
                f"{path}[{cur[2]}].values[{cur[3]}].rank",
                "ranks must follow the byte order of the attribute strings ('col:value')",
            )
    return columns, [(a, ci, vi) for a, _, ci, vi in by_rank]


def _decode_codes(encoded: Any, n: int, codes: set[int], path: str) -> str:
    """Check one column's base64 codes: right length, and only listed codes (or 0 = empty)."""
    if not isinstance(encoded, str):
        raise _fail(path, "must be a base64 string")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(path, "is not valid base64") from None
    if len(raw) != 2 * n:
        raise _fail(path, f"decodes to {len(raw)} bytes; expected 2 * synthetic.n = {2 * n}")
    present = np.unique(np.frombuffer(raw, dtype="<u2"))
    if not set(present.tolist()) - {0} <= codes:
        raise _fail(path, "contains a code that is not listed in the column's values")
    return encoded


def _compile_synthetic(
    synthetic_raw: Any, columns: list[dict[str, Any]], meta: Mapping[str, Any]
) -> dict[str, Any]:
    path = "payload.synthetic"
    syn = _mapping(synthetic_raw, path)
    n = _int(syn, "n", path, minimum=0)
    if n != meta["synthetic_records"]:
        raise _fail(f"{path}.n", "must equal meta.synthetic_records")
    encoded = _mapping(_get(syn, "columns", path), f"{path}.columns")
    known = {c["id"] for c in columns}
    for col_id in encoded:
        if col_id not in known:
            raise _fail(f"{path}.columns", f"has codes for {col_id!r}, which is not in payload.columns")
    out = []
    for col in columns:
        cpath = f"{path}.columns.{col['id']}"
        if col["id"] not in encoded:
            raise _fail(cpath, "missing field")
        out.append(_decode_codes(encoded[col["id"]], n, {v["code"] for v in col["values"]}, cpath))
    return {"n": n, "codes": out}


def _compile_aggregates(
    aggregates_raw: Any, attribute_rank: Mapping[str, int], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Turn ``[key, count]`` entries into per-length tables of dense ranks, sorted for binary search."""
    path = "payload.aggregates"
    agg = _mapping(aggregates_raw, path)
    record_count = _int(agg, "record_count", path, minimum=0)
    if record_count != meta["reportable_record_count"]:
        raise _fail(f"{path}.record_count", "must equal meta.reportable_record_count")
    entries = _list(_get(agg, "entries", path), f"{path}.entries")
    k, max_len = meta["k"], meta["L"]
    k_anonymity = meta["privacy_mode"] == "k_anonymity"
    # Flat machine-integer arrays per length: millions of keys would not fit comfortably as lists of lists.
    by_length: dict[int, tuple[array[int], array[int]]] = {}
    for i, entry in enumerate(entries):
        epath = f"{path}.entries[{i}]"
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise _fail(epath, "must be a [key, protected_count] pair")
        key, count = entry
        if not isinstance(key, str) or not key:
            raise _fail(f"{epath}[0]", "key must be a non-empty string")
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise _fail(f"{epath}[1]", "protected_count must be a whole number >= 0")
        if k_anonymity and (count < k or count % k):
            raise _fail(f"{epath}[1]", "in k_anonymity mode a count must be a multiple of k and >= k")
        ranks = []
        for attribute in key.split(";"):
            rank = attribute_rank.get(attribute)
            if rank is None:
                raise _fail(f"{epath}[0]", "names an attribute that is not in payload.columns")
            ranks.append(rank)
        if len(ranks) > max_len:
            raise _fail(f"{epath}[0]", "combination is longer than meta.L")
        if any(a >= b for a, b in itertools.pairwise(ranks)):
            raise _fail(
                f"{epath}[0]", "key is not canonical: attributes must be in ascending rank order, once"
            )
        bucket = by_length.setdefault(len(ranks), (array("q"), array("q")))
        bucket[0].extend(ranks)
        bucket[1].append(int(count))

    n_attributes = len(attribute_rank)
    width = 2 if n_attributes <= _MAX_CODE else 4
    tables = []
    for length in sorted(by_length):
        rank_rows, counts = by_length[length]
        ranks_arr: npt.NDArray[np.int64] = np.frombuffer(rank_rows, dtype=np.int64).reshape(-1, length)
        order = np.lexsort(ranks_arr.T[::-1])  # lexicographic by rank tuple = canonical key order
        ranks_arr = ranks_arr[order]
        if len(ranks_arr) > 1 and bool(np.any(np.all(ranks_arr[1:] == ranks_arr[:-1], axis=1))):
            raise _fail(f"{path}.entries", f"repeats a key of length {length}")
        counts_arr = np.frombuffer(counts, dtype=np.int64)[order]
        if int(counts_arr.max(initial=0)) >= 2**32:
            raise _fail(f"{path}.entries", "a count does not fit in 32 bits")
        tables.append(
            {
                "length": length,
                "m": len(counts_arr),
                "width": width,
                "ranks": _b64(ranks_arr.astype("<u2" if width == 2 else "<u4")),
                "counts": _b64(counts_arr.astype("<u4")),
            }
        )
    return {"record_count": record_count, "tables": tables}


def _b64(array: npt.NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _compile_layout(
    payload: Mapping[str, Any], columns: list[dict[str, Any]], attribute_index: Mapping[str, int]
) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
    """Build the visuals and resolve default columns and pages.

    Visuals: one per single column, a world map per country column, one per group. A name in default_columns
    or pages resolves to visual ids: an indicator column to the first group holding it (one grouped chart,
    never a one-bar chart per indicator), a country column to its map and then its bar chart.
    """
    visuals: list[dict[str, Any]] = []
    names: dict[str, list[str]] = {}  # any accepted name -> visual ids it shows
    for ci, col in enumerate(columns):
        if col["kind"] == "single":
            attrs = [attribute_index[f"{col['id']}:{v['value']}"] for v in col["values"]]
            names[col["id"]] = []
            if col["geo"]:
                visuals.append({"id": f"map:{col['id']}", "type": "map", "column": ci, "attrs": attrs})
                names[col["id"]].append(f"map:{col['id']}")
            visuals.append({"id": col["id"], "type": "column", "column": ci, "attrs": attrs})
            names[col["id"]].append(col["id"])

    attribute_columns = {
        attribute_index[f"{c['id']}:{v['value']}"]: ci for ci, c in enumerate(columns) for v in c["values"]
    }
    indicator_groups: dict[int, str] = {}  # indicator column index -> the first group visual holding it
    gpath = "payload.groups"
    groups = _list(_get(payload, "groups", "payload"), gpath)
    group_names: set[str] = set()
    for gi, group_raw in enumerate(groups):
        path = f"{gpath}[{gi}]"
        group = _mapping(group_raw, path)
        name = _str(group, "name", path, non_empty=True)
        if name in group_names:
            raise _fail(f"{path}.name", "duplicate group name")
        group_names.add(name)
        attrs_in = _list(_get(group, "attributes", path), f"{path}.attributes")
        if not attrs_in:
            raise _fail(f"{path}.attributes", "list at least one attribute")
        attrs = []
        for ai, attribute in enumerate(attrs_in):
            if not isinstance(attribute, str) or attribute not in attribute_index:
                raise _fail(f"{path}.attributes[{ai}]", "is not an attribute of payload.columns")
            attrs.append(attribute_index[attribute])
        if len(set(attrs)) != len(attrs):
            raise _fail(f"{path}.attributes", "lists an attribute twice")
        vid = f"group:{name}"
        visuals.append(
            {
                "id": vid,
                "type": "group",
                "name": name,
                "labels": _opt_lang_map(group, "labels", path),
                "attrs": attrs,
                "auto": False,
            }
        )
        names.setdefault(name, [vid])
        for a in attrs:  # an indicator column stands for the first group that holds it
            ci = attribute_columns[a]
            if columns[ci]["indicator"]:
                indicator_groups.setdefault(ci, vid)

    for ci, vid in indicator_groups.items():
        names[columns[ci]["id"]] = [vid]

    # One automatic group per multi-value source column, in column order, e.g. all IP_Gender_* indicators.
    sources: dict[str, list[int]] = {}
    for ci, col in enumerate(columns):
        if col["kind"] == "multi":
            sources.setdefault(col["source"], []).append(ci)
    for source, cis in sources.items():
        if source not in group_names:
            vid = f"group:{source}"
            attrs = [
                attribute_index[f"{columns[ci]['id']}:{v['value']}"]
                for ci in cis
                for v in columns[ci]["values"]
            ]
            visuals.append(
                {"id": vid, "type": "group", "name": source, "labels": {}, "attrs": attrs, "auto": True}
            )
            names.setdefault(source, [vid])
        for ci in cis:  # an indicator column's id stands for its source's group
            names.setdefault(columns[ci]["id"], names[source])

    def resolve(items: Sequence[Any], path: str) -> list[str]:
        out: list[str] = []
        for i, name in enumerate(items):
            if not isinstance(name, str) or name not in names:
                raise _fail(f"{path}[{i}]", "is not a column id, group name or multi-value source column")
            out.extend(vid for vid in names[name] if vid not in out)
        return out

    default = resolve(
        _list(_get(payload, "default_columns", "payload"), "payload.default_columns"),
        "payload.default_columns",
    )
    pages_out = []
    ppath = "payload.pages"
    for pi, page_raw in enumerate(_list(_get(payload, "pages", "payload"), ppath)):
        path = f"{ppath}[{pi}]"
        page = _mapping(page_raw, path)
        pages_out.append(
            {
                "name": _str(page, "name", path, non_empty=True),
                "labels": _opt_lang_map(page, "labels", path),
                "visuals": resolve(_list(_get(page, "columns", path), f"{path}.columns"), f"{path}.columns"),
            }
        )
    if len({p["name"] for p in pages_out}) != len(pages_out):
        raise _fail(ppath, "page names must be unique")
    return visuals, default, pages_out


_BY_LENGTH_INTS = ("length", "official_combinations", "synthetic_combinations", "common")
_BY_LENGTH_NUMS = ("coverage_pct", "not_in_official_pct", "mean_abs_error", "mean_signed_error")
_MULTI_NUMS = ("mean_abs_error", "mean_proportional_error")
_AGREEMENT_INTS = ("compared", "agreeing")
_BY_BUCKET_NUMS = ("mean_abs_error", "mean_proportional_error")
_OVERALL_NUMS = ("mean_abs_error", "mean_proportional_error", "coverage_pct", "not_in_official_pct")


def _compile_stats(stats_raw: Any) -> dict[str, Any]:
    path = "payload.stats"
    stats = _mapping(stats_raw, path)
    by_length = []
    for i, row_raw in enumerate(_list(_get(stats, "by_length", path), f"{path}.by_length")):
        rpath = f"{path}.by_length[{i}]"
        row = _mapping(row_raw, rpath)
        out: dict[str, Any] = {key: _int(row, key, rpath, minimum=0) for key in _BY_LENGTH_INTS}
        out.update({key: _opt_number(row, key, rpath) for key in _BY_LENGTH_NUMS})
        # v2: the same measure for every length (older evaluation.json files lack it)
        out["mean_proportional_error"] = (
            _opt_number(row, "mean_proportional_error", rpath) if "mean_proportional_error" in row else None
        )
        by_length.append(out)
    by_bucket = []
    for i, row_raw in enumerate(_list(_get(stats, "by_bucket", path), f"{path}.by_bucket")):
        rpath = f"{path}.by_bucket[{i}]"
        row = _mapping(row_raw, rpath)
        high = _get(row, "high", rpath)
        out = {
            "low": _int(row, "low", rpath, minimum=0),
            "high": None if high is None else _int(row, "high", rpath, minimum=0),
            "combinations": _int(row, "combinations", rpath, minimum=0),
        }
        out.update({key: _opt_number(row, key, rpath) for key in _BY_BUCKET_NUMS})
        by_bucket.append(out)
    overall = _mapping(_get(stats, "overall", path), f"{path}.overall")
    return {
        "by_length": sorted(by_length, key=lambda r: r["length"]),
        "by_bucket": sorted(by_bucket, key=lambda r: r["low"]),
        "overall": {key: _opt_number(overall, key, f"{path}.overall") for key in _OVERALL_NUMS},
        "multi": _compile_multi(stats.get("multi"), f"{path}.multi"),
        "agreement": _compile_agreement_stats(stats.get("agreement"), f"{path}.agreement"),
    }


def _compile_multi(raw: Any, path: str) -> dict[str, Any] | None:
    """Error over all combinations of 2..L characteristics, told like the single-characteristic one."""
    if raw is None:
        return None
    multi = _mapping(raw, path)
    out: dict[str, Any] = {
        "min_length": _int(multi, "min_length", path, minimum=2),
        "max_length": _int(multi, "max_length", path, minimum=2),
        "combinations": _int(multi, "combinations", path, minimum=0),
    }
    if out["max_length"] < out["min_length"]:
        raise _fail(f"{path}.max_length", "must be >= min_length")
    out.update({key: _opt_number(multi, key, path) for key in _MULTI_NUMS})
    return out


def _agreement_row(raw: Any, path: str) -> dict[str, Any]:
    row = _mapping(raw, path)
    out: dict[str, Any] = {key: _int(row, key, path, minimum=0) for key in _AGREEMENT_INTS}
    if out["agreeing"] > out["compared"]:
        raise _fail(f"{path}.agreeing", "must be <= compared")
    out["agreeing_pct"] = _opt_number(row, "agreeing_pct", path)
    return out


def _compile_agreement_stats(raw: Any, path: str) -> dict[str, Any] | None:
    """Share of official counts the synthetic data agree with (the agreement rule), per length and overall."""
    if raw is None:
        return None
    agreement = _mapping(raw, path)
    rows = []
    for i, row_raw in enumerate(_list(_get(agreement, "by_length", path), f"{path}.by_length")):
        row = _agreement_row(row_raw, f"{path}.by_length[{i}]")
        row["length"] = _int(
            _mapping(row_raw, f"{path}.by_length[{i}]"), "length", f"{path}.by_length[{i}]", minimum=1
        )
        rows.append(row)
    return {
        "by_length": sorted(rows, key=lambda r: r["length"]),
        "overall": _agreement_row(_get(agreement, "overall", path), f"{path}.overall"),
    }


def _compile_downloads(downloads_raw: Any) -> list[dict[str, Any]]:
    path = "payload.downloads"
    out = []
    for i, item_raw in enumerate(_list(downloads_raw, path)):
        ipath = f"{path}[{i}]"
        item = _mapping(item_raw, ipath)
        href = _str(item, "href", ipath, non_empty=True)
        # Only relative links: an absolute URL would make a "downloads" click leave the offline bundle.
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", href) or href.startswith(("/", "\\")) or "\\" in href:
            raise _fail(f"{ipath}.href", "must be a relative path such as ../synthetic_microdata.csv")
        sha = _str(item, "sha256", ipath)
        if not _SHA256_RE.match(sha):
            raise _fail(f"{ipath}.sha256", "must be 64 lower-case hexadecimal digits")
        kind = item.get("kind")
        if kind is not None and kind not in DOWNLOAD_KINDS:
            raise _fail(f"{ipath}.kind", f"must be one of {', '.join(DOWNLOAD_KINDS)}")
        if kind is None and "description" not in item:
            raise _fail(f"{ipath}.kind", "missing field (v1 payloads may give a description instead)")
        out.append(
            {
                "name": _str(item, "name", ipath, non_empty=True),
                "href": href,
                "bytes": _int(item, "bytes", ipath, minimum=0),
                "sha256": sha,
                "kind": kind,
                # Shown only without a kind; a kind's sentence comes from the string table in every language.
                "description": _str(item, "description", ipath) if kind is None else "",
            }
        )
    return out


def compile_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a payload and compile it into the model the page embeds.

    Args:
        payload: The explorer payload described in this module's docstring.

    Returns:
        A JSON-compatible dict: meta, columns, ``attrs`` (``[column index, value index]`` per attribute, in
        canonical order, so an attribute's position is its dense canonical id), visuals, default visuals,
        pages, synthetic codes, aggregate tables (sorted dense-id tuples per length, base64), stats and
        downloads.

    Raises:
        ValueError: A field is missing or invalid; the message names it by path and never quotes values.
    """
    root = _mapping(payload, "payload")
    meta = _compile_meta(_get(root, "meta", "payload"))
    columns, ordered = _compile_columns(_get(root, "columns", "payload"), meta["default_language"])
    attribute_index = {attribute: i for i, (attribute, _, _) in enumerate(ordered)}
    for i, (_, ci, vi) in enumerate(ordered):
        columns[ci]["values"][vi]["attr"] = i
    visuals, default, pages = _compile_layout(root, columns, attribute_index)
    if not default:
        # Without a configured default show the first six visuals, as SDS does, rather than an empty grid.
        default = [v["id"] for v in visuals[:6]]
    return {
        "format": MODEL_FORMAT,
        "meta": meta,
        "columns": columns,
        "attrs": [[ci, vi] for _, ci, vi in ordered],
        "visuals": visuals,
        "default_visuals": default,
        "pages": pages,
        "synthetic": _compile_synthetic(_get(root, "synthetic", "payload"), columns, meta),
        "aggregates": _compile_aggregates(_get(root, "aggregates", "payload"), attribute_index, meta),
        "stats": _compile_stats(_get(root, "stats", "payload")),
        "downloads": _compile_downloads(_get(root, "downloads", "payload")),
    }
