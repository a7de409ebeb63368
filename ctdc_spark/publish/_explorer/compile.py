"""Compile a checked :class:`.model.ExplorerPayload` into the compact model the page reads.

The compiled model is one JSON object: the page's visuals resolved from the layout, attributes by their
dense canonical ids (an attribute's position in canonical order), the synthetic cells and the aggregate key
tables as base64 typed arrays (the keys of each length sorted for binary search), the statistics sorted.
The payload brings the canonical order and the sorted key tables (checking it computes them); this module
lays them out. frontend/src/core.js reads the result; :data:`MODEL_FORMAT` is the version both sides agree on.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import numpy.typing as npt

from ctdc_spark.publish._explorer.model import UINT16_MAX, Column, ExplorerPayload, Meta, Stats

__all__ = ["MODEL_FORMAT", "compile_payload"]

#: Version of the compiled model the page's script understands (MODEL_FORMAT in frontend/src/core.js).
MODEL_FORMAT = 2

#: Without configured default columns the page shows this many visuals first, as SDS does.
_DEFAULT_VISUALS = 6


def compile_payload(payload: ExplorerPayload) -> dict[str, Any]:
    """Compile a payload into the model the page embeds.

    Args:
        payload: A checked payload (see :mod:`.model` for the contract).

    Returns:
        A JSON-compatible dict: meta, columns, ``attrs`` (``[column index, value index]`` per attribute, in
        canonical order, so an attribute's position is its dense canonical id), visuals, default visuals,
        pages, synthetic codes, aggregate tables (sorted dense-id tuples per length, base64), stats and
        downloads.
    """
    canonical_id = {a.attribute: i for i, a in enumerate(payload.attribute_order)}
    visuals, names = _visuals(payload, canonical_id)
    # Without a configured default show the first visuals rather than an empty grid.
    default = _resolve(payload.default_columns, names) or [v["id"] for v in visuals[:_DEFAULT_VISUALS]]
    return {
        "format": MODEL_FORMAT,
        "meta": _meta(payload.meta),
        "columns": [_column(c, canonical_id) for c in payload.columns],
        "attrs": [[a.column_index, a.value_index] for a in payload.attribute_order],
        "visuals": visuals,
        "default_visuals": default,
        "pages": [
            {"name": p.name, "labels": dict(p.labels), "visuals": _resolve(p.columns, names)}
            for p in payload.pages
        ],
        "synthetic": {
            "n": payload.synthetic.n,
            "codes": [payload.synthetic.columns[c.id] for c in payload.columns],
        },
        "aggregates": _aggregates(payload),
        "stats": _stats(payload.stats),
        "downloads": [
            {
                "name": d.name,
                "href": d.href,
                "bytes": d.bytes,
                "sha256": d.sha256,
                "kind": d.kind,
                # Shown only without a kind; a kind's sentence comes from the string table in every language.
                "description": d.description if d.kind is None else "",
            }
            for d in payload.downloads
        ],
    }


def _meta(meta: Meta) -> dict[str, Any]:
    return {
        "languages": list(meta.languages),
        "default_language": meta.default_language,
        "title": dict(meta.title),
        "description": dict(meta.description),
        "dataset_version": meta.dataset_version,
        "run_id": meta.run_id,
        "created": meta.created,
        "pipeline_version": meta.pipeline_version,
        "synthesis_mode": meta.synthesis_mode,
        "licence": dict(meta.licence),
        "citation": dict(meta.citation),
        "k": meta.k,
        "L": meta.L,
        "synthetic_records": meta.synthetic_records,
        "reportable_record_count": meta.reportable_record_count,
        "privacy_mode": meta.privacy_mode,
        "dp": None if meta.dp is None else asdict(meta.dp),
        "small_count_threshold": meta.effective_small_count_threshold,
        "record_noun": dict(meta.record_noun),
        "agreement": meta.effective_agreement.as_dict(),
    }


def _column(column: Column, canonical_id: Mapping[str, int]) -> dict[str, Any]:
    return {
        "id": column.id,
        "source": column.source_column,
        "kind": column.kind,
        "labels": dict(column.labels),
        "descriptions": dict(column.descriptions),
        "ordinal": column.ordinal,
        "geo": column.geo,
        "indicator": column.indicator,
        "values": [
            {"code": v.code, "value": v.value, "labels": dict(v.labels), "attr": canonical_id[v.attribute]}
            for v in column.values
        ],
    }


def _visuals(
    payload: ExplorerPayload, canonical_id: Mapping[str, int]
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The visuals, and the visual ids each name of ``default_columns`` and pages stands for.

    Visuals: one per single column, a world map per country column, one per group. An indicator column
    stands for the first group holding it (one grouped chart, never a one-bar chart per indicator), a
    country column for its map and then its bar chart.
    """
    columns = payload.columns
    visuals: list[dict[str, Any]] = []
    names: dict[str, list[str]] = {}  # any accepted name -> visual ids it shows
    for ci, col in enumerate(columns):
        if col.kind == "single":
            attrs = [canonical_id[v.attribute] for v in col.values]
            names[col.id] = []
            if col.geo:
                visuals.append({"id": f"map:{col.id}", "type": "map", "column": ci, "attrs": attrs})
                names[col.id].append(f"map:{col.id}")
            visuals.append({"id": col.id, "type": "column", "column": ci, "attrs": attrs})
            names[col.id].append(col.id)

    column_of = {canonical_id[v.attribute]: ci for ci, c in enumerate(columns) for v in c.values}
    indicator_groups: dict[int, str] = {}  # indicator column index -> the first group visual holding it
    for group in payload.groups:
        attrs = [canonical_id[a] for a in group.attributes]
        vid = f"group:{group.name}"
        visuals.append(
            {
                "id": vid,
                "type": "group",
                "name": group.name,
                "labels": dict(group.labels),
                "attrs": attrs,
                "auto": False,
            }
        )
        names.setdefault(group.name, [vid])
        for a in attrs:
            ci = column_of[a]
            if columns[ci].indicator:
                indicator_groups.setdefault(ci, vid)

    for ci, vid in indicator_groups.items():
        names[columns[ci].id] = [vid]

    # One automatic group per multi-value source column, in column order, e.g. all IP_Gender_* indicators.
    group_names = {g.name for g in payload.groups}
    sources: dict[str, list[int]] = {}
    for ci, col in enumerate(columns):
        if col.kind == "multi":
            sources.setdefault(col.source_column, []).append(ci)
    for source, cis in sources.items():
        if source not in group_names:
            vid = f"group:{source}"
            attrs = [canonical_id[v.attribute] for ci in cis for v in columns[ci].values]
            visuals.append(
                {"id": vid, "type": "group", "name": source, "labels": {}, "attrs": attrs, "auto": True}
            )
            names.setdefault(source, [vid])
        for ci in cis:  # an indicator column's id stands for its source's group
            names.setdefault(columns[ci].id, names[source])
    return visuals, names


def _resolve(items: Sequence[str], names: Mapping[str, list[str]]) -> list[str]:
    out: list[str] = []
    for name in items:
        out.extend(vid for vid in names[name] if vid not in out)
    return out


def _aggregates(payload: ExplorerPayload) -> dict[str, Any]:
    """Per length: rows of dense ids (Uint16, or Uint32 past 65535 attributes) and Uint32 counts."""
    width = 2 if len(payload.attribute_order) <= UINT16_MAX else 4
    tables = [
        {
            "length": length,
            "m": len(table.counts),
            "width": width,
            "ranks": _b64(table.ids.astype("<u2" if width == 2 else "<u4")),
            "counts": _b64(table.counts.astype("<u4")),
        }
        for length, table in sorted(payload.aggregate_tables.items())
    ]
    return {"record_count": payload.aggregates.record_count, "tables": tables}


def _b64(array: npt.NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _stats(stats: Stats) -> dict[str, Any]:
    # asdict writes the fields in their declared order, which is the order of keys the page always got.
    agreement = stats.agreement
    return {
        "by_length": [asdict(r) for r in sorted(stats.by_length, key=lambda r: r.length)],
        "by_bucket": [asdict(r) for r in sorted(stats.by_bucket, key=lambda r: r.low)],
        "overall": asdict(stats.overall),
        "multi": None if stats.multi is None else asdict(stats.multi),
        "agreement": None
        if agreement is None
        else {
            "by_length": [asdict(r) for r in sorted(agreement.by_length, key=lambda r: r.length)],
            "overall": asdict(agreement.overall),
        },
    }
