"""Typed, frozen, validated configuration (docs/architecture.md section 3.2).

Precedence: built-in defaults < YAML file < ``CTDC__SECTION__KEY`` environment variables <
``--set section.key=value`` flags. Only ``cli.py`` reads the environment and argv; it passes the
collected overrides to :func:`load_config`. Unknown keys are rejected and every value is checked
here, once, with messages that say how to fix the problem.

Example:
    >>> cfg = load_config(None, overrides=["input.path=data/x.csv", "privacy.resolution=5"])
    >>> cfg.privacy.resolution, cfg.input.path
    (5, 'data/x.csv')
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import math
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin
from urllib.parse import urlparse

import yaml

from ctdc_spark.errors import ConfigError

InputFormat = Literal["csv", "tsv", "parquet", "delta"]
BadRowPolicy = Literal["fail", "quarantine"]
SynthesisMode = Literal["row_seeded", "unseeded", "value_seeded", "aggregate_seeded", "fitted"]
FitRecordCount = Literal["free", "published"]
AccuracyMode = Literal["prioritize_long", "prioritize_short", "balanced", "custom"]
FabricationMode = Literal["uncontrolled", "progressive", "balanced", "minimize", "custom"]
ThresholdType = Literal["adaptive", "fixed"]
PercentileMechanism = Literal["rank", "sds_compatible"]


def _frozen_empty() -> Mapping[Any, Any]:
    return types.MappingProxyType({})


@dataclass(frozen=True)
class InputConfig:
    """Where the sensitive records come from and how cells become attributes (docs/spec.md section 2)."""

    path: str = ""
    format: InputFormat = "csv"
    delimiter: str = ","
    encoding: str = "utf-8"
    use_columns: tuple[str, ...] = ()
    record_limit: int = 0
    unknown_values: tuple[str, ...] = ("",)
    sensitive_zeros: tuple[str, ...] = ()
    multi_value_columns: Mapping[str, str] = field(default_factory=_frozen_empty)
    subject_id: str | None = None
    bins: Mapping[str, tuple[float, ...]] = field(default_factory=_frozen_empty)
    on_bad_rows: BadRowPolicy = "fail"

    @property
    def field_delimiter(self) -> str:
        """The delimiter actually used: TSV input defaults to a tab."""
        if self.format == "tsv" and self.delimiter == ",":
            return "\t"
        return self.delimiter

    @property
    def java_charset(self) -> str:
        """``encoding`` as the Java charset Spark's readers take (``latin-1`` -> ``ISO-8859-1``).

        Raises:
            ConfigError: for an encoding without a Java equivalent (checked at load time).
        """
        return java_charset(self.encoding)


#: Charsets Spark 4's text readers accept as they are; others need ``spark.sql.legacy.javaCharsets``.
SPARK_CHARSETS = frozenset({"US-ASCII", "ISO-8859-1", "UTF-8", "UTF-16BE", "UTF-16LE", "UTF-16", "UTF-32"})
_JAVA_CHARSET_OF = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",  # the reader skips the header line, and the header check drops the BOM
    "ascii": "US-ASCII",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16LE",
    "utf-16-be": "UTF-16BE",
    "utf-32": "UTF-32",
    "mac-roman": "x-MacRoman",
    "koi8-r": "KOI8-R",
    "shift_jis": "Shift_JIS",
    "euc_jp": "EUC-JP",
    "gbk": "GBK",
    "big5": "Big5",
}
_ISO_8859 = re.compile(r"^iso8859-(\d+)$")
_WINDOWS_CODE_PAGE = re.compile(r"^cp(125\d)$")


def java_charset(encoding: str) -> str:
    """The Java charset of a Python codec name or alias, as users write it.

    Example:
        >>> [java_charset(e) for e in ("latin-1", "latin1", "cp1252", "utf-8-sig", "UTF8")]
        ['ISO-8859-1', 'ISO-8859-1', 'windows-1252', 'UTF-8', 'UTF-8']

    Raises:
        ConfigError: naming the key and encodings that work.
    """
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = ""
    if iso := _ISO_8859.match(name):
        return f"ISO-8859-{iso.group(1)}"
    if windows := _WINDOWS_CODE_PAGE.match(name):
        return f"windows-{windows.group(1)}"
    if name in _JAVA_CHARSET_OF:
        return _JAVA_CHARSET_OF[name]
    raise ConfigError(
        f"input.encoding: {encoding!r} is not an encoding the Spark reader supports; use e.g. utf-8, "
        "utf-8-sig, latin-1 (ISO-8859-1), cp1252 (Windows Western European) or cp1256 (Windows Arabic)."
    )


@dataclass(frozen=True)
class DpConfig:
    """Differential-privacy parameters of docs/spec.md sections 3.4 and 3.4.2 (DP marginals)."""

    epsilon: float = 4.0
    delta: float | None = None
    delta_factor: float | None = None
    percentile_percentage: float = 99.0
    percentile_epsilon_proportion: float = 0.01
    number_of_records_epsilon_proportion: float | None = 0.005
    accuracy_mode: AccuracyMode = "prioritize_long"
    sigma_proportions: tuple[float, ...] | None = None
    fabrication_mode: FabricationMode = "uncontrolled"
    threshold_type: ThresholdType = "adaptive"
    threshold_values: Mapping[int, float] = field(default_factory=_frozen_empty)
    percentile_mechanism: PercentileMechanism = "rank"
    dataset_id: str | None = None


@dataclass(frozen=True)
class PrivacyConfig:
    """k (resolution), L (reporting length) and optional DP."""

    resolution: int = 10
    reporting_length: int = 3
    dp: DpConfig | None = None


@dataclass(frozen=True)
class AggregationConfig:
    """Options of the aggregate stage."""

    apriori_pruning: bool = False
    risk_analysis: bool = True


@dataclass(frozen=True)
class SynthesisConfig:
    """Synthesis mode and its parameters (docs/spec.md section 4)."""

    mode: SynthesisMode = "row_seeded"
    seed: int | None = None
    oversampling_ratio: float | None = None
    oversampling_tries: int = 1
    use_synthetic_counts: bool = False
    weight_selection_percentile: float = 95.0
    aggregate_counts_scale_factor: float | None = None
    target_number_of_records: int | None = None
    long_format: bool = False
    cache_max_size: int = 100_000
    max_broadcast_mb: int = 512
    consolidation_shard_size: int = 100_000
    fit_orders: int = 2
    """fitted: candidate records per source (k mode: seeded orders per sensitive record; DP mode:
    aggregate-seeded passes, the second growing records as long as the released counts allow)."""
    fit_iterations: int = 300
    fit_record_count: FitRecordCount = "free"
    """fitted: let the fit choose the number of records, or hold it at the published record count
    (fewer records, larger errors, single counts included; benchmarks/fidelity.md)."""
    fit_max_mb: int = 2048
    """fitted: driver memory the fit may use; a larger candidate pool is thinned deterministically."""


@dataclass(frozen=True)
class AttackConfig:
    """Measured attack risk (anonymeter's singling-out, linkability and inference attacks).

    A control share of the sensitive records is held out of the synthesizer's row index; the
    attacks then compare how well they work against the records synthesis used and against the
    control records it did not (README "Privacy evidence").
    """

    enabled: bool = True
    required: bool = False
    """Fail the run when anonymeter is not installed (otherwise the private report says so)."""
    control_share: float = 0.1
    control_max: int = 2000
    min_control: int = 500
    """Below this many control records (default: one per attack) nothing is held out or attacked."""
    n_attacks: int = 500
    singling_out_columns: int = 10
    """Columns per multivariate query: CTDC-shaped records are sparse, so 3 single out too rarely."""
    max_attempts: int = 10_000
    synthetic_sample: int = 10_000
    """Synthetic records the attacker works with (a keyed sample; 0 = all): bounds the attacks' time."""
    secret_columns: tuple[str, ...] = ()
    linkability_aux: tuple[tuple[str, ...], ...] = ()
    max_risk: float = 0.1
    """The run fails (exit 3, nothing released) when a risk's 95% lower bound exceeds this."""


@dataclass(frozen=True)
class EvaluationConfig:
    """Options of the evaluate stage."""

    attacks: AttackConfig = field(default_factory=AttackConfig)


@dataclass(frozen=True)
class OutputConfig:
    """Where tables, private files and the release bundle are written."""

    root: str = "output"


def _default_title() -> Mapping[str, str]:
    return types.MappingProxyType({"en": "Synthetic case data explorer"})


#: ``{language: text}``; a plain string in the YAML is the default language's text.
LangText = Mapping[str, str]
#: ``{language: {key: text}}``: column ids, ``column:value`` attributes, page or group names.
LangTable = Mapping[str, Mapping[str, str]]

#: Explorer texts given once per language (a plain string is the default language's).
_LANG_TEXT_KEYS = ("title", "description", "licence", "citation", "record_noun")


@dataclass(frozen=True)
class ExplorerConfig:
    """Layout and wording of the release: the explorer, the bundle's README, codebook and LICENSE.

    Every reader-facing text is given per language; a text missing in a language falls back to
    English with a warning naming the key (``ctdc-spark validate`` lists them all).
    """

    title: LangText = field(default_factory=_default_title)
    dataset_version: str | None = None
    description: LangText = field(default_factory=_frozen_empty)
    licence: LangText = field(default_factory=_frozen_empty)
    citation: LangText = field(default_factory=_frozen_empty)
    record_noun: LangText = field(default_factory=_frozen_empty)
    languages: tuple[str, ...] = ("en", "fr", "es", "de", "ar")
    default_language: str = "en"
    default_columns: tuple[str, ...] = ()
    pages: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen_empty)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen_empty)
    page_labels: LangTable = field(default_factory=_frozen_empty)
    group_labels: LangTable = field(default_factory=_frozen_empty)
    column_labels: LangTable = field(default_factory=_frozen_empty)
    column_descriptions: LangTable = field(default_factory=_frozen_empty)
    value_labels: LangTable = field(default_factory=_frozen_empty)
    # Columns holding ISO 3166-1 alpha-2 codes: named per language by the reader's browser.
    country_columns: tuple[str, ...] = ()
    # {column: [values in natural order]}; [] orders the values numerically (years). Binned
    # columns are ordinal by their edges without being listed here.
    ordinal_columns: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen_empty)
    small_count_threshold: int | None = None
    release_date: str | None = None


@dataclass(frozen=True)
class SparkConfig:
    """Spark settings; ``master: null`` leaves the master to spark-submit."""

    master: str | None = None
    app_name: str = "ctdc-spark"
    conf: Mapping[str, str] = field(default_factory=_frozen_empty)


@dataclass(frozen=True)
class JobConfig:
    """The whole configuration of one pipeline run."""

    input: InputConfig = field(default_factory=InputConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    explorer: ExplorerConfig = field(default_factory=ExplorerConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)

    @property
    def synthesis_reads_only_aggregates(self) -> bool:
        """Whether synthesis builds records from the published aggregates alone, never the records:
        aggregate_seeded always, fitted in DP mode. Its guarantee is then the aggregates' one."""
        mode = self.synthesis.mode
        return mode == "aggregate_seeded" or (mode == "fitted" and self.privacy.dp is not None)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain YAML/JSON-compatible data."""
        return _plain(self)  # type: ignore[no-any-return]

    def config_hash(self) -> str:
        """SHA-256 of what determines a run's results (Spark tuning and the output location excluded)."""
        data = self.to_dict()
        data.pop("spark", None)
        data.pop("output", None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


_T = TypeVar("_T")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if origin is tuple:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin in (Mapping, dict):
        k, v = get_args(tp)
        return f"a mapping of {_type_name(k)} to {_type_name(v)}"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert YAML data (or a --set string already parsed as YAML) to the annotated type."""
    origin = get_origin(tp)
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{key}: {value!r} is not allowed; use one of {_type_name(tp)}.")
    if origin in (types.UnionType, typing.Union):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: must not be null; expected {_type_name(tp)}.")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: expected {_type_name(tp)}.")
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of settings, got {type(value).__name__}.")
        return _build(typing.cast("type[Any]", tp), value, key)
    if origin is tuple:
        (item_tp, _ellipsis) = get_args(tp)
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ConfigError(f"{key}: expected a list, e.g. [a, b].")
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict):
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, e.g. {{name: value}}.")
        k_tp, v_tp = get_args(tp)
        return types.MappingProxyType(
            {_coerce(k, k_tp, key): _coerce(v, v_tp, f"{key}.{k}") for k, v in value.items()}
        )
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false.")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected a whole number, got {value!r}.")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}.")
        if not math.isfinite(float(value)):
            raise ConfigError(f"{key}: must be a finite number.")
        return float(value)
    if tp is str:
        if isinstance(value, bool) or value is None:
            raise ConfigError(f"{key}: expected text.")
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, dt.date):
            # YAML reads an unquoted 2026-03-01 (in a file or a --set value) as a date.
            return value.isoformat()
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected text.")
        return value
    raise ConfigError(f"{key}: unsupported setting type {tp!r}.")  # pragma: no cover


def _build(cls: type[_T], data: Mapping[str, Any], prefix: str) -> _T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown setting(s) {', '.join(where + str(u) for u in unknown)}; "
            f"valid keys{' under ' + prefix if prefix else ''} are: {', '.join(sorted(names))}."
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], key)
    return cls(**kwargs)


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"--set {dotted}: the key must look like section.key, e.g. privacy.resolution.")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {part} is not a section.")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key.path=value``; the value is parsed as YAML (``5`` -> 5, ``[a,b]`` -> list)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key.path=value, e.g. --set privacy.resolution=5.")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; pass an existing file to --config.") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror}).") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must contain a mapping of sections (input:, privacy:, ...).")
    return data


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _input_path_relative_to(data: dict[str, Any], folder: Path) -> None:
    """A relative local ``input.path`` written in a config file means a file beside that config.

    So a config works from any working directory (and the embedded default from inside the
    installed package). Paths given with ``--set`` or the environment stay relative to the working
    directory, like any path typed at a shell; ``output.root`` always is (results go where you run).
    """
    section = data.get("input")
    if not isinstance(section, dict) or not isinstance(section.get("path"), str):
        return
    raw = section["path"]
    if raw.strip() and urlparse(raw).scheme == "" and not Path(raw).is_absolute():
        section["path"] = os.path.normpath(folder / raw)


def _read_layered(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file merged over the file its ``extends:`` names (relative to the extending file).

    Sections and mappings merge key by key; a list or a value in the extending file replaces the
    base's, so an embedded default can reuse a full mapping and change a few lines.
    """
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(f"config file {path}: its extends: chain comes back to itself; remove the cycle.")
    data = _read_yaml(path)
    _input_path_relative_to(data, resolved.parent)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"config file {path}: extends: must name a config file, e.g. extends: base.yaml.")
    return _deep_merge(_read_layered(path.parent / parent, (*seen, resolved)), data)


def _texts_per_language(tree: dict[str, Any]) -> None:
    """A plain-string explorer text (title, description, ...) is the default language's text."""
    explorer = tree.get("explorer")
    if not isinstance(explorer, dict):
        return
    language = str(explorer.get("default_language", ExplorerConfig.default_language))
    for key in _LANG_TEXT_KEYS:
        value = explorer.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            explorer[key] = {language: str(value)}


def load_config(
    path: str | Path | None,
    *,
    overrides: Sequence[str] = (),
    env_overrides: Mapping[str, str] | None = None,
) -> JobConfig:
    """Load, merge and validate a configuration.

    Args:
        path: YAML file, or None for built-in defaults only. Its ``extends: other.yaml`` (relative
            to the file) layers it over another config.
        overrides: ``key.path=value`` strings from ``--set`` (highest precedence).
        env_overrides: ``{"section.key": "value"}`` collected by the CLI from ``CTDC__SECTION__KEY``.

    Returns:
        The frozen, validated config. A relative ``input.path`` written in a file is resolved
        against that file's folder; other relative paths stay relative to the working directory.

    Raises:
        ConfigError: with the offending key and how to fix it.
    """
    tree: dict[str, Any] = _read_layered(Path(path)) if path is not None else {}
    for key, raw in (env_overrides or {}).items():
        _set_path(tree, key, parse_override(f"{key}={raw}")[1])
    for text in overrides:
        key, value = parse_override(text)
        _set_path(tree, key, value)
    _texts_per_language(tree)
    _dp_synthesis_default(tree)
    cfg = _build(JobConfig, tree, "")
    validate_config(cfg)
    return cfg


def _dp_synthesis_default(tree: dict[str, Any]) -> None:
    """With ``privacy.dp`` set and no ``synthesis.mode`` given, synthesis is ``fitted``: on the DP
    aggregates it beats aggregate_seeded on pairs and triples with fewer records
    (benchmarks/fidelity.md), and row_seeded, the k-mode default, would break the DP guarantee."""
    privacy, synthesis = tree.get("privacy"), tree.get("synthesis")
    if not isinstance(privacy, dict) or privacy.get("dp") is None:
        return
    if synthesis is None:
        tree["synthesis"] = synthesis = {}
    if isinstance(synthesis, dict):
        synthesis.setdefault("mode", "fitted")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def validate_config(cfg: JobConfig) -> None:
    """Check domain rules that types alone cannot express.

    Raises:
        ConfigError: naming the key and the fix.
    """
    inp = cfg.input
    _check(
        bool(inp.path.strip()), "input.path: is required; set it in the config or with --set input.path=FILE."
    )
    _check(len(inp.delimiter) == 1, "input.delimiter: must be exactly one character, e.g. ',' or '\\t'.")
    _check(inp.record_limit >= 0, "input.record_limit: must be >= 0 (0 means all records).")
    for col, delim in inp.multi_value_columns.items():
        _check(len(delim) >= 1, f"input.multi_value_columns.{col}: the delimiter must not be empty.")
    for col, edges in inp.bins.items():
        _check(len(edges) >= 1, f"input.bins.{col}: give at least one bin edge, e.g. [18, 30, 50].")
        _check(
            all(a < b for a, b in itertools.pairwise(edges)),
            f"input.bins.{col}: edges must be strictly increasing, e.g. [18, 30, 50].",
        )
        _check(
            col.strip().lower() not in {c.strip().lower() for c in inp.multi_value_columns},
            f"input.bins.{col}: a binned column cannot also be a multi-value column.",
        )
    if inp.subject_id is not None:
        _check(bool(inp.subject_id.strip()), "input.subject_id: must be a column name or null.")
    java_charset(inp.encoding)

    priv = cfg.privacy
    _check(priv.resolution >= 1, "privacy.resolution: k must be >= 1 (e.g. 10).")
    _check(priv.reporting_length >= 0, "privacy.reporting_length: L must be >= 0 (0 means all lengths).")
    if priv.dp is not None:
        _validate_dp(priv.dp, priv.reporting_length)

    syn = cfg.synthesis
    if syn.seed is not None:
        _check(0 <= syn.seed < 2**63, "synthesis.seed: must be a whole number in [0, 2^63) or null.")
    if syn.oversampling_ratio is not None:
        _check(syn.oversampling_ratio >= 0, "synthesis.oversampling_ratio: must be >= 0 (e.g. 0.1) or null.")
    _check(syn.oversampling_tries >= 1, "synthesis.oversampling_tries: must be >= 1.")
    _check(
        0 <= syn.weight_selection_percentile <= 100,
        "synthesis.weight_selection_percentile: must be between 0 and 100 (e.g. 95).",
    )
    if syn.aggregate_counts_scale_factor is not None:
        _check(
            syn.aggregate_counts_scale_factor > 0,
            "synthesis.aggregate_counts_scale_factor: must be > 0 (e.g. 1.5) or null.",
        )
    if syn.target_number_of_records is not None:
        _check(syn.target_number_of_records >= 1, "synthesis.target_number_of_records: must be >= 1 or null.")
    _check(syn.cache_max_size >= 0, "synthesis.cache_max_size: must be >= 0 (0 disables the cache).")
    _check(syn.max_broadcast_mb >= 1, "synthesis.max_broadcast_mb: must be >= 1.")
    _check(syn.consolidation_shard_size >= 1, "synthesis.consolidation_shard_size: must be >= 1.")
    _check(syn.fit_orders >= 1, "synthesis.fit_orders: must be >= 1 (e.g. 2).")
    _check(syn.fit_iterations >= 1, "synthesis.fit_iterations: must be >= 1 (e.g. 300).")
    _check(syn.fit_max_mb >= 16, "synthesis.fit_max_mb: must be >= 16 (e.g. 2048).")
    if priv.dp is not None:
        _check(
            syn.mode in ("aggregate_seeded", "fitted"),
            "synthesis.mode: with privacy.dp set, only aggregate_seeded and fitted synthesis keep the DP "
            "guarantee; set synthesis.mode=fitted (or aggregate_seeded) or privacy.dp=null.",
        )

    _validate_attacks(cfg.evaluation.attacks)
    _check(bool(cfg.output.root.strip()), "output.root: must be a directory path, e.g. output.")
    exp = cfg.explorer
    _check(len(exp.languages) >= 1, "explorer.languages: list at least one language, e.g. [en].")
    _check(
        exp.default_language in exp.languages,
        f"explorer.default_language: {exp.default_language!r} must be one of explorer.languages.",
    )
    if exp.release_date is not None:
        try:
            dt.date.fromisoformat(exp.release_date)
        except ValueError:
            raise ConfigError(
                "explorer.release_date: use an ISO date, e.g. 2026-03-01, or null (today)."
            ) from None
    if exp.small_count_threshold is not None:
        _check(exp.small_count_threshold >= 1, "explorer.small_count_threshold: must be >= 1 or null (= k).")
    for column, values in exp.ordinal_columns.items():
        _check(
            len(set(values)) == len(values),
            f"explorer.ordinal_columns.{column}: lists a value twice; give each value once, in order.",
        )
        _check(
            column not in exp.country_columns,
            f"explorer.ordinal_columns.{column}: a country column has no natural order; "
            "remove one of the two.",
        )


def _validate_dp(dp: DpConfig, length: int) -> None:
    _check(
        length >= 1, "privacy.reporting_length: DP aggregation needs an explicit L >= 1 (0 is not supported)."
    )
    _check(dp.epsilon >= 2**-50, "privacy.dp.epsilon: must be a positive number >= 2^-50 (e.g. 4.0).")
    _check(
        dp.dataset_id is None or bool(dp.dataset_id.strip()),
        "privacy.dp.dataset_id: name the dataset whose refreshes share one budget, or null (the input path).",
    )
    _check(
        not (dp.threshold_type == "fixed" and dp.fabrication_mode != "custom"),
        "privacy.dp.threshold_type: fixed thresholds need fabrication_mode: custom "
        "(the presets are adaptive).",
    )
    _check(
        dp.delta is None or 0 < dp.delta < 1, "privacy.dp.delta: must be in (0, 1) or null (derived from n)."
    )
    _check(
        dp.delta is None or dp.delta_factor is None,
        "privacy.dp: set either delta or delta_factor, not both.",
    )
    _check(dp.delta_factor is None or dp.delta_factor > 0, "privacy.dp.delta_factor: must be > 0 or null.")
    _check(
        0 < dp.percentile_percentage <= 100,
        "privacy.dp.percentile_percentage: must be in (0, 100], e.g. 99.",
    )
    _check(
        0 < dp.percentile_epsilon_proportion < 1,
        "privacy.dp.percentile_epsilon_proportion: must be in (0, 1), e.g. 0.01.",
    )
    if dp.number_of_records_epsilon_proportion is not None:
        _check(
            0 < dp.number_of_records_epsilon_proportion < 1,
            "privacy.dp.number_of_records_epsilon_proportion: must be in (0, 1), e.g. 0.005, or null.",
        )
    if dp.accuracy_mode == "custom":
        _check(
            dp.sigma_proportions is not None,
            "privacy.dp.sigma_proportions: required when accuracy_mode is custom (one value per length).",
        )
    if dp.sigma_proportions is not None:
        _check(
            dp.accuracy_mode == "custom",
            "privacy.dp.sigma_proportions: only used with accuracy_mode: custom; set it or remove the list.",
        )
        _check(
            len(dp.sigma_proportions) == length,
            f"privacy.dp.sigma_proportions: has {len(dp.sigma_proportions)} values but reporting_length is "
            f"{length}; give exactly one value per length.",
        )
        _check(
            all(p > 0 for p in dp.sigma_proportions), "privacy.dp.sigma_proportions: all values must be > 0."
        )
    if dp.threshold_values:
        _check(
            dp.fabrication_mode == "custom",
            "privacy.dp.threshold_values: only used with fabrication_mode: custom.",
        )
    for k, v in dp.threshold_values.items():
        _check(
            k != 1,
            "privacy.dp.threshold_values: no threshold for length 1 (it is fixed by the privacy proof); "
            "use lengths 2..L.",
        )
        _check(2 <= k <= length, f"privacy.dp.threshold_values: length {k} is outside 2..{length}.")
        if dp.threshold_type == "adaptive":
            _check(0 < v <= 1, f"privacy.dp.threshold_values.{k}: adaptive values must be in (0, 1].")
        else:
            _check(v >= 0, f"privacy.dp.threshold_values.{k}: fixed thresholds must be >= 0.")


def _validate_attacks(attacks: AttackConfig) -> None:
    key = "evaluation.attacks"
    _check(
        0 < attacks.control_share < 1,
        f"{key}.control_share: must be in (0, 1), e.g. 0.1 (10% of the records are held out).",
    )
    _check(attacks.control_max >= 1, f"{key}.control_max: must be >= 1 (e.g. 2000).")
    _check(attacks.min_control >= 1, f"{key}.min_control: must be >= 1 (e.g. 500).")
    _check(
        attacks.min_control <= attacks.control_max,
        f"{key}.min_control: {attacks.min_control} exceeds control_max {attacks.control_max}, so no "
        "input could ever be attacked; lower min_control or raise control_max.",
    )
    _check(attacks.n_attacks >= 1, f"{key}.n_attacks: must be >= 1 (e.g. 500).")
    _check(attacks.singling_out_columns >= 2, f"{key}.singling_out_columns: must be >= 2 (e.g. 10).")
    _check(attacks.max_attempts >= 1, f"{key}.max_attempts: must be >= 1 (e.g. 10000).")
    _check(
        attacks.synthetic_sample >= 0, f"{key}.synthetic_sample: must be >= 0 (0 = every synthetic record)."
    )
    _check(0 <= attacks.max_risk <= 1, f"{key}.max_risk: must be in [0, 1], e.g. 0.1.")
    _check(
        len(set(attacks.secret_columns)) == len(attacks.secret_columns),
        f"{key}.secret_columns: lists a column twice; give each column once.",
    )
    if attacks.linkability_aux:
        _check(
            len(attacks.linkability_aux) == 2 and all(attacks.linkability_aux),
            f"{key}.linkability_aux: give two non-empty lists of columns, e.g. [[gender, ageBroad], "
            "[citizenship]], or [] for the default split.",
        )
        first, second = (set(side) for side in attacks.linkability_aux)
        _check(
            not first & second,
            f"{key}.linkability_aux: {', '.join(sorted(first & second))} is in both lists; the attacker "
            "links two disjoint sets of columns.",
        )
