"""Benchmark fidelity: every SDS mode (SDS's own CLI) and every ctdc-spark mode on the same data.

For each data set and privacy setting it runs, in one go:

* SDS's CLI (``--sds-cli``; skipped with a message when absent): ``aggregate`` (k, L; with ``--dp``
  at each epsilon), then ``generate`` in every mode (DP: ``aggregate_seeded`` from the DP
  aggregates), then counts each synthetic file with ``--resolution 1 --not-protect``;
* ctdc-spark in one local Spark session: prepare and aggregate once per setting, then the
  synthesize and evaluate stages per mode (``fitted`` included).

Every number is computed here, the same way for both tools, from SDS-format TSV files (the released
aggregates, the synthetic counts and the exact counts) and the synthetic microdata:

* records per person: synthetic records / sensitive records;
* MPE by length: mean over the released combinations of ``|synthetic - released| / released``
  (absent: 1), as SDS's own evaluation and our ``evaluation.json`` define it; coverage: the share of
  released combinations present in the synthetic data;
* DP only: MAE of the synthetic counts against the exact counts on the released combinations, and
  the fabricated share (synthetic combinations of length <= L that no sensitive record has);
* distance to the closest record (DCR): for up to 1,000 synthetic records, the number of attributes
  in which it differs from its nearest sensitive record (median, and the share at distance 0, i.e.
  identical to a real record); ctdc-spark's attack risks from ``evaluation_private.json``;
* seconds of SDS's ``generate`` and of our synthesize stage.

Writes ``benchmarks/fidelity.json`` and ``benchmarks/fidelity.md``; numbers are reported, never
asserted. Generated and public data only, so printing counts is fine here.

Usage, from the repository root::

    PYTHONPATH=. python -m benchmarks.bench_fidelity --sds-cli ../shared/anchors/sds/sds-cli
    PYTHONPATH=. python -m benchmarks.bench_fidelity --datasets ctdc20k --epsilons 4 --append
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._bench_util import CONFIG, ctdc_columns, ctdc_frame, machine
from ctdc_spark.config import DpConfig
from ctdc_spark.dp import sigma_proportions_for
from tests import oracle

K, L = 10, 3
OUR_MODES = ("row_seeded", "unseeded", "value_seeded", "aggregate_seeded", "fitted", "fitted_n")
SDS_MODES = ("row_seeded", "unseeded", "value_seeded", "aggregate_seeded", "aggregate_seeded_n")
DP_MODES = ("aggregate_seeded", "fitted", "fitted_n")
DCR_SAMPLE = 1000
SHARED_DATA = Path("../shared/data")
NIST_NUMERIC = ("AGEP", "PINCP", "POVPIP", "DENSITY", "PWGTP", "WGTP", "INDP")
"""national2019 columns left out: numeric (they would need binning) or with 263 codes (INDP; its
category INDP_CAT stays)."""


@dataclass(frozen=True)
class Dataset:
    """One benchmark input: a CSV, its columns and its unknown values."""

    name: str
    path: Path
    columns: list[str]
    unknown: list[str]
    note: str


def _blank_unknown(frame: pd.DataFrame, unknown: Sequence[str]) -> pd.DataFrame:
    """Unknown values as empty cells: SDS's CLI has no unknown-value setting (an empty cell carries
    no attribute there), so both tools read the same attributes."""
    return frame.astype(str).replace({value: "" for value in unknown if value})


def datasets(names: Sequence[str], work: Path) -> list[Dataset]:
    """Materialise the requested data sets under ``work`` (generated ones) or point at ../shared."""
    out = []
    for name in names:
        if name.startswith("ctdc") and name.endswith("k"):
            rows = int(name[4:-1]) * 1000
            columns, unknown = ctdc_columns()
            path = work / f"{name}.csv"
            _blank_unknown(ctdc_frame(rows, seed=42)[columns], unknown).to_csv(path, index=False)
            out.append(Dataset(name, path, columns, [""], f"CTDC-shaped generator, {rows:,} records"))
        elif name == "vp":
            path = SHARED_DATA / "ctdc_vp_synthetic/CTDC_VPsynthetic_condensed.csv"
            columns = list(pd.read_csv(path, nrows=0).columns)
            out.append(
                Dataset(name, path, columns, [""], "CTDC victim-perpetrator synthetic data, 21,195 rows")
            )
        elif name == "national2019":
            source = SHARED_DATA / "nist_crc/national2019.csv"
            columns = [c for c in pd.read_csv(source, nrows=0).columns if c not in NIST_NUMERIC]
            path = work / "national2019.csv"
            frame = pd.read_csv(source, dtype=str, keep_default_na=False)[columns]
            _blank_unknown(frame, ["N"]).to_csv(path, index=False)
            out.append(
                Dataset(name, path, columns, [""], "NIST CRC national2019, 27,253 rows, categorical columns")
            )
        else:
            raise SystemExit(f"unknown data set {name!r}; use ctdc20k, ctdc200k, vp or national2019")
    return out


# --------------------------------------------------------------------------------------------
# Measures, the same for both tools.
# --------------------------------------------------------------------------------------------


def read_sds_tsv(path: Path) -> tuple[dict[tuple[str, ...], float], int]:
    """``{sorted combination: count}`` and the record count of an SDS-format aggregates TSV."""
    counts: dict[tuple[str, ...], float] = {}
    records = 0
    with path.open(encoding="utf-8") as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)
        for selections, count in rows:
            if selections == "record_count":
                records = int(float(count))
                continue
            counts[tuple(sorted(selections.split(";")))] = float(count)
    return counts, records


def fidelity(
    released: Mapping[tuple[str, ...], float],
    synthetic: Mapping[tuple[str, ...], float],
    exact: Mapping[tuple[str, ...], float] | None,
) -> dict[str, Any]:
    """MPE and coverage by length (and overall) against the released counts; with ``exact``, the
    MAE against the exact counts on the released combinations and the fabricated share."""
    by_length: dict[int, list[tuple[float, float, float]]] = {}
    for combo, count in released.items():
        if count <= 0 or len(combo) > L:
            continue
        syn = synthetic.get(combo, 0.0)
        true = exact.get(combo, 0.0) if exact is not None else float("nan")
        by_length.setdefault(len(combo), []).append((count, syn, true))
    out: dict[str, Any] = {"mpe": {}, "coverage": {}}
    errors_all: list[float] = []
    for length, rows in sorted(by_length.items()):
        rel, produced, exact_counts = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
        errors = np.where(produced > 0, np.abs(produced - rel) / rel, 1.0)
        errors_all.extend(errors.tolist())
        out["mpe"][str(length)] = round(float(errors.mean()), 3)
        out["coverage"][str(length)] = round(float((produced > 0).mean()), 3)
        if exact is not None:
            mae = float(np.abs(produced - exact_counts).mean())
            out.setdefault("mae_vs_exact", {})[str(length)] = round(mae, 2)
    out["mpe"]["all"] = round(float(np.mean(errors_all)), 3) if errors_all else None
    if exact is not None:
        short = [c for c in synthetic if len(c) <= L]
        out["fabricated_share"] = round(sum(1 for c in short if c not in exact) / max(len(short), 1), 4)
    return out


def _attribute_sets(
    path: Path, columns: Sequence[str], unknown: Sequence[str], delimiter: str
) -> list[set[str]]:
    """Each record's attributes as SDS reads them (the reference implementation's cell rules)."""
    frame = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False, usecols=list(columns))
    rules = oracle.CellRules(unknown_values=unknown)
    return [set(rules.record(columns, row)) for row in frame[list(columns)].itertuples(index=False)]


def closest_record_distances(
    synthetic: Sequence[set[str]], sensitive: Sequence[set[str]], seed: int = 0
) -> dict[str, Any]:
    """Distance to the closest sensitive record of up to :data:`DCR_SAMPLE` synthetic records.

    The distance is the size of the symmetric difference of the attribute sets (an attribute the
    synthetic record lacks or adds), computed as ``|s| + |r| - 2 |s & r|`` with one matrix product.
    """
    nonempty = [s for s in synthetic if s]
    if not nonempty or not sensitive:
        return {"median": None, "identical_share": None, "sampled": 0}
    rng = np.random.default_rng(seed)
    sample = [nonempty[i] for i in rng.choice(len(nonempty), min(DCR_SAMPLE, len(nonempty)), replace=False)]
    vocabulary = {a: i for i, a in enumerate(sorted(set().union(*sensitive, *sample)))}

    def matrix(sets: Sequence[set[str]]) -> np.ndarray:
        out = np.zeros((len(sets), len(vocabulary)), dtype=np.float32)
        for row, attrs in enumerate(sets):
            out[row, [vocabulary[a] for a in attrs]] = 1.0
        return out

    real, syn = matrix(sensitive), matrix(sample)
    overlap = syn @ real.T  # (sample, sensitive)
    distance = syn.sum(axis=1)[:, None] + real.sum(axis=1)[None, :] - 2 * overlap
    nearest = distance.min(axis=1)
    return {
        "median": float(np.median(nearest)),
        "identical_share": round(float((nearest == 0).mean()), 4),
        "sampled": len(sample),
    }


# --------------------------------------------------------------------------------------------
# SDS's CLI.
# --------------------------------------------------------------------------------------------


def _sds(
    cli: Path,
    data: Dataset,
    resolution: int,
    *args: str,
    path: Path | None = None,
    timeout: float | None = None,
) -> float:
    command = [str(cli), "--resolution", str(resolution), "--sensitive-path", str(path or data.path)]
    if path is None:
        for column in data.columns:
            command += ["--use-columns", column]
    # After the multi-valued --use-columns: an option ends its value list, a subcommand would not.
    command += ["--sensitive-delimiter", "," if path is None else "\t", "--n-threads", "2"]
    start = time.perf_counter()
    subprocess.run([*command, *args], check=True, capture_output=True, timeout=timeout)
    return time.perf_counter() - start


def run_sds(
    cli: Path,
    data: Dataset,
    work: Path,
    epsilon: float | None,
    sensitive: list[set[str]],
    *,
    timeout: float,
) -> dict[str, Any]:
    """SDS's aggregate, then each mode's generate (stopped after ``timeout`` s), measured like ours."""
    tag = "k" if epsilon is None else f"dp{epsilon:g}"
    folder = work / f"sds_{data.name}_{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    agg, agg_json = folder / "agg.tsv", folder / "agg.json"
    dp_args = (
        []
        if epsilon is None
        else [
            "--dp",
            "--noise-epsilon",
            str(epsilon),
            "--sensitivities-percentile",
            "99",
            "--sensitivities-epsilon-proportion",
            "0.01",
            "--noise-threshold-type",
            "adaptive",
            *[a for _ in range(L) for a in ("--noise-threshold-values", "1.0")],
            # SDS's CLI splits the noise equally across lengths unless told; ours defaults to SDS's
            # web-app preset (prioritize long combinations), which gives singles sqrt(14/3) = 2.2x
            # the noise at L = 3. Both run with the same split and the same share of epsilon for the
            # record count (the CLI spends none unless told), so the same algorithm gives the same error.
            "--number-of-records-epsilon-proportion",
            repr(DpConfig().number_of_records_epsilon_proportion),
            *[
                a
                for p in sigma_proportions_for(DpConfig(epsilon=epsilon), L)
                for a in ("--sigma-proportions", repr(p))
            ],
        ]
    )
    seconds = _sds(
        cli,
        data,
        K,
        "aggregate",
        "--aggregates-path",
        str(agg),
        "--reporting-length",
        str(L),
        "--aggregates-json",
        str(agg_json),
        *dp_args,
    )
    released, _ = read_sds_tsv(agg)
    exact_path = folder / "exact.tsv"
    _sds(
        cli,
        data,
        1,
        "aggregate",
        "--aggregates-path",
        str(exact_path),
        "--reporting-length",
        str(L),
        "--not-protect",
    )
    exact, n_records = read_sds_tsv(exact_path)
    out: dict[str, Any] = {"aggregate_seconds": round(seconds, 1), "modes": {}}
    modes = ("aggregate_seeded",) if epsilon is not None else SDS_MODES
    for mode in modes:
        syn = folder / f"{mode}.tsv"
        args = ["generate", "--synthetic-path", str(syn), "--mode", mode.removesuffix("_n")]
        if mode.startswith("aggregate_seeded"):
            args += ["--aggregates-json", str(agg_json)]
        if mode == "aggregate_seeded_n":
            args += ["--target-number-of-records", str(n_records), "--use-synthetic-counts"]
        try:
            generate = _sds(cli, data, K, *args, timeout=timeout)
        except subprocess.CalledProcessError as error:
            out["modes"][mode] = {"error": error.stderr.decode(errors="replace")[-300:]}
            continue
        except subprocess.TimeoutExpired:
            out["modes"][mode] = {"error": f"did not finish in {timeout:,.0f} s (--sds-timeout)"}
            continue
        counts = folder / f"{mode}_counts.tsv"
        _sds(
            cli,
            data,
            1,
            "aggregate",
            "--aggregates-path",
            str(counts),
            "--reporting-length",
            str(L),
            "--not-protect",
            path=syn,
        )
        synthetic, n_synthetic = read_sds_tsv(counts)
        records = _attribute_sets(syn, data.columns, data.unknown, "\t")
        out["modes"][mode] = {
            "seconds": round(generate, 1),
            "records": n_synthetic,
            "records_per_person": round(n_synthetic / n_records, 3),
            **fidelity(released, synthetic, exact if epsilon is not None else None),
            "dcr": closest_record_distances(records, sensitive),
        }
    return out


# --------------------------------------------------------------------------------------------
# ctdc-spark.
# --------------------------------------------------------------------------------------------


def run_ours(
    spark: Any, data: Dataset, work: Path, epsilon: float | None, sensitive: list[set[str]]
) -> dict[str, Any]:
    """Prepare and aggregate once for this setting, then synthesize and evaluate per mode."""
    from ctdc_spark.config import AttackConfig, load_config
    from ctdc_spark.evaluate import run_evaluate
    from ctdc_spark.pipeline import run_pipeline
    from ctdc_spark.stage import RunContext
    from ctdc_spark.synthesize import run_synthesize

    tag = "k" if epsilon is None else f"dp{epsilon:g}"
    root = work / f"ours_{data.name}_{tag}"
    columns = "[" + ", ".join(json.dumps(c) for c in data.columns) + "]"
    unknown = "[" + ", ".join(json.dumps(u) for u in data.unknown) + "]"

    def cfg(mode: str) -> Any:
        overrides = [
            f"input.path={data.path.resolve()}",
            f"input.use_columns={columns}",
            f"input.unknown_values={unknown}",
            f"output.root={root}",
            f"privacy.resolution={K}",
            f"privacy.reporting_length={L}",
            f"synthesis.mode={mode.removesuffix('_n')}",
            f"synthesis.fit_record_count={'published' if mode == 'fitted_n' else 'free'}",
            "synthesis.seed=42",
            "explorer.country_columns=[]",
            "explorer.ordinal_columns={}",
            # A benchmark reports the attack risks instead of refusing to publish on them; the report
            # marks each risk whose 95% lower bound is above the shipped threshold.
            "evaluation.attacks.max_risk=1",
        ]
        if epsilon is not None:
            overrides.append(f"privacy.dp={{epsilon: {epsilon}}}")
        return load_config(str(CONFIG), overrides=overrides)

    modes = DP_MODES if epsilon is not None else OUR_MODES
    start = time.perf_counter()
    run_pipeline(spark, cfg(modes[0]), stages=["prepare", "aggregate"], run_id="bench")
    out: dict[str, Any] = {
        "prepare_and_aggregate_seconds": round(time.perf_counter() - start, 1),
        "modes": {},
    }
    staging, private = root / "staging/bench", root / "private/bench"
    released, _ = read_sds_tsv(staging / "reportable_aggregates.tsv")
    exact, n_records = read_sds_tsv(private / "sensitive_aggregates.tsv") if epsilon is not None else ({}, 0)
    for mode in modes:
        ctx = RunContext(cfg=cfg(mode), run_id="bench", input_fingerprint="bench")
        start = time.perf_counter()
        result = run_synthesize(spark, ctx)
        seconds = time.perf_counter() - start
        run_evaluate(spark, ctx)
        synthetic, _ = read_sds_tsv(private / "synthetic_aggregates.tsv")
        n_synthetic = int(result.row_counts["synthetic_records"])
        evaluation = json.loads((private / "evaluation_private.json").read_text())
        n_records = n_records or int(evaluation.get("sensitive_records", 0)) or len(sensitive)
        records = _attribute_sets(staging / "synthetic_microdata.csv", data.columns, data.unknown, ",")
        out["modes"][mode] = {
            "seconds": round(seconds, 1),
            "records": n_synthetic,
            "records_per_person": round(n_synthetic / len(sensitive), 3),
            **fidelity(released, synthetic, exact if epsilon is not None else None),
            "dcr": closest_record_distances(records, sensitive),
            "attacks": {
                name: attack.get("risk")
                for name, attack in evaluation.get("attacks", {}).get("attacks", {}).items()
            },
            "attacks_above_threshold": [
                name
                for name, attack in evaluation.get("attacks", {}).get("attacks", {}).items()
                if attack.get("ci") and attack["ci"][0] > AttackConfig().max_risk
            ],
        }
    return out


# --------------------------------------------------------------------------------------------
# Orchestration and report.
# --------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def markdown(report: Mapping[str, Any]) -> str:
    """The fidelity tables, one per data set and privacy setting."""
    lines = [
        "# Fidelity: every SDS mode and every ctdc-spark mode on the same data",
        "",
        f"Written by `benchmarks/bench_fidelity.py` on {report['machine']}; k = {K}, L = {L}. MPE: mean "
        "proportional error against the released counts by combination length (absent = 1); "
        "coverage: share of released combinations present; DCR: distance (attributes) from a "
        "synthetic record to its closest sensitive record, median and share identical; DP also: MAE "
        "against the exact counts on the released combinations and the fabricated share. "
        "`aggregate_seeded_n` is SDS's aggregate_seeded with `--target-number-of-records n "
        "--use-synthetic-counts`; `fitted` is ours with `fit_record_count: free`, `fitted_n` with "
        "`published` (the record count held at the published n). Attack risks are anonymeter's "
        "(evaluate's holdout); `(!)` marks a risk whose 95% lower bound is above the shipped "
        "`evaluation.attacks.max_risk`, where a real run would refuse to publish.",
        "",
    ]
    for case, results in report["cases"].items():
        lines += [f"## {case}", "", results.get("note", ""), ""]
        dp = "dp" in case.rsplit(" ", 1)[-1]
        header = "| tool | mode | seconds | records / n | MPE 1 | MPE 2 | MPE 3 | MPE all | cov 2 | cov 3 |"
        header += " MAE 1 | MAE 2 | MAE 3 | fabricated |" if dp else ""
        header += " DCR median | identical | attacks (risk) |"
        lines += [header, "|" + "---|" * (header.count("|") - 1)]
        for tool in ("sds", "ours"):
            for mode, m in results.get(tool, {}).get("modes", {}).items():
                if "error" in m:
                    lines.append(f"| {tool} | {mode} | failed: {m['error'][:80]} |")
                    continue
                row = [tool, mode, _fmt(m["seconds"]), _fmt(m["records_per_person"])]
                row += [_fmt(m["mpe"].get(str(i))) for i in (1, 2, 3)] + [_fmt(m["mpe"].get("all"))]
                row += [_fmt(m["coverage"].get(str(i))) for i in (2, 3)]
                if dp:
                    row += [_fmt(m.get("mae_vs_exact", {}).get(str(i))) for i in (1, 2, 3)]
                    row.append(_fmt(m.get("fabricated_share")))
                row += [_fmt(m["dcr"]["median"]), _fmt(m["dcr"]["identical_share"])]
                attacks = m.get("attacks") or {}
                above = set(m.get("attacks_above_threshold") or ())
                risks = [f"{k} {_fmt(v)}{' (!)' if k in above else ''}" for k, v in attacks.items()]
                row.append(", ".join(risks) or "-")
                lines.append("| " + " | ".join(row) + " |")
        if "sds_skipped" in results:
            lines.append(f"\nSDS: {results['sds_skipped']}")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sds-cli", type=Path, default=Path("../shared/anchors/sds/sds-cli"))
    parser.add_argument("--datasets", default="ctdc20k,vp,national2019,ctdc200k")
    parser.add_argument("--epsilons", default="1,4,10", help="DP settings; empty for none")
    parser.add_argument("--skip-k", action="store_true", help="only the DP settings")
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    parser.add_argument("--append", action="store_true", help="merge into an existing fidelity.json")
    parser.add_argument(
        "--sds-timeout",
        type=float,
        default=3600,
        help="seconds each SDS generate may take before it is stopped and reported as unfinished",
    )
    args = parser.parse_args(argv)

    from ctdc_spark.config import SparkConfig
    from ctdc_spark.session import build_session

    report_path = args.out / "fidelity.json"
    report: dict[str, Any] = {"cases": {}}
    if args.append and report_path.exists():
        report = json.loads(report_path.read_text())
    report["machine"] = machine()
    report["written"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    sds = args.sds_cli if args.sds_cli.exists() else None
    epsilons = [float(e) for e in args.epsilons.split(",") if e]
    settings: list[float | None] = ([] if args.skip_k else [None]) + list(epsilons)
    spark = build_session(
        SparkConfig(master="local[2]", app_name="bench-fidelity", conf={"spark.driver.memory": "6g"}),
        under_spark_submit=False,
    )
    work = Path(tempfile.mkdtemp(prefix="bench_fidelity_"))
    try:
        for data in datasets(args.datasets.split(","), work):
            sensitive = _attribute_sets(data.path, data.columns, data.unknown, ",")
            for epsilon in settings:
                case = f"{data.name} {'k' if epsilon is None else f'dp{epsilon:g}'}"
                print(f"[bench_fidelity] {case}", flush=True)
                results: dict[str, Any] = {"note": data.note}
                if sds is None:
                    results["sds_skipped"] = f"skipped: no SDS CLI at {args.sds_cli}"
                else:
                    results["sds"] = run_sds(sds, data, work, epsilon, sensitive, timeout=args.sds_timeout)
                results["ours"] = run_ours(spark, data, work, epsilon, sensitive)
                report["cases"][case] = results
                args.out.mkdir(parents=True, exist_ok=True)
                report_path.write_text(json.dumps(report, indent=2) + "\n")
                (args.out / "fidelity.md").write_text(markdown(report))
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
