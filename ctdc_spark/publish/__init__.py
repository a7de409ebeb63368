"""The publish stage: the offline explorer and the release metadata, from public artefacts only.

Reads the public tables (``synthetic_records``, ``reportable_aggregates``), the column layout and
the attribute names (never the sensitive counts), and the public ``evaluation.json``; embeds only
attributes that are public (reportable, or present in the verified synthetic data), so a rare
attribute value can never reach the page. Writes ``explorer/index.html`` and the ``metadata.json``
sections ``parameters`` and ``files`` into the run's staging folder, which the pipeline then
publishes atomically as ``release/<run_id>/``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark import __version__
from ctdc_spark.aggregate import effective_length
from ctdc_spark.aggregate._export import published_record_count
from ctdc_spark.errors import StageFailedError
from ctdc_spark.io import delta as delta_io
from ctdc_spark.io.files import sha256_file, update_metadata
from ctdc_spark.publish._explorer import build_explorer
from ctdc_spark.schemas import ATTRIBUTES, COLUMNS, REPORTABLE_AGGREGATES, SYNTHETIC_RECORDS
from ctdc_spark.stage import RunContext, StageResult

__all__ = ["build_explorer", "run_publish"]

log = logging.getLogger(__name__)

DOWNLOAD_DESCRIPTIONS = {
    "synthetic_microdata.csv": "Synthetic records (wide, one column per original column). Not real people.",
    "synthetic_microdata_long.csv": "Synthetic records in long form (Id, Attribute, Value).",
    "reportable_aggregates.tsv": "Official counts of every attribute combination, rounded down (SDS format).",
    "reportable_aggregates.csv": "Official counts for spreadsheets (selections, length, protected_count).",
    "evaluation.json": "Fidelity of the synthetic data against the official counts.",
}
EMPTY_STATS: Mapping[str, Any] = {
    "by_length": [],
    "by_bucket": [],
    "overall": {
        "mean_abs_error": None,
        "mean_proportional_error": None,
        "coverage_pct": None,
        "not_in_official_pct": None,
    },
}


def _read(spark: SparkSession, ctx: RunContext, spec: Any) -> DataFrame:
    return delta_io.read_run_table(spark, spec, root=ctx.root, run_id=ctx.run_id)


def _labels(labels: Mapping[str, Mapping[str, str]], key: str, fallback: str) -> dict[str, str]:
    out = {lang: table[key] for lang, table in labels.items() if key in table}
    out.setdefault("en", fallback)
    return out


def _public_dictionary(spark: SparkSession, ctx: RunContext) -> tuple[list[dict[str, Any]], DataFrame]:
    """Columns with their public attributes, and the synthetic records (collected later)."""
    reportable = _read(spark, ctx, REPORTABLE_AGGREGATES)
    synthetic = _read(spark, ctx, SYNTHETIC_RECORDS)
    public_ids = (
        reportable.where(F.col("length") == 1)
        .select(F.col("combo")[0].alias("attr_id"))
        .union(synthetic.select(F.explode("attrs").alias("attr_id")))
        .distinct()
    )
    names = _read(spark, ctx, ATTRIBUTES).select("attr_id", "column", "value", "source_value", "column_index")
    public = names.join(public_ids, "attr_id").orderBy("attr_id").collect()
    columns = _read(spark, ctx, COLUMNS).orderBy("column_index").collect()
    by_column: dict[str, list[Any]] = {}
    for row in public:
        by_column.setdefault(row["column"], []).append(row)
    labels = ctx.cfg.explorer.column_labels
    value_labels = ctx.cfg.explorer.value_labels
    out = []
    for col in columns:
        multi = col["multi_value_delimiter"] is not None
        values = by_column.get(col["column"], [])
        if not values:
            # Nothing public to show; an indicator column's name would even reveal its value.
            continue
        out.append(
            {
                "id": col["column"],
                "source_column": col["source_column"],
                "kind": "multi" if multi else "single",
                "labels": _labels(labels, col["column"], col["column"]),
                "description": "",
                "values": [
                    {
                        "code": code,
                        "value": row["value"],
                        "attribute": f"{row['column']}:{row['value']}",
                        "rank": row["attr_id"],
                        "labels": _labels(
                            value_labels,
                            f"{row['column']}:{row['value']}",
                            row["source_value"] if multi else row["value"],
                        ),
                    }
                    for code, row in enumerate(values, start=1)
                ],
            }
        )
    return out, synthetic


def _synthetic_codes(synthetic: DataFrame, columns: list[dict[str, Any]]) -> tuple[int, dict[str, str]]:
    """Column store of the synthetic records: per column, base64 little-endian uint16 codes."""
    table = synthetic.select("record_id", "attrs").orderBy("record_id").toArrow()
    attrs = table.column("attrs").combine_chunks()
    n = table.num_rows
    lengths = attrs.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    values = attrs.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.repeat(np.arange(n), lengths)
    size = max((v["rank"] for c in columns for v in c["values"]), default=-1) + 1
    position = np.full(size, -1, dtype=np.int64)
    code = np.zeros(size, dtype=np.uint16)
    for i, col in enumerate(columns):
        for v in col["values"]:
            position[v["rank"]], code[v["rank"]] = i, v["code"]
    cells = np.zeros((len(columns), n), dtype="<u2")
    known = values < size
    cells[position[values[known]], rows[known]] = code[values[known]]
    return n, {
        col["id"]: base64.b64encode(cells[i].tobytes()).decode("ascii") for i, col in enumerate(columns)
    }


def _downloads(staging: Path) -> list[dict[str, Any]]:
    files = sorted(p for p in staging.iterdir() if p.is_file() and p.name in DOWNLOAD_DESCRIPTIONS)
    return [
        {
            "name": p.name,
            "href": f"../{p.name}",
            "bytes": p.stat().st_size,
            "sha256": sha256_file(p),
            "description": DOWNLOAD_DESCRIPTIONS[p.name],
        }
        for p in files
    ]


def _known(names: tuple[str, ...], allowed: set[str], what: str) -> list[str]:
    unknown = [n for n in names if n not in allowed]
    if unknown:
        log.warning(
            "explorer %s: %d configured name(s) are not public columns or groups; skipped", what, len(unknown)
        )
    return [n for n in names if n in allowed]


def build_payload(spark: SparkSession, ctx: RunContext, *, release_date: str) -> dict[str, Any]:
    """Assemble the explorer payload (see :mod:`ctdc_spark.publish._explorer`) from public artefacts."""
    cfg, exp = ctx.cfg, ctx.cfg.explorer
    k = cfg.privacy.resolution
    columns, synthetic = _public_dictionary(spark, ctx)
    n_synthetic, codes = _synthetic_codes(synthetic, columns)
    reportable = _read(spark, ctx, REPORTABLE_AGGREGATES)
    entries = (
        reportable.orderBy("length", F.col("protected_count").desc(), "selections")
        .select("selections", "protected_count")
        .toArrow()
    )
    n_columns = _read(spark, ctx, COLUMNS).count()
    evaluation_path = ctx.staging_dir / "evaluation.json"
    evaluation = json.loads(evaluation_path.read_text(encoding="utf-8")) if evaluation_path.exists() else {}
    metadata_path = ctx.staging_dir / "metadata.json"
    metadata = json.loads(metadata_path.read_text(encoding="utf-8")) if metadata_path.exists() else {}
    record_count = published_record_count(ctx.staging_dir / "reportable_aggregates.tsv")
    dp = cfg.privacy.dp
    public_attributes = {v["attribute"] for c in columns for v in c["values"]}
    groups = [
        {"name": name, "attributes": kept}
        for name, attrs in exp.groups.items()
        if (kept := [a for a in attrs if a in public_attributes])
    ]
    visual_names: set[str] = {c["id"] for c in columns} | {c["source_column"] for c in columns}
    visual_names |= {str(g["name"]) for g in groups}
    pages = [
        {"name": name, "columns": _known(cols, visual_names, "pages")} for name, cols in exp.pages.items()
    ]
    meta: dict[str, Any] = {
        "title": exp.title,
        "description": exp.description,
        "dataset_version": exp.dataset_version or ctx.run_id,
        "run_id": ctx.run_id,
        "created": f"{release_date}T00:00:00Z",
        "pipeline_version": __version__,
        "privacy_mode": "dp" if dp else "k_anonymity",
        "k": k,
        "L": effective_length(cfg.privacy.reporting_length, n_columns),
        "dp": None
        if dp is None
        else metadata.get("privacy", {}).get("dp", {"epsilon": dp.epsilon, "delta": dp.delta}),
        "synthesis_mode": cfg.synthesis.mode,
        "synthetic_records": n_synthetic,
        "reportable_record_count": record_count,
        "licence": exp.licence,
        "citation": exp.citation,
        "languages": list(exp.languages),
        "default_language": exp.default_language,
        "small_count_threshold": exp.small_count_threshold,
    }
    if exp.record_noun:
        meta["record_noun"] = dict(exp.record_noun)
    return {
        "meta": meta,
        "columns": columns,
        "default_columns": _known(exp.default_columns, visual_names, "default_columns"),
        "pages": [p for p in pages if p["columns"]],
        "groups": groups,
        "synthetic": {"n": n_synthetic, "columns": codes},
        "aggregates": {
            "record_count": record_count,
            "entries": [
                list(e)
                for e in zip(entries.column(0).to_pylist(), entries.column(1).to_pylist(), strict=True)
            ],
        },
        "stats": evaluation.get("stats") or dict(EMPTY_STATS),
        "downloads": _downloads(ctx.staging_dir),
    }


def _release_date(ctx: RunContext) -> str:
    """The release date: configured, or the one this run first published with, or today (UTC)."""
    if ctx.cfg.explorer.release_date:
        return ctx.cfg.explorer.release_date
    metadata = ctx.staging_dir / "metadata.json"
    if metadata.exists():
        earlier = json.loads(metadata.read_text(encoding="utf-8")).get("release", {}).get("date")
        if earlier:
            return str(earlier)
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def run_publish(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Stage entry point.

    Raises:
        StageFailedError: when the synthetic data has not passed the evaluate stage's verification
            (the explorer embeds it, so nothing may be published before).
    """
    metadata = ctx.staging_dir / "metadata.json"
    guarantee = (
        json.loads(metadata.read_text(encoding="utf-8")).get("guarantee", {}) if metadata.exists() else {}
    )
    if guarantee.get("verified") is not True:
        raise StageFailedError(
            "the synthetic data has not passed the k-synthetic verification of the evaluate stage; "
            "run `ctdc-spark evaluate` (or the whole pipeline) first."
        )
    release_date = _release_date(ctx)
    payload = build_payload(spark, ctx, release_date=release_date)
    result = StageResult()
    page = build_explorer(payload, ctx.staging_dir / "explorer")
    result.outputs.append(str(page))
    cfg = ctx.cfg
    update_metadata(
        ctx.staging_dir,
        "release",
        {
            "run_id": ctx.run_id,
            "date": release_date,
            "pipeline_version": __version__,
            "dataset_version": payload["meta"]["dataset_version"],
            "privacy_mode": payload["meta"]["privacy_mode"],
            "k": cfg.privacy.resolution,
            "reporting_length": payload["meta"]["L"],
            "synthesis_mode": cfg.synthesis.mode,
            "synthetic_records": payload["meta"]["synthetic_records"],
            "reportable_record_count": payload["meta"]["reportable_record_count"],
            "reportable_combinations": len(payload["aggregates"]["entries"]),
            "files": {d["name"]: {"bytes": d["bytes"], "sha256": d["sha256"]} for d in payload["downloads"]},
        },
    )
    result.row_counts["explorer_combinations"] = len(payload["aggregates"]["entries"])
    result.row_counts["explorer_records"] = payload["meta"]["synthetic_records"]
    return result
