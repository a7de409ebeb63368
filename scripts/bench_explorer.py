"""Benchmark the offline explorer at CTDC scale: load-to-ready and per-click time in headless Chromium.

Generates a seeded, CTDC-shaped release (default 100,000 records x 60 attribute columns: single-value columns
of very different cardinalities plus two multi-value fields expanded into indicator columns, many empty cells,
correlated through latent groups), computes its reportable aggregates (every combination of length <= L with
count >= k, rounded down to a multiple of k) and public fidelity statistics with numpy, builds the explorer
with :func:`ctdc_spark.publish._explorer.build_explorer`, then opens it from ``file://`` and measures, inside
the page with ``performance.now()``:

* load-to-ready: navigation start -> ``window.__explorerReady`` (home and explore views);
* per click: the synchronous handler (counting + DOM update) and click -> next animation frame (adds style,
  layout and paint), over a scripted sequence of selections in the explore view.

Writes ``benchmarks/explorer.json`` and ``benchmarks/explorer.md``. Numbers are reported, not asserted.

Usage::

    python scripts/bench_explorer.py                      # 100k x 60, k = 10, L = 3
    python scripts/bench_explorer.py --records 20000 --clicks 20 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ctdc_spark.publish._explorer import build_explorer

# The page's one inlined script (frontend/ bundle): part of every explorer file, whatever the data.
SCRIPT_BYTES = len(
    resources.files("ctdc_spark.publish").joinpath("explorer_assets", "explorer.js").read_bytes()
)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# CTDC-like headers for the first columns; the rest are numbered.
NAMED = [
    ("gender", 3),
    ("ageBroad", 9),
    ("majorityStatus", 2),
    ("citizenship", 120),
    ("CountryOfExploitation", 100),
    ("yearOfRegistration", 20),
    ("recruiterRelation", 6),
    ("isAbduction", 2),
    ("traffickMonths", 5),
    ("Datasource", 4),
    ("RecruiterRelationIntimatePartner", 2),
    ("isForcedMarriage", 2),
]
MULTI = [("meansOfControl", 10), ("typeOfExploit", 10)]
# Sources whose yes/no columns are single `indicator` columns gathered in a configured group (as CTDC's means
# of control are), rather than a multi-value field; the page shows each as one grouped chart.
INDICATOR_SOURCES = {"meansOfControl"}
# Country columns (ISO alpha-2, shown on the world map) and ordinal ones (natural order).
GEO_COLUMNS = {"citizenship", "CountryOfExploitation"}
ORDINAL_COLUMNS = {"ageBroad", "yearOfRegistration", "traffickMonths"}
ISO_CODES = (
    "US GB FR DE ES IT PT NL BE CH AT PL CZ SK HU RO BG GR TR UA RU BY MD LT LV EE FI SE NO DK "
    "IE IS RS BA HR SI AL MK ME XK CY MT IL LB SY JO IQ IR SA YE OM AE QA KW BH EG LY TN DZ MA "
    "MR ML NE TD SD SS ET ER DJ SO KE UG TZ RW BI CD CG GA CM CF NG BJ TG GH CI LR SL GN GW SN "
    "GM BF ZA NA BW ZW ZM MW MZ MG AO LS SZ AF PK IN NP BT BD LK MM TH LA KH VN MY SG ID PH TL "
    "PG AU NZ CN MN KP KR JP TW KZ UZ TM KG TJ AZ GE AM MX GT BZ SV HN NI CR PA CU HT DO JM TT "
    "CO VE GY SR BR EC PE BO PY UY AR CL CA"
).split()


def value_name(spec: dict[str, Any], code: int) -> str:
    """The codebook value of a cell code: "1" for a yes/no column, an ISO code for a country column."""
    if spec["kind"] == "multi" or spec.get("indicator"):
        return "1"
    if spec["id"] in GEO_COLUMNS:
        return ISO_CODES[code - 1]
    return f"value {code:03d}"


def generate(n: int, n_columns: int, seed: int) -> tuple[list[dict[str, Any]], npt.NDArray[np.int32]]:
    """Seeded CTDC-shaped codes (n x columns, 0 = empty) and the column specs (id, source, kind, values)."""
    rng = np.random.default_rng(seed)
    n_single = n_columns - sum(m for _, m in MULTI)
    specs: list[dict[str, Any]] = []
    for i in range(n_single):
        if i < len(NAMED):
            name, card = NAMED[i]
        else:
            name, card = f"q{i:02d}_attribute", int(rng.choice([2, 3, 4, 5, 6, 8, 12, 25]))
        specs.append(
            {
                "id": name,
                "source": name,
                "kind": "single",
                "card": card,
                "missing": float(rng.choice([0.0, 0.05, 0.2, 0.4, 0.7])),
            }
        )
    for source, m in MULTI:
        indicator = source in INDICATOR_SOURCES
        for j in range(m):
            col_id = f"{source}_v{j:02d}"
            specs.append(
                {
                    "id": col_id,
                    "source": col_id if indicator else source,
                    "kind": "single" if indicator else "multi",
                    "indicator": indicator,
                    "card": 1,
                    "missing": 0.0,
                }
            )

    groups = 16  # latent groups make combinations correlated, like real case records
    group = rng.choice(groups, size=n, p=rng.dirichlet(np.ones(groups)))
    codes = np.zeros((n, len(specs)), dtype=np.int32)
    for ci, spec in enumerate(specs):
        if spec["card"] == 1:  # a yes/no column: code 1 or empty
            p = rng.beta(0.6, 3.0, size=groups)
            codes[:, ci] = rng.random(n) < p[group]
            continue
        card = spec["card"]
        # Zipf-like base popularity, tilted per group.
        base = 1.0 / np.arange(1, card + 1) ** 1.1
        for g in range(groups):
            rows = np.flatnonzero(group == g)
            p = rng.dirichlet(base * 4 + 0.05)
            codes[rows, ci] = rng.choice(card, size=len(rows), p=p) + 1
        codes[rng.random(n) < spec["missing"], ci] = 0
    return specs, codes


def perturb(codes: npt.NDArray[np.int32], share: float, seed: int) -> npt.NDArray[np.int32]:
    """A stand-in for synthetic data: each cell is replaced, with probability `share`, by another row's."""
    rng = np.random.default_rng(seed + 1)
    out = codes.copy()
    n = len(codes)
    for ci in range(codes.shape[1]):
        rows = np.flatnonzero(rng.random(n) < share)
        out[rows, ci] = codes[rng.integers(0, n, len(rows)), ci]
    return out


def combination_counts(
    codes: npt.NDArray[np.int32], cards: list[int], rank: list[npt.NDArray[np.int64]], max_len: int
) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """Per length: (canonical int key of sorted attribute ranks, count) for every combination present."""
    base = 1 + max(int(r.max()) for r in rank)
    out: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}
    n_cols = codes.shape[1]
    for length in range(1, max_len + 1):
        keys: list[npt.NDArray[np.int64]] = []
        counts: list[npt.NDArray[np.int64]] = []
        for cols in itertools.combinations(range(n_cols), length):
            index = np.zeros(len(codes), dtype=np.int64)
            for c in cols:  # mixed-radix cell index, code 0 (empty) included and dropped afterwards
                index = index * (cards[c] + 1) + codes[:, c]
            bins = np.bincount(index)
            cell = np.flatnonzero(bins)
            parts = []
            rest = cell.copy()
            for c in reversed(cols):
                parts.append(rest % (cards[c] + 1))
                rest //= cards[c] + 1
            parts.reverse()
            keep = np.all([p > 0 for p in parts], axis=0)
            if not keep.any():
                continue
            ranks = np.stack([rank[c][p[keep]] for c, p in zip(cols, parts, strict=True)], axis=1)
            ranks.sort(axis=1)
            key = np.zeros(len(ranks), dtype=np.int64)
            for j in range(length):
                key = key * base + ranks[:, j] + 1
            keys.append(key)
            counts.append(bins[cell[keep]])
        empty = np.zeros(0, dtype=np.int64)
        out[length] = (np.concatenate(keys), np.concatenate(counts)) if keys else (empty, empty)
    return out


def decode_key(key: int, length: int, base: int) -> list[int]:
    ranks = []
    for _ in range(length):
        key, r = divmod(key, base)
        ranks.append(r - 1)
    return ranks[::-1]


def fidelity_stats(
    official: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]],
    synthetic: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]],
    k: int,
) -> dict[str, Any]:
    """Public-only statistics: synthetic combination counts vs the reportable aggregates."""
    by_length = []
    all_off: list[npt.NDArray[np.int64]] = []
    all_syn: list[npt.NDArray[np.int64]] = []
    n_off = n_syn = n_common = n_syn_only = 0
    for length in sorted(official):
        ok, oc = official[length]
        sk, sc = synthetic[length]
        common, oi, si = np.intersect1d(ok, sk, assume_unique=True, return_indices=True)
        # Official combinations missing from the synthetic data count as synthetic 0 in the bucket errors.
        syn_for_off = np.zeros(len(ok), dtype=np.int64)
        syn_for_off[oi] = sc[si]
        all_off.append(oc)
        all_syn.append(syn_for_off)
        err = sc[si] - oc[oi]
        n_off += len(ok)
        n_syn += len(sk)
        n_common += len(common)
        n_syn_only += len(sk) - len(common)
        by_length.append(
            {
                "length": length,
                "official_combinations": len(ok),
                "synthetic_combinations": len(sk),
                "common": len(common),
                "coverage_pct": 100 * len(common) / len(ok) if len(ok) else None,
                "not_in_official_pct": 100 * (len(sk) - len(common)) / len(sk) if len(sk) else None,
                "mean_abs_error": float(np.abs(err).mean()) if len(err) else None,
                "mean_signed_error": float(err.mean()) if len(err) else None,
            }
        )
    off = np.concatenate(all_off)
    syn = np.concatenate(all_syn)
    by_bucket = []
    low = k
    while len(off) and low <= off.max():
        high = 2 * low - 1
        sel = (off >= low) & (off <= high)
        abs_err = np.abs(syn[sel] - off[sel])
        by_bucket.append(
            {
                "low": low,
                "high": high,
                "combinations": int(sel.sum()),
                "mean_abs_error": float(abs_err.mean()) if sel.any() else None,
                "mean_proportional_error": float((abs_err / off[sel]).mean()) if sel.any() else None,
            }
        )
        low *= 2
    abs_all = np.abs(syn - off)
    return {
        "by_length": by_length,
        "by_bucket": by_bucket,
        "overall": {
            "mean_abs_error": float(abs_all.mean()),
            "mean_proportional_error": float((abs_all / off).mean()),
            "coverage_pct": 100 * n_common / n_off,
            "not_in_official_pct": 100 * n_syn_only / n_syn,
        },
    }


def build_payload(
    n: int, n_columns: int, k: int, max_len: int, seed: int
) -> tuple[dict[str, Any], dict[str, float]]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    specs, sensitive = generate(n, n_columns, seed)
    synthetic = perturb(sensitive, 0.08, seed)
    timings["generate_s"] = time.perf_counter() - t0

    attributes = []  # (attribute string, column index, code)
    for ci, spec in enumerate(specs):
        for code in range(1, spec["card"] + 1):
            value = value_name(spec, code)
            attributes.append((f"{spec['id']}:{value}", ci, code))
    ordered = sorted(attributes, key=lambda a: a[0].encode("utf-8"))
    rank_of = {a[0]: r for r, a in enumerate(ordered)}
    rank = [np.zeros(spec["card"] + 1, dtype=np.int64) for spec in specs]
    for attr, ci, code in attributes:
        rank[ci][code] = rank_of[attr]
    cards = [spec["card"] for spec in specs]

    t0 = time.perf_counter()
    sens = combination_counts(sensitive, cards, rank, max_len)
    syn = combination_counts(synthetic, cards, rank, max_len)
    timings["aggregate_s"] = time.perf_counter() - t0
    official = {}
    for length, (keys, counts) in sens.items():
        keep = counts >= k
        official[length] = (keys[keep], (counts[keep] // k) * k)
    stats = fidelity_stats(official, syn, k)

    base = 1 + max(int(r.max()) for r in rank)
    names = [a[0] for a in ordered]
    entries = []
    for length, (keys, counts) in official.items():
        for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
            entries.append([";".join(names[r] for r in decode_key(key, length, base)), count])

    columns = []
    for spec in specs:
        values = []
        for code in range(1, spec["card"] + 1):
            value = value_name(spec, code)
            attr = f"{spec['id']}:{value}"
            values.append(
                {"code": code, "value": value, "attribute": attr, "rank": rank_of[attr], "labels": {}}
            )
        columns.append(
            {
                "id": spec["id"],
                "source_column": spec["source"],
                "kind": spec["kind"],
                "labels": {"en": spec["id"]},
                "description": "",
                "indicator": bool(spec.get("indicator")),
                "geo": "iso3166-1-alpha2" if spec["id"] in GEO_COLUMNS else None,
                "ordinal": spec["id"] in ORDINAL_COLUMNS,
                "values": values,
            }
        )
    record_count = (n // k) * k
    payload = {
        "meta": {
            "title": "Benchmark release (synthetic, CTDC-shaped)",
            "description": "Generated by bench_explorer.py",
            "dataset_version": "bench",
            "run_id": "bench",
            "created": datetime.now(timezone.utc).isoformat(),
            "pipeline_version": "bench",
            "privacy_mode": "k_anonymity",
            "k": k,
            "L": max_len,
            "dp": None,
            "synthesis_mode": "row_seeded",
            "synthetic_records": n,
            "reportable_record_count": record_count,
            "licence": "",
            "citation": "",
            "languages": ["en", "fr", "es", "de", "ar"],
            "default_language": "en",
            "small_count_threshold": None,
        },
        "columns": columns,
        # The first ten columns (two of them countries: map + bars) with both indicator families, as grouped
        # charts, right after the first two: the charts on screen (and clicked) include a map and both groups.
        "default_columns": [s["id"] for s in specs[:2]]
        + [m for m, _ in MULTI]
        + [s["id"] for s in specs[2:10]],
        "pages": [],
        "groups": [
            {
                "name": source,
                "attributes": [f"{s['id']}:1" for s in specs if s["id"].startswith(source + "_")],
            }
            for source in sorted(INDICATOR_SOURCES)
        ],
        "synthetic": {
            "n": n,
            "columns": {
                spec["id"]: base64.b64encode(synthetic[:, ci].astype("<u2").tobytes()).decode("ascii")
                for ci, spec in enumerate(specs)
            },
        },
        "aggregates": {"record_count": record_count, "entries": entries},
        "stats": stats,
        "downloads": [],
    }
    return payload, timings


CLICK_SCRIPT = """async ({clicks, charts}) => {
  const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const out = [];
  // Click bars in the charts that are on screen (rendered; maps among them re-render on every click too);
  // the others are rendered only when scrolled to.
  const ids = Array.from(document.querySelectorAll('[data-testid="chart"][data-rendered-version]'))
    .filter(c => c.querySelector('[data-testid="bar"]')).slice(0, charts).map(c => c.dataset.visual);
  for (let i = 0; i < clicks; i++) {
    const visual = ids[i % ids.length];
    const bars = document.querySelectorAll(
      '[data-testid="chart"][data-visual="' + CSS.escape(visual) + '"] [data-testid="bar"]');
    const bar = bars[Math.floor(i / ids.length) % Math.min(3, bars.length)];
    const selections = window.__explorer.state().sel.length;
    const t0 = performance.now();
    bar.click();
    const t1 = performance.now();
    await frame();
    const t2 = performance.now();
    out.push({sync_ms: t1 - t0, frame_ms: t2 - t0, selections_before: selections,
              selections_after: window.__explorer.state().sel.length});
  }
  return out;
}"""


def summarize(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
        "min": round(ordered[0], 2),
    }


def measure(index: Path, chromium: str, clicks: int, repeats: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    url = index.as_uri()
    results: dict[str, Any] = {"load": {}, "click": {}}
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1800},  # a large screen: more charts re-render per click
        )
        try:
            for view in ("home", "explore"):
                ready = []
                for _ in range(repeats):
                    page = context.new_page()
                    page.goto(f"{url}?test=1#view={view}", timeout=120000)
                    page.wait_for_function("() => window.__explorerReady === true", timeout=120000)
                    ready.append(page.evaluate("window.__explorerPerf.readyAt"))
                    page.close()
                results["load"][view] = summarize(ready) | {"runs_ms": [round(x, 1) for x in ready]}
            for name, fragment in (("default_columns", "view=explore"), ("all_columns_lazy", None)):
                page = context.new_page()
                page.goto(f"{url}?test=1#view=explore", timeout=120000)
                page.wait_for_function("() => window.__explorerReady === true", timeout=120000)
                page.click('[data-testid="caveats-ack"]')
                page.wait_for_timeout(300)  # let the IntersectionObserver report the charts now on screen
                if fragment is None:  # every visual on the page; only those in view are rendered
                    page.select_option('[data-testid="page-select"]', value="__all__")
                    page.wait_for_function("() => window.__explorer.state().cols !== null")
                    page.wait_for_timeout(300)
                rendered = page.evaluate(
                    "document.querySelectorAll('[data-testid=chart][data-rendered-version]').length"
                )
                total = page.evaluate("document.querySelectorAll('[data-testid=chart]').length")
                kinds = page.evaluate(
                    """() => Array.from(
                        document.querySelectorAll('[data-testid=chart][data-rendered-version]')
                    ).map(c => window.__explorer.model.visualById.get(c.dataset.visual).type)"""
                )
                samples = page.evaluate(CLICK_SCRIPT, {"clicks": clicks, "charts": 6})
                results["click"][name] = {
                    "charts_in_view": total,
                    "charts_rendered_at_start": rendered,
                    "maps_rendered_at_start": kinds.count("map"),
                    "groups_rendered_at_start": kinds.count("group"),
                    "sync_ms": summarize([s["sync_ms"] for s in samples]),
                    "to_next_frame_ms": summarize([s["frame_ms"] for s in samples]),
                    "first_click_sync_ms": round(samples[0]["sync_ms"], 2),
                    "max_selections": max(s["selections_after"] for s in samples),
                    "samples": samples,
                }
                page.close()
        finally:
            context.close()
    return results


def find_chromium(explicit: str | None) -> str:
    for candidate in (
        explicit,
        os.environ.get("CTDC_CHROMIUM"),
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("Chromium not found: install it (apt-get install chromium) or pass --chromium PATH")


def write_report(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "explorer.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    d = report["dataset"]
    load = report["measurements"]["load"]
    click = report["measurements"]["click"]
    lines = [
        "# Explorer benchmark",
        "",
        f"Generated by `scripts/bench_explorer.py` on {report['generated']} ({report['machine']['cpu']}, "
        f"{report['machine']['cores']} cores; {report['machine']['chromium']}, headless).",
        "Reported, not asserted. Targets (EXPLORER.md M1/M22): load <= 3000 ms, <= 100 ms per click.",
        "",
        "## Dataset",
        "",
        f"- {d['records']:,} synthetic records x {d['columns']} attribute columns "
        f"({d['attributes']:,} attributes), "
        f"k = {d['k']}, L = {d['L']}",
        f"- {d['aggregate_keys']:,} reportable aggregate keys; explorer file {d['html_mb']:.1f} MB, "
        f"of which the page's script {d['script_kb']:.0f} kB (with the world map's geometry)",
        f"- build_explorer (validate + compile + write): {d['build_s']:.1f} s; "
        f"data generation {d['generate_s']:.1f} s, aggregation {d['aggregate_s']:.1f} s",
        "",
        "## Load: navigation start to ready (ms)",
        "",
        "| view | median | min | max |",
        "|---|---:|---:|---:|",
    ]
    for view, s in load.items():
        lines.append(f"| {view} | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} |")
    lines += [
        "",
        "## Per click in Explore (ms)",
        "",
        "`sync` = click handler: counting, official lookups and DOM update; `frame` = click to the next "
        "animation frame (adds style, layout and paint).",
        "",
        "| grid | charts (rendered at start: maps, groups) | sync median | sync p95 | sync max "
        "| frame median | frame p95 | frame max | first click sync |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in click.items():
        lines.append(
            f"| {name} | {c['charts_in_view']} ({c['charts_rendered_at_start']}: "
            f"{c['maps_rendered_at_start']} maps, {c['groups_rendered_at_start']} groups) "
            f"| {c['sync_ms']['median']:.1f} | {c['sync_ms']['p95']:.1f} | {c['sync_ms']['max']:.1f} "
            f"| {c['to_next_frame_ms']['median']:.1f} | {c['to_next_frame_ms']['p95']:.1f} "
            f"| {c['to_next_frame_ms']['max']:.1f} | {c['first_click_sync_ms']:.1f} |"
        )
    lines += [
        "",
        f"Clicks per grid: {report['params']['clicks']}, up to "
        f"{max(c['max_selections'] for c in click.values())} simultaneous filters; every click "
        "re-renders the charts on screen, maps included.",
        "",
    ]
    (out / "explorer.md").write_text("\n".join(lines), encoding="utf-8")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=60)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--L", type=int, default=3, dest="max_len")
    parser.add_argument("--seed", type=int, default=20250301)
    parser.add_argument("--clicks", type=int, default=36)
    parser.add_argument("--repeats", type=int, default=3, help="page loads per view")
    parser.add_argument("--chromium", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    parser.add_argument("--keep-html", action="store_true", help="keep the built explorer under OUT/tmp/")
    parser.add_argument(
        "--payload-cache",
        type=Path,
        default=None,
        help="JSON file: reuse the generated payload if it exists, else write it (speeds up UI iterations)",
    )
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if args.payload_cache and args.payload_cache.exists():
        cached = json.loads(args.payload_cache.read_text(encoding="utf-8"))
        payload, timings = cached["payload"], cached["timings"]
    else:
        payload, timings = build_payload(args.records, args.columns, args.k, args.max_len, args.seed)
        if args.payload_cache:
            args.payload_cache.write_text(
                json.dumps({"payload": payload, "timings": timings}), encoding="utf-8"
            )
    with tempfile.TemporaryDirectory() as tmp:
        target = args.out / "tmp" if args.keep_html else Path(tmp)
        t0 = time.perf_counter()
        index = build_explorer(payload, target / "explorer").resolve()
        build_s = time.perf_counter() - t0
        measurements = measure(index, chromium, args.clicks, args.repeats)
        html_mb = index.stat().st_size / 1e6
    try:
        chromium_version = subprocess.run(
            [chromium, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        chromium_version = ""
    report = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "params": {
            "records": args.records,
            "columns": args.columns,
            "k": args.k,
            "L": args.max_len,
            "seed": args.seed,
            "clicks": args.clicks,
            "repeats": args.repeats,
        },
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "chromium": chromium_version.strip(),
        },
        "dataset": {
            "records": args.records,
            "columns": args.columns,
            "attributes": sum(len(c["values"]) for c in payload["columns"]),
            "k": args.k,
            "L": args.max_len,
            "aggregate_keys": len(payload["aggregates"]["entries"]),
            "html_mb": round(html_mb, 2),
            "script_kb": round(SCRIPT_BYTES / 1e3, 1),
            "build_s": round(build_s, 2),
            **{key: round(v, 2) for key, v in timings.items()},
        },
        "measurements": measurements,
    }
    write_report(args.out, report)
    print((args.out / "explorer.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
