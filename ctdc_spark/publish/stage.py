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
import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark import __version__
from ctdc_spark.aggregate.stage import effective_length
from ctdc_spark.combos.export import TIDY_AGGREGATES_CSV
from ctdc_spark.errors import StageFailedError
from ctdc_spark.evaluate import AgreementRule
from ctdc_spark.io.files import read_metadata, sha256_file, update_metadata
from ctdc_spark.prepare import bin_labels
from ctdc_spark.publish._bundle import (
    BUNDLE_DOCUMENTS,
    CodebookValue,
    ReadmeFacts,
    country_name,
    ui_strings,
    write_bundle_documents,
)
from ctdc_spark.publish._explorer import build_explorer
from ctdc_spark.publish._explorer.model import (
    EMPTY_STATS,
    GEO_ALPHA2,
    Aggregates,
    Column,
    Download,
    DownloadKind,
    DpParameters,
    ExplorerPayload,
    Group,
    Meta,
    Page,
    SyntheticCells,
    Value,
    read_evaluation,
)
from ctdc_spark.schemas import ATTRIBUTES, COLUMNS, REPORTABLE_AGGREGATES, SYNTHETIC_RECORDS
from ctdc_spark.stage import RunContext, StageResult
from ctdc_spark.wording import ENGLISH, Wording, is_language_neutral

__all__ = ["build_explorer", "run_publish"]

log = logging.getLogger(__name__)

_V = TypeVar("_V")
#: The only public value of a 0/1 indicator column ("0" is never an attribute).
INDICATOR_VALUE = "1"

#: Public files the explorer links to, by the kind whose ``download_<kind>`` sentence describes them.
DOWNLOAD_KINDS: dict[str, DownloadKind] = {
    "synthetic_microdata.csv": "synthetic_microdata",
    "synthetic_microdata_long.csv": "synthetic_microdata_long",
    "reportable_aggregates.tsv": "aggregates_tsv",
    "reportable_aggregates.csv": "aggregates_csv",
    TIDY_AGGREGATES_CSV: "aggregates_tidy",
    "evaluation.json": "evaluation",
    **BUNDLE_DOCUMENTS,
}


def _read(spark: SparkSession, ctx: RunContext, spec: Any) -> DataFrame:
    return ctx.tables.read(spark, spec)


def _by_name(names: Iterable[str]) -> set[str]:
    """Config column names matched as the input's columns are: case-insensitively."""
    return {n.strip().lower() for n in names}


def _configured(mapping: Mapping[str, _V], column: str) -> _V | None:
    return next((v for k, v in mapping.items() if k.strip().lower() == column.lower()), None)


def _numeric_key(value: str) -> tuple[int, float, bytes]:
    try:
        return (0, float(value), value.encode())
    except ValueError:
        return (1, 0.0, value.encode())


def natural_order(
    values: Sequence[str], *, declared: Sequence[str] | None, bins: Sequence[float] | None
) -> list[str]:
    """``values`` in their natural order: as ``declared`` (``[]`` = numerically), or by bin edges.

    Values the declaration does not list follow in byte order, so a new value in a refresh is
    still shown (and counted in the publish warning).

    Example:
        >>> natural_order(["48+", "9--17", "0--8"], declared=["0--8", "9--17", "48+"], bins=None)
        ['0--8', '9--17', '48+']
        >>> natural_order(["2019", "2002", "n/a"], declared=[], bins=None)
        ['2002', '2019', 'n/a']
        >>> natural_order([">=30", "<18", "[18,30)"], declared=None, bins=[18, 30])
        ['<18', '[18,30)', '>=30']
    """
    if bins is not None:
        declared = bin_labels(bins)
    if declared is None:
        return list(values)
    if not declared:
        return sorted(values, key=_numeric_key)
    position = {v: i for i, v in enumerate(declared)}
    return sorted(values, key=lambda v: (position.get(v, len(position)), v.encode()))


def _public_dictionary(
    spark: SparkSession, ctx: RunContext, wording: Wording
) -> tuple[list[Column], DataFrame]:
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
    exp = ctx.cfg.explorer
    countries = _by_name(exp.country_columns)
    out = []
    for col in columns:
        column = col["column"]
        multi = col["multi_value_delimiter"] is not None
        rows = {row["value"]: row for row in by_column.get(column, [])}
        if not rows:
            # Nothing public to show; an indicator column's name would even reveal its value.
            continue
        geo = not multi and column.lower() in countries
        declared = _configured(exp.ordinal_columns, column)
        bins = _configured(ctx.cfg.input.bins, col["source_column"])
        ordered = natural_order(sorted(rows, key=str.encode), declared=declared, bins=bins)
        values = []
        for code, value in enumerate(ordered, start=1):
            row = rows[value]
            attribute = f"{column}:{value}"
            raw = row["source_value"] if multi else value
            if geo or is_language_neutral(raw) or (not multi and value == INDICATOR_VALUE):
                # The page names countries and says "yes" itself; numbers need no words.
                labels = {ENGLISH: raw}
                labels.update((lang, t[attribute]) for lang, t in exp.value_labels.items() if attribute in t)
            else:
                labels = wording.value_label(exp.value_labels, column, attribute, raw)
            values.append(
                Value(code=code, value=value, attribute=attribute, rank=row["attr_id"], labels=labels)
            )
        described = any(column in table for table in exp.column_descriptions.values())
        out.append(
            Column(
                id=column,
                source_column=col["source_column"],
                kind="multi" if multi else "single",
                labels=wording.label("column_labels", exp.column_labels, column, column),
                values=tuple(values),
                descriptions=wording.label("column_descriptions", exp.column_descriptions, column, "")
                if described
                else dict.fromkeys(exp.languages, ""),
                ordinal=declared is not None or bins is not None,
                geo=GEO_ALPHA2 if geo else None,
                indicator=not multi and list(rows) == [INDICATOR_VALUE],
            )
        )
    return out, synthetic


def _synthetic_codes(synthetic: DataFrame, columns: Sequence[Column]) -> SyntheticCells:
    """Column store of the synthetic records: per column, base64 little-endian uint16 codes."""
    table = synthetic.select("record_id", "attrs").orderBy("record_id").toArrow()
    attrs = table.column("attrs").combine_chunks()
    n = table.num_rows
    lengths = attrs.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    values = attrs.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.repeat(np.arange(n), lengths)
    size = max((v.rank for c in columns for v in c.values), default=-1) + 1
    position = np.full(size, -1, dtype=np.int64)
    code = np.zeros(size, dtype=np.uint16)
    for i, col in enumerate(columns):
        for v in col.values:
            position[v.rank], code[v.rank] = i, v.code
    cells = np.zeros((len(columns), n), dtype="<u2")
    known = values < size
    cells[position[values[known]], rows[known]] = code[values[known]]
    return SyntheticCells(
        n=n,
        columns={
            col.id: base64.b64encode(cells[i].tobytes()).decode("ascii") for i, col in enumerate(columns)
        },
    )


def _downloads(staging: Path) -> tuple[Download, ...]:
    files = sorted(p for p in staging.iterdir() if p.is_file() and p.name in DOWNLOAD_KINDS)
    return tuple(
        Download(
            name=p.name,
            href=f"../{p.name}",
            bytes=p.stat().st_size,
            sha256=sha256_file(p),
            kind=DOWNLOAD_KINDS[p.name],
        )
        for p in files
    )


def _known(names: tuple[str, ...], allowed: set[str], what: str) -> list[str]:
    unknown = [n for n in names if n not in allowed]
    if unknown:
        log.warning(
            "explorer %s: %d configured name(s) are not public columns or groups; skipped", what, len(unknown)
        )
    return [n for n in names if n in allowed]


def _official_single_counts(spark: SparkSession, ctx: RunContext) -> dict[int, int]:
    single = _read(spark, ctx, REPORTABLE_AGGREGATES).where(F.col("length") == 1)
    return {row[0]: row[1] for row in single.select(F.col("combo")[0], "protected_count").collect()}


def _value_label(column: Column, value: Value, language: str) -> str:
    """A value as the explorer shows it in ``language``: country names, "yes", or its label."""
    if column.geo:
        return country_name(value.value, language)
    if column.indicator:
        return ui_strings(language)["yes"]
    return value.labels.get(language, value.labels.get(ENGLISH, value.value))


def _codebook(
    columns: Sequence[Column], official: Mapping[int, int], languages: Sequence[str]
) -> list[CodebookValue]:
    return [
        CodebookValue(
            column=c.id,
            value=v.value,
            attribute=v.attribute,
            column_labels=c.labels,
            value_labels={lang: _value_label(c, v, lang) for lang in languages},
            official_count=official.get(v.rank),
        )
        for c in columns
        for v in c.values
    ]


def build_payload(
    spark: SparkSession, ctx: RunContext, *, release_date: str, wording: Wording
) -> ExplorerPayload:
    """Assemble the explorer payload (see :mod:`ctdc_spark.publish._explorer.model`) from public artefacts.

    ``downloads`` is left empty: the caller lists the files once the bundle documents are written.

    Raises:
        ValueError: The artefacts make an invalid payload (a bug upstream); the message names the field.
    """
    cfg, exp = ctx.cfg, ctx.cfg.explorer
    k = cfg.privacy.resolution
    columns, synthetic = _public_dictionary(spark, ctx, wording)
    cells = _synthetic_codes(synthetic, columns)
    reportable = _read(spark, ctx, REPORTABLE_AGGREGATES)
    entries = (
        reportable.orderBy("length", F.col("protected_count").desc(), "selections")
        .select("selections", "protected_count")
        .toArrow()
    )
    n_columns = _read(spark, ctx, COLUMNS).count()
    record_count = ctx.tables.release_facts(spark).published_record_count
    dp = cfg.privacy.dp
    # evaluation.json's stats are the page's as they are; they also state the agreement rule they applied.
    evaluated = read_evaluation(ctx.staging_dir)
    stats = EMPTY_STATS if evaluated is None else evaluated.stats
    stated_rule = None if evaluated is None else evaluated.agreement_rule
    public_attributes = {v.attribute for c in columns for v in c.values}
    groups = [
        Group(
            name=name,
            attributes=tuple(kept),
            labels=wording.label("group_labels", exp.group_labels, name, name, raw_is_english=True),
        )
        for name, attrs in exp.groups.items()
        if (kept := [a for a in attrs if a in public_attributes])
    ]
    visual_names: set[str] = {c.id for c in columns} | {c.source_column for c in columns}
    visual_names |= {g.name for g in groups}
    pages = [
        Page(
            name=name,
            columns=tuple(_known(cols, visual_names, "pages")),
            labels=wording.label("page_labels", exp.page_labels, name, name, raw_is_english=True),
        )
        for name, cols in exp.pages.items()
    ]
    meta = Meta(
        title=wording.text("title", exp.title),
        description=wording.text("description", exp.description),
        dataset_version=exp.dataset_version or ctx.run_id,
        run_id=ctx.run_id,
        created=f"{release_date}T00:00:00Z",
        pipeline_version=__version__,
        privacy_mode="dp" if dp else "k_anonymity",
        k=k,
        L=effective_length(cfg.privacy.reporting_length, n_columns),
        dp=None if dp is None else DpParameters(epsilon=dp.epsilon, delta=dp.delta),
        synthesis_mode=cfg.synthesis.mode,
        synthetic_records=cells.n,
        reportable_record_count=record_count,
        licence=wording.text("licence", exp.licence),
        citation=wording.text("citation", exp.citation),
        languages=exp.languages,
        default_language=exp.default_language,
        small_count_threshold=exp.small_count_threshold,
        record_noun=wording.text("record_noun", exp.record_noun) if exp.record_noun else {},
        agreement=stated_rule
        if stated_rule is not None
        else AgreementRule.for_release(resolution=k, dp=dp is not None),
    )
    return ExplorerPayload(
        meta=meta,
        columns=tuple(columns),
        default_columns=tuple(_known(exp.default_columns, visual_names, "default_columns")),
        pages=tuple(p for p in pages if p.columns),
        groups=tuple(groups),
        synthetic=cells,
        aggregates=Aggregates(
            record_count=record_count,
            entries=tuple(zip(entries.column(0).to_pylist(), entries.column(1).to_pylist(), strict=True)),
        ),
        stats=stats,
        downloads=(),
    )


def _write_documents(spark: SparkSession, ctx: RunContext, payload: ExplorerPayload) -> list[Path]:
    """The bundle's READMEs, codebook and LICENSE, from the payload's (already translated) texts."""
    meta = payload.meta
    listed = sorted(
        (name, kind)
        for name, kind in DOWNLOAD_KINDS.items()
        if name in BUNDLE_DOCUMENTS or (ctx.staging_dir / name).is_file()
    )
    facts = ReadmeFacts(
        title=meta.title,
        description=meta.description,
        citation=meta.citation,
        licence=meta.licence,
        languages=meta.languages,
        default_language=meta.default_language,
        k=meta.k,
        L=meta.L,
        dp=meta.dp,
        synthetic_records=meta.synthetic_records,
        people=meta.reportable_record_count,
        files=listed,
    )
    official = _official_single_counts(spark, ctx)
    return write_bundle_documents(
        ctx.staging_dir, facts, _codebook(payload.columns, official, meta.languages)
    )


def _release_date(ctx: RunContext, earlier: str | None) -> str:
    """The release date: configured, else the date this run first published with, else today (UTC)."""
    if ctx.cfg.explorer.release_date:
        return ctx.cfg.explorer.release_date
    return earlier or dt.datetime.now(dt.timezone.utc).date().isoformat()


def run_publish(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Stage entry point.

    Raises:
        StageFailedError: when the synthetic data has not passed the evaluate stage's verification
            (the explorer embeds it, so nothing may be published before).
    """
    metadata = read_metadata(ctx.staging_dir)
    if not metadata.verified:
        raise StageFailedError(
            "the synthetic data has not passed the k-synthetic verification of the evaluate stage; "
            "run `ctdc-spark evaluate` (or the whole pipeline) first."
        )
    release_date = _release_date(ctx, metadata.release_date)
    wording = Wording(ctx.cfg.explorer.languages)
    payload = build_payload(spark, ctx, release_date=release_date, wording=wording)
    for line in wording.summary_lines():
        log.warning("explorer translations: %s", line)
    result = StageResult()
    result.outputs += [str(p) for p in _write_documents(spark, ctx, payload)]
    payload = dataclasses.replace(payload, downloads=_downloads(ctx.staging_dir))
    page = build_explorer(payload, ctx.staging_dir / "explorer")
    result.outputs.append(str(page))
    cfg, meta = ctx.cfg, payload.meta
    update_metadata(
        ctx.staging_dir,
        "release",
        {
            "run_id": ctx.run_id,
            "date": release_date,
            "pipeline_version": __version__,
            "dataset_version": meta.dataset_version,
            "privacy_mode": meta.privacy_mode,
            "k": cfg.privacy.resolution,
            "reporting_length": meta.L,
            "synthesis_mode": cfg.synthesis.mode,
            "synthetic_records": meta.synthetic_records,
            "reportable_record_count": meta.reportable_record_count,
            "reportable_combinations": len(payload.aggregates.entries),
            "files": {d.name: {"bytes": d.bytes, "sha256": d.sha256} for d in payload.downloads},
        },
    )
    result.row_counts["explorer_combinations"] = len(payload.aggregates.entries)
    result.row_counts["explorer_records"] = meta.synthetic_records
    return result
