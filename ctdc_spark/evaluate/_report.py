"""Plain-language statements and the offline HTML evaluation report (pure Python, no Spark).

The four SDS statements (sensitive privacy, aggregate utility, synthetic privacy, synthetic
utility) exist twice: a private version that quotes sensitive-referenced metrics, for the report
under ``private/``, and a public version computed only from the synthetic data and the official
(reportable) counts, for ``evaluation.json`` (docs/architecture.md 7, docs/explorer.md M3/M15).

The report is one self-contained HTML file: inline CSS, inline SVG charts, no script and no
network access, so it opens from ``file://`` on an offline machine.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ctdc_spark.evaluate.stats import Stats

_CHART_WIDTH = 640
_CHART_HEIGHT = 280
_MARGIN = {"left": 56, "right": 56, "top": 36, "bottom": 44}
_BAR_COLOUR = "#8fb3d9"
_LINE_COLOURS = ("#1b5e20", "#b71c1c", "#4a148c")


@dataclass(frozen=True)
class Statement:
    """One plain-language statement."""

    id: str
    title: str
    text: str

    def as_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"id": self.id, "title": self.title, "text": self.text}


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def public_statements(
    *, k: int, max_length: int, guarantee: str, stats: Stats, synthetic_records: int
) -> list[Statement]:
    """The four statements of the public ``evaluation.json``, from public numbers only.

    Args:
        k: Resolution.
        max_length: L.
        guarantee: The verified guarantee kind (``k-synthetic`` or ``k-anonymous-combinations``).
        stats: The public statistics.
        synthetic_records: Number of synthetic records.
    """
    dp = guarantee == "dp-aggregates"
    if dp:
        synthetic_privacy = (
            "The synthetic records were generated from the differentially private official counts "
            "alone, never from the original records, so they carry the same protection. Every "
            f"combination of up to {max_length} characteristics in them is among the official counts."
        )
    elif guarantee == "k-synthetic":
        synthetic_privacy = (
            "The synthetic records are generated, not copied. Every combination of characteristics in "
            f"them is shared by at least {k} people in the original data, so no synthetic record "
            f"points to a real person or to a group smaller than {k}. This was checked for all "
            f"{synthetic_records:,} synthetic records before release."
        )
    else:
        synthetic_privacy = (
            f"Every combination of up to {max_length} characteristics in the synthetic records is "
            f"among the official counts, so it is shared by at least {k} people. Longer combinations "
            "were generated from the official counts alone and may not describe anyone."
        )
    first = next((r for r in stats.by_length if r.length == 1), None)
    overall = stats.overall
    mpe = overall.mean_proportional_error
    if dp:
        official_privacy = Statement(
            "official_privacy",
            "Official counts are differentially private",
            "Calibrated random noise was added to every official count, and counts that were small after "
            "noise were withheld, so the release reveals almost nothing about whether any one person's "
            f"record was in the data. Combinations of more than {max_length} characteristics are not "
            "published.",
        )
        rounding = "Official counts themselves carry random noise."
    else:
        official_privacy = Statement(
            "official_privacy",
            "No small groups are published",
            f"Every official count describes at least {k} people and is rounded down to a multiple "
            f"of {k}. Groups smaller than {k} and combinations of more than {max_length} "
            "characteristics are not published.",
        )
        rounding = f"Official counts are themselves rounded down by up to {k - 1}."
    return [
        official_privacy,
        Statement("synthetic_privacy", "No synthetic record is a real person", synthetic_privacy),
        Statement(
            "synthetic_accuracy",
            "How close synthetic counts are to official counts",
            "Compared with the official counts, counts taken from the synthetic records differ by "
            f"{_num(first.mean_abs_error if first else None)} on average for single characteristics "
            f"and by {_num(overall.mean_abs_error)} for combinations of up to {max_length} "
            f"characteristics ({_num(None if mpe is None else 100 * mpe, 0)}% of the official count "
            f"on average). {rounding}",
        ),
        Statement(
            "synthetic_coverage",
            "How much of the official picture is kept",
            f"{_num(overall.coverage_pct)}% of the official combinations of up to {max_length} "
            "characteristics also appear in the synthetic records. "
            f"{_num(overall.not_in_official_pct)}% of the combinations found in the synthetic "
            "records are not among the official counts: "
            + (
                "they were withheld or do not exist"
                if dp
                else f"they describe fewer than {k} people, or none"
            )
            + ", so counts based on them are not reliable.",
        ),
    ]


def private_statements(evaluation: Mapping[str, Any]) -> list[Statement]:
    """SDS's four evaluation statements with the sensitive-referenced numbers (private).

    Args:
        evaluation: The private evaluation (``evaluation_private.json`` content, without statements).
    """
    params = evaluation["parameters"]
    k, max_length = params["k"], params["L"]
    risk = evaluation["records_analysis"]["summary"]
    aggregates = evaluation["reportable_vs_sensitive"]
    synthetic = evaluation["synthetic_vs_sensitive"]
    check = evaluation["verification"]
    expansion = synthetic["record_expansion_pct"]
    if check["type"] == "k-synthetic":
        guarantee = (
            f"Every synthetic record's full combination of characteristics is shared by at least {k} "
            f"people in the original data: checked for all {check['checked_records']:,} non-empty "
            f"synthetic records; the smallest such group has {check['minimum_support']} people."
        )
    else:
        guarantee = (
            f"Every combination of up to {max_length} characteristics in the synthetic records is an "
            f"official combination (checked for all {check['checked_records']:,} non-empty records); the "
            f"smallest such group has {check['minimum_support']} people. Longer combinations may not "
            "exist in the original data."
        )
    return [
        Statement(
            "sensitive_privacy",
            "Sensitive data privacy",
            f"In the original data, {risk['risky_identifiable_pct']:.1f}% of the records "
            f"({risk['risky_identifiable']:,} of {risk['total_sensitive_records']:,}) could single out a "
            f"person: each has a combination of up to {max_length} characteristics shared by fewer "
            f"than {k} people ({risk['unique_identifiable']:,} of them by nobody else). Record counts "
            f"are rounded down to multiples of {k}.",
        ),
        Statement(
            "aggregate_utility",
            "Aggregate data utility",
            f"The official counts keep {100 - aggregates['suppressed_pct']:.1f}% of the distinct "
            f"combinations of up to {max_length} characteristics in the original data; the other "
            f"{aggregates['suppressed_pct']:.1f}% are shared by fewer than {k} people and are withheld. "
            "Kept counts are rounded down, on average by "
            f"{aggregates['mean_abs_error']:.2f} (the average true count is {aggregates['mean_value']:.2f}).",
        ),
        Statement(
            "synthetic_privacy",
            "Synthetic data privacy",
            f"{guarantee} {evaluation['leakage']['total']:,} combinations that fewer than {k} people "
            f"share in the original data also appear in fewer than {k} synthetic records "
            "(leakage; 0 is expected).",
        ),
        Statement(
            "synthetic_utility",
            "Synthetic data utility",
            "Counts taken from the synthetic records differ from the true counts by "
            f"{100 * evaluation['preservation']['mean_proportional_error']:.1f}% on average (mean "
            "proportional error over count ranges). "
            f"{synthetic['suppressed_pct']:.1f}% of the original combinations are missing from the "
            f"synthetic data (mostly rare ones) and {synthetic['fabricated_pct']:.1f}% of the synthetic "
            "combinations do not occur in the original data. There are "
            f"{abs(expansion):.1f}% {'more' if expansion >= 0 else 'fewer'} synthetic than original records.",
        ),
    ]


@dataclass(frozen=True)
class Series:
    """A line drawn over the bars, on its own 0..``maximum`` scale (right axis)."""

    label: str
    values: Sequence[float | None]
    maximum: float = 1.0


def _svg_text(x: float, y: float, text: str, *, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}">{html.escape(text)}</text>'
    )


def bar_line_chart(
    title: str, categories: Sequence[str], bars: Sequence[float], bar_label: str, lines: Sequence[Series] = ()
) -> str:
    """An inline SVG chart: bars on the left axis, lines (e.g. proportions) on the right axis.

    Values are written on the bars and points with 2 decimals, as SDS's charts do.

    Returns:
        An ``<svg>`` element with ``role="img"`` and an ``aria-label``.
    """
    width, height, m = _CHART_WIDTH, _CHART_HEIGHT, _MARGIN
    plot_w = width - m["left"] - m["right"]
    plot_h = height - m["top"] - m["bottom"]
    n = max(1, len(categories))
    slot = plot_w / n
    top = max([*bars, 0.0]) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(title)}">',
        _svg_text(width / 2, 20, title, size=13),
        f'<line x1="{m["left"]}" y1="{m["top"] + plot_h}" x2="{m["left"] + plot_w}" '
        f'y2="{m["top"] + plot_h}" stroke="#444"/>',
    ]
    for i, (name, value) in enumerate(zip(categories, bars, strict=True)):
        bar_h = plot_h * value / top
        x = m["left"] + i * slot + slot * 0.2
        y = m["top"] + plot_h - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.6:.1f}" height="{bar_h:.1f}" '
            f'fill="{_BAR_COLOUR}"/>'
        )
        parts.append(_svg_text(x + slot * 0.3, y - 4, f"{value:.2f}", size=10))
        parts.append(_svg_text(m["left"] + (i + 0.5) * slot, m["top"] + plot_h + 16, name))
    for series, colour in zip(lines, _LINE_COLOURS, strict=False):
        scale = series.maximum or 1.0
        points = [
            (m["left"] + (i + 0.5) * slot, m["top"] + plot_h * (1 - min(v, scale) / scale))
            for i, v in enumerate(series.values)
            if v is not None
        ]
        if points:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y), v in zip(points, [v for v in series.values if v is not None], strict=True):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
            parts.append(_svg_text(x + 14, y - 6, f"{v:.2f}", size=10))
    legend_y = height - 8
    parts.append(f'<rect x="{m["left"]}" y="{legend_y - 9}" width="10" height="10" fill="{_BAR_COLOUR}"/>')
    parts.append(_svg_text(m["left"] + 14, legend_y, bar_label, anchor="start", size=10))
    # Legend entries are laid out by text length (~6 px per character at font size 10).
    x = m["left"] + 30 + 6 * len(bar_label)
    for series, colour in zip(lines, _LINE_COLOURS, strict=False):
        label = f"{series.label} (right axis, 0-{series.maximum:g})"
        parts.append(
            f'<line x1="{x}" y1="{legend_y - 4}" x2="{x + 14}" y2="{legend_y - 4}" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        parts.append(_svg_text(x + 18, legend_y, label, anchor="start", size=10))
        x += 34 + 6 * len(label)
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:,.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        return f"<td>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# No script, no network: the report must open offline from file:// and fetch nothing.
_CSP = "default-src 'none'; style-src 'unsafe-inline'"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:60rem;
color:#1a1a1a;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
.banner{background:#fff3e0;border:1px solid #e65100;padding:.6rem 1rem;border-radius:4px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:1rem}
.card{border:1px solid #ccc;border-radius:6px;padding:.8rem 1rem;background:#fafafa}
.card h3{margin:.2rem 0 .4rem;font-size:1rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}th{background:#eee}
svg{max-width:100%;height:auto;display:block;margin:.6rem 0}
.ok{color:#1b5e20;font-weight:600}.fail{color:#b71c1c;font-weight:600}
"""


def render_report(evaluation: Mapping[str, Any], public: Stats) -> str:
    """The private, self-contained HTML evaluation report.

    Args:
        evaluation: The ``evaluation_private.json`` content.
        public: The public statistics (``evaluation["public_stats"]``, typed).

    Returns:
        The HTML document.
    """
    params = evaluation["parameters"]
    check = evaluation["verification"]
    pres = evaluation["preservation"]
    leakage = evaluation["leakage"]["by_length"]
    esc = html.escape
    cards = "".join(
        f'<div class="card"><h3>{esc(s["title"])}</h3><p>{esc(s["text"])}</p></div>'
        for s in evaluation["statements"]
    )
    verdict = '<span class="ok">verified</span>' if check["verified"] else '<span class="fail">FAILED</span>'
    by_length = pres["by_length"]
    by_bucket = list(reversed(pres["by_bucket"]))
    sections = [
        f"<h1>Synthetic data evaluation: run {esc(str(evaluation['run_id']))}</h1>",
        '<p class="banner"><strong>Private.</strong> This report is computed from the confidential '
        "records and their exact counts. Never publish it; the public evaluation is evaluation.json.</p>",
        _table(
            [
                "k (resolution)",
                "L (reporting length)",
                "synthesis mode",
                "sensitive records",
                "synthetic records",
            ],
            [
                [
                    params["k"],
                    params["L"],
                    params["synthesis_mode"],
                    params["sensitive_records"],
                    params["synthetic_records"],
                ]
            ],
        ),
        "<h2>Summary</h2>",
        f'<div class="cards">{cards}</div>',
        f"<h2>Privacy guarantee: {verdict}</h2>",
        f"<p>{esc(check['statement'])}.</p>",
        _table(
            ["checked records", "violating records", "minimum support"],
            [[check["checked_records"], check["violating_records"], check["minimum_support"]]],
        ),
        "<h2>Preservation by combination length</h2>",
        bar_line_chart(
            "Mean synthetic count and count preservation by length",
            [str(r["length"]) for r in by_length],
            [r["mean_combo_count"] for r in by_length],
            "Mean synthetic count",
            [Series("Count preservation", [r["count_preservation"] for r in by_length])],
        ),
        _table(
            [
                "length",
                "combinations",
                "mean synthetic count",
                "count preservation",
                "mean proportional error",
            ],
            [
                [
                    r["length"],
                    r["combinations"],
                    r["mean_combo_count"],
                    r["count_preservation"],
                    r["mean_proportional_error"],
                ]
                for r in by_length
            ],
        ),
        "<h2>Preservation by synthetic count bucket</h2>",
        f"<p>Mean proportional error (MPE) over all buckets: {pres['mean_proportional_error']:.4f}.</p>",
        bar_line_chart(
            "Mean combination length, preservation and error by synthetic count bucket",
            [f"\u2264{r['bucket']}" for r in by_bucket],
            [r["mean_combo_length"] for r in by_bucket],
            "Mean combination length",
            [
                Series("Count preservation", [r["count_preservation"] for r in by_bucket]),
                # Proportional errors can exceed 1 (synthetic counts above twice the true count).
                Series(
                    "Proportional error",
                    [r["mean_proportional_error"] for r in by_bucket],
                    max([1.0, *(r["mean_proportional_error"] for r in by_bucket)]),
                ),
            ],
        ),
        _table(
            [
                "bucket (synthetic count \u2264)",
                "combinations",
                "mean synthetic count",
                "mean length",
                "count preservation",
                "mean proportional error",
            ],
            [
                [
                    r["bucket"],
                    r["combinations"],
                    r["mean_combo_count"],
                    r["mean_combo_length"],
                    r["count_preservation"],
                    r["mean_proportional_error"],
                ]
                for r in by_bucket
            ],
        ),
        "<h2>Leakage by length</h2>",
        bar_line_chart(
            "Synthetic combinations and leaked rare combinations by length",
            [str(r["length"]) for r in leakage],
            [float(r["synthetic_combinations"]) for r in leakage],
            "Synthetic combinations",
            [Series("Leak proportion", [r["leak_proportion"] for r in leakage])],
        ),
        _table(
            ["length", "synthetic combinations", "leaked", "proportion"],
            [[r["length"], r["synthetic_combinations"], r["leaks"], r["leak_proportion"]] for r in leakage],
        ),
        "<h2>Counts compared with the confidential data</h2>",
        _comparison_table(evaluation),
        "<h2>Records at risk in the confidential data</h2>",
        _table(
            ["length", "unique records", "rare records", "risky records", "risky %"],
            [
                [r["length"], r["unique"], r["rare"], r["risky"], r["risky_pct"]]
                for r in evaluation["records_analysis"]["by_length"]
            ],
        ),
        "<h2>Measured attack risk</h2>",
        _attacks_section(evaluation["attacks"]),
        "<h2>Synthetic counts compared with the official counts (public numbers)</h2>",
        bar_line_chart(
            "Official combinations and coverage by the synthetic data",
            [str(r.length) for r in public.by_length],
            [float(r.official_combinations) for r in public.by_length],
            "Official combinations",
            [Series("Coverage %", [r.coverage_pct for r in public.by_length], 100.0)],
        ),
        bar_line_chart(
            "Proportional error by official count bucket",
            [f"{b.low}-{b.high}" for b in public.by_bucket],
            [float(b.combinations) for b in public.by_bucket],
            "Official combinations",
            [Series("Mean proportional error", [b.mean_proportional_error for b in public.by_bucket])],
        ),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>Evaluation report {esc(str(evaluation['run_id']))}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def _comparison_table(evaluation: Mapping[str, Any]) -> str:
    syn = evaluation["synthetic_vs_sensitive"]
    rep = evaluation["reportable_vs_sensitive"]
    rows: list[list[Any]] = [
        ["suppressed combinations %", syn["suppressed_pct"], rep["suppressed_pct"]],
        ["fabricated combinations %", syn["fabricated_pct"], rep["fabricated_pct"]],
    ]
    for s, r in zip(syn["by_length"], rep["by_length"], strict=True):
        rows.append(
            [
                f"{s['length']}-counts mean value +/- mean error",
                f"{s['mean_value']:.2f} +/- {s['mean_abs_error']:.2f}",
                f"{r['mean_value']:.2f} +/- {r['mean_abs_error']:.2f}",
            ]
        )
    rows.append(
        [
            "mean value +/- mean error",
            f"{syn['mean_value']:.2f} +/- {syn['mean_abs_error']:.2f}",
            f"{rep['mean_value']:.2f} +/- {rep['mean_abs_error']:.2f}",
        ]
    )
    rows.append(["record expansion %", syn["record_expansion_pct"], ""])
    rows.append(
        ["mean proportional error %", 100 * evaluation["preservation"]["mean_proportional_error"], ""]
    )
    return _table(["metric", "synthetic data", "official counts"], rows)


def _attacks_section(attacks: Mapping[str, Any]) -> str:
    """The attack table (risk, interval and the three success rates), or why the attacks did not run."""
    esc = html.escape
    if attacks.get("status") != "run":
        install = attacks.get("install")
        hint = f" Install: <code>{esc(install)}</code>" if install else ""
        return f"<p>Not measured: {esc(str(attacks.get('reason')))}{hint}</p>"
    limit = attacks["max_risk"]
    intro = (
        "<p>anonymeter's attacks, with the synthetic records as the attacker's knowledge, against "
        f"{attacks['training_records']:,} records synthesis used and {attacks['control_records']:,} "
        "held-out control records. Risk = (attack rate - control rate) / (1 - control rate), with its "
        f"95% interval; the run fails when a lower bound exceeds {limit:g}. A baseline (random guessing) "
        "close to the attack rate means the attack learnt nothing from the synthetic records.</p>"
    )
    rows = []
    for name, a in attacks["attacks"].items():
        verdict = '<span class="fail">above limit</span>' if a["ci"][0] > limit else "ok"
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{cell}</td>"
                for cell in (
                    esc(name),
                    esc(a["explanation"]),
                    f"{a['risk']:.3f}",
                    f"[{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]",
                    f"{a['attack_rate']:.3f}",
                    f"{a['baseline_rate']:.3f}",
                    f"{a['control_rate']:.3f}",
                    f"{a['n_attacks']:,}",
                    verdict,
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "attack",
            "what it tries",
            "risk",
            "95% interval",
            "attack rate",
            "baseline rate",
            "control rate",
            "attacks",
            "",
        )
    )
    return f"{intro}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
