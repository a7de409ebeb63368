"""Input discovery, header reading and column resolution, without Spark jobs.

``ctdc-spark validate`` uses this module alone: it lists the input files, reads each file's header
on the driver (a few bytes), normalises header names (docs/spec.md 2.2) and resolves every column the
config names. Messages name files, columns and row numbers, never cell values. It also names the
bins of numeric columns (:func:`bin_labels`), which the explorer declares as well.
"""

from __future__ import annotations

import bz2
import csv
import difflib
import gzip
import io
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ctdc_spark.config import InputConfig
from ctdc_spark.errors import ConfigError, InputDataError
from ctdc_spark.io.paths import is_local_path, local_path

SEMICOLON = "<semicolon>"
COLON = "<colon>"
_EDGE_WHITESPACE = re.compile(r"^\s+|\s+$")
# Tabs and line breaks inside a header or value would break the TSV outputs (one line per
# combination, one tab before its count) and every line-based reader of the CSVs.
LINE_BREAKS = re.compile(r"[\t\r\n]+")
_TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".tab"}
# Compressed text that both the header check here and Spark's reader (Hadoop codecs) open as is.
_DECOMPRESS: dict[str, Callable[[Path], io.BufferedIOBase]] = {
    ".gz": lambda p: gzip.GzipFile(p, "rb"),
    ".bz2": lambda p: bz2.BZ2File(p, "rb"),
}
# Compression Spark's CSV reader cannot open without native Hadoop libraries.
_UNSUPPORTED_COMPRESSION = {".zst": "zstd", ".zstd": "zstd", ".xz": "xz", ".lz4": "lz4", ".zip": "zip"}

ColumnRole = Literal["single", "multi", "binned"]


def normalize_text(text: str) -> str:
    """Trim whitespace, make each run of tabs and line breaks one space, replace ``;`` and ``:``.

    docs/spec.md 2.2 reserves ``;`` and ``:``; tabs, carriage returns and newlines are reserved too,
    since the SDS TSV format and CSV readers split on them.

    Example:
        >>> normalize_text("  D;h ") , normalize_text("E:h"), normalize_text("Multi\\r\\nLine\\tv")
        ('D<semicolon>h', 'E<colon>h', 'Multi Line v')
    """
    trimmed = LINE_BREAKS.sub(" ", _EDGE_WHITESPACE.sub("", text))
    return trimmed.replace(";", SEMICOLON).replace(":", COLON)


def _format_edge(edge: float) -> str:
    return str(int(edge)) if float(edge).is_integer() else repr(float(edge))


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the bins of ``edges``: ``<e0``, ``[e0,e1)``, ..., ``>=en``.

    Example:
        >>> bin_labels([18, 30])
        ['<18', '[18,30)', '>=30']
    """
    text = [_format_edge(e) for e in edges]
    inner = [f"[{a},{b})" for a, b in itertools.pairwise(text)]
    return [f"<{text[0]}", *inner, f">={text[-1]}"]


def _match_key(name: str) -> str:
    return normalize_text(name).lower()


@dataclass(frozen=True)
class SourceColumn:
    """One column of the input file that the run uses."""

    file_index: int
    name: str
    role: ColumnRole
    multi_value_delimiter: str | None = None
    bin_edges: tuple[float, ...] = ()
    sensitive_zero: bool = False


@dataclass(frozen=True)
class InputLayout:
    """The resolved input: files, the normalised header and the columns to use, in file order."""

    files: tuple[str, ...]
    header: tuple[str, ...]
    columns: tuple[SourceColumn, ...]
    subject_id_index: int | None

    @property
    def n_fields(self) -> int:
        """Number of fields each row must have."""
        return len(self.header)


def list_input_files(cfg: InputConfig) -> tuple[str, ...]:
    """List the files of a CSV/TSV/Parquet input (a file or a folder of files, sorted by name).

    Raises:
        InputDataError: when the path is missing, unreadable or holds no data files.
    """
    if not is_local_path(cfg.path):
        return (cfg.path,)
    path = local_path(cfg.path)
    if not path.exists():
        raise InputDataError(
            f"input.path {cfg.path} does not exist; check the path or pass --set input.path=FILE."
        )
    if cfg.format == "delta":
        if not (path / "_delta_log").is_dir():
            raise InputDataError(f"input.path {cfg.path} is not a Delta table (no _delta_log folder).")
        return (str(path),)
    if path.is_file():
        _check_compression(path)
        return (str(path),)
    if cfg.format == "parquet":
        files = sorted(str(p) for p in path.rglob("*") if _visible(p) and p.suffix.lower() == ".parquet")
        suffixes = {".parquet"}
    else:
        files = sorted(str(p) for p in path.rglob("*") if _visible(p) and _is_text_file(p))
        suffixes = _TEXT_SUFFIXES | {f"{t}{c}" for t in _TEXT_SUFFIXES for c in _DECOMPRESS}
    if not files:
        raise InputDataError(
            f"input.path {cfg.path} is a folder without {'/'.join(sorted(suffixes))} files; "
            "point it at a file or a folder of input files."
        )
    return tuple(files)


def _visible(path: Path) -> bool:
    return path.is_file() and not path.name.startswith((".", "_"))


def _is_text_file(path: Path) -> bool:
    """``x.csv``, or ``x.csv.gz`` / ``x.csv.bz2``: a text file, maybe compressed."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] in _DECOMPRESS:
        suffixes.pop()
    return bool(suffixes) and suffixes[-1] in _TEXT_SUFFIXES


def _check_compression(path: Path) -> None:
    kind = _UNSUPPORTED_COMPRESSION.get(path.suffix.lower())
    if kind is not None:
        raise InputDataError(
            f"input file {path.name} is {kind}-compressed, which the Spark reader cannot open; "
            f"decompress it, or recompress it with gzip (.gz) or bzip2 (.bz2), which are read directly."
        )


def _open_text_bytes(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed when its name ends in .gz or .bz2."""
    opener = _DECOMPRESS.get(path.suffix.lower())
    return opener(path) if opener else path.open("rb")


_MAX_HEADER_LINES = 64


def read_csv_header(file: str, *, delimiter: str, encoding: str) -> list[str] | None:
    """Read the first record of a delimited text file, or None when it is not local.

    Only the header's own bytes are decoded (line by line until the record is complete), so a bad
    byte further down is reported by the row checks with its row number, not as a header problem.
    """
    if not is_local_path(file):
        return None
    path = local_path(file)
    try:
        with _open_text_bytes(path) as handle:
            raw = b""
            for _ in range(_MAX_HEADER_LINES):
                line = handle.readline()
                if not line:
                    break
                raw += line
                # A byte-order mark is not part of the first column name.
                text = raw.decode(encoding).removeprefix("\ufeff")
                try:
                    row = next(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True), None)
                except csv.Error:
                    continue  # a quoted header cell spans lines: read on
                break
            else:
                row = None
    except UnicodeDecodeError:
        raise InputDataError(
            f"the header of input file {path.name} is not valid {encoding}; "
            "save the file as UTF-8 or set input.encoding (e.g. latin-1 or cp1252)."
        ) from None
    except PermissionError:
        raise InputDataError(f"input file {path.name} cannot be read (permission denied).") from None
    except IsADirectoryError:
        raise InputDataError(f"input.path {file} is a folder; set input.format or point at a file.") from None
    except (OSError, EOFError) as exc:
        # gzip/bz2 raise these for a truncated or mislabelled archive.
        raise InputDataError(
            f"input file {path.name} cannot be decompressed ({type(exc).__name__}); check that it is a "
            "complete gzip or bzip2 file, or remove the .gz/.bz2 ending if it is plain text."
        ) from None
    if not raw:
        raise InputDataError(f"input file {path.name} is empty; it needs a header row and data rows.")
    if row is None or not any(cell.strip() for cell in row):
        raise InputDataError(
            f"input file {path.name} has no header row; the first line must name the columns."
        )
    return row


def _parquet_header(file: str) -> list[str] | None:
    if not is_local_path(file):
        return None
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(local_path(file)).names)
    except Exception:
        raise InputDataError(f"input file {Path(file).name} is not a readable Parquet file.") from None


def _delta_header(table: str) -> list[str] | None:
    """Column names from the newest ``metaData`` action of a local Delta log."""
    if not is_local_path(table):
        return None
    log = local_path(table) / "_delta_log"
    for commit in sorted(log.glob("*.json"), reverse=True):
        for line in commit.read_text(encoding="utf-8").splitlines():
            action = json.loads(line)
            if "metaData" in action:
                schema = json.loads(action["metaData"]["schemaString"])
                return [f["name"] for f in schema["fields"]]
    checkpoints = sorted(log.glob("*.checkpoint*.parquet"), reverse=True)
    if checkpoints:
        import pyarrow.parquet as pq

        meta = pq.read_table(checkpoints[0], columns=["metaData"]).column("metaData").to_pylist()
        for entry in meta:
            if entry and entry.get("schemaString"):
                return [f["name"] for f in json.loads(entry["schemaString"])["fields"]]
    raise InputDataError(f"input.path {table} is a Delta table without a readable schema.")


def read_header(cfg: InputConfig, files: Sequence[str]) -> list[str] | None:
    """The raw header of the input; every CSV/TSV file of a folder must have the same header.

    Returns:
        The header, or None when the input is not on the driver's filesystem.
    """
    if cfg.format == "parquet":
        return _parquet_header(files[0])
    if cfg.format == "delta":
        return _delta_header(files[0])
    first = read_csv_header(files[0], delimiter=cfg.field_delimiter, encoding=cfg.encoding)
    for other in files[1:]:
        header = read_csv_header(other, delimiter=cfg.field_delimiter, encoding=cfg.encoding)
        if header is not None and first is not None and header != first:
            raise InputDataError(
                f"input file {Path(other).name} has a different header from {Path(files[0]).name}; "
                "all files of an input folder must share one header."
            )
    return first


def _resolve(name: str, lookup: dict[str, int], header: Sequence[str], setting: str) -> int:
    key = _match_key(name)
    if key in lookup:
        return lookup[key]
    close = difflib.get_close_matches(normalize_text(name), list(header), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"{setting} names column {name!r}, which is not in the input header.{hint} "
        "Column names match case-insensitively after trimming."
    )


def resolve_layout(cfg: InputConfig, files: Sequence[str], raw_header: Sequence[str]) -> InputLayout:
    """Normalise the header and resolve every column the config refers to.

    Raises:
        InputDataError: duplicate or empty column names among the used columns.
        ConfigError: a configured column that the header does not have.
    """
    header = tuple(normalize_text(h) for h in raw_header)
    lookup: dict[str, int] = {}
    duplicates: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        key = name.lower()
        if key in lookup:
            duplicates.setdefault(key, [lookup[key]]).append(i)
        else:
            lookup[key] = i

    if cfg.use_columns:
        used = sorted({_resolve(c, lookup, header, "input.use_columns") for c in cfg.use_columns})
    else:
        used = list(range(len(header)))
    subject_index = (
        _resolve(cfg.subject_id, lookup, header, "input.subject_id") if cfg.subject_id is not None else None
    )
    zeros = {_resolve(c, lookup, header, "input.sensitive_zeros") for c in cfg.sensitive_zeros}
    multi = {
        _resolve(c, lookup, header, "input.multi_value_columns"): d
        for c, d in cfg.multi_value_columns.items()
    }
    bins = {_resolve(c, lookup, header, "input.bins"): tuple(e) for c, e in cfg.bins.items()}

    used_set = set(used) - ({subject_index} if subject_index is not None else set())
    for positions in duplicates.values():
        clash = [p for p in positions if p in used_set or p == subject_index]
        if len(clash) > 1:
            cols = ", ".join(f"{header[p]!r} (column {p + 1})" for p in clash)
            raise InputDataError(
                f"duplicate column names after normalisation: {cols}; rename them in the file "
                "or exclude all but one with input.use_columns."
            )
    columns = []
    for i in sorted(used_set):
        if not header[i]:
            raise InputDataError(
                f"column {i + 1} of the header has an empty name; "
                "name it or exclude it with input.use_columns."
            )
        role: ColumnRole = "multi" if i in multi else "binned" if i in bins else "single"
        columns.append(
            SourceColumn(
                file_index=i,
                name=header[i],
                role=role,
                multi_value_delimiter=multi.get(i),
                bin_edges=bins.get(i, ()),
                sensitive_zero=i in zeros,
            )
        )
    if not columns:
        raise ConfigError("input.use_columns selects no attribute column; list at least one column.")
    return InputLayout(
        files=tuple(files), header=header, columns=tuple(columns), subject_id_index=subject_index
    )


def inspect_input(cfg: InputConfig) -> InputLayout | None:
    """List files, read the header and resolve the layout (None when the input is not local)."""
    files = list_input_files(cfg)
    raw_header = read_header(cfg, files)
    if raw_header is None:
        return None
    return resolve_layout(cfg, files, raw_header)
