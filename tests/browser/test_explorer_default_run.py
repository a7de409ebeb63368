"""End to end: the README's first command on the embedded default, then its explorer checked against
the released files (issue: explorer acceptance, "an explorer built from the embedded default run").

The run goes through ``scripts/dev.sh run`` exactly as the README says (with the output redirected to
a temporary folder), so this also proves the quickstart command. Random selections of up to L - 1
values are opened in the page and every bar is checked: official counts against
``reportable_aggregates.tsv`` (or the "< k" / "not available" state), synthetic counts against
``synthetic_microdata.csv``.
"""

from __future__ import annotations

import csv
import os
import random
import re
import subprocess
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ctdc_spark.io.files import verify_bundle
from tests import oracle
from tests.conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SELECTIONS = 12


@pytest.fixture(scope="module")
def default_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("default_run")
    env = {**os.environ, "PYTHON": str(Path(REPO / ".venv/bin/python"))}
    proc = subprocess.run(
        [str(REPO / "scripts/dev.sh"), "run", "--set", f"output.root={out}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r"^release bundle: (.+)$", proc.stdout, re.MULTILINE)
    assert match, proc.stdout
    bundle = Path(match.group(1))
    assert bundle.parent == out / "release"
    return bundle


def test_quickstart_writes_a_complete_verified_bundle(default_release: Path) -> None:
    names = {p.name for p in default_release.iterdir()}
    assert {
        "reportable_aggregates.tsv",
        "reportable_aggregates.csv",
        "synthetic_microdata.csv",
        "evaluation.json",
        "metadata.json",
        "explorer",
        "SHA256SUMS",
    } <= names
    assert verify_bundle(default_release) == []
    assert (default_release.parent / "latest").resolve() == default_release.resolve()
    assert not any(
        p.name.startswith(("sensitive", "risk", "evaluation_private")) for p in default_release.rglob("*")
    )


def _official(tsv: Path) -> tuple[int, dict[str, int]]:
    lines = tsv.read_text(encoding="utf-8").splitlines()
    counts = dict(line.split("\t") for line in lines[2:])
    return int(lines[1].split("\t")[1]), {k: int(v) for k, v in counts.items()}


def _synthetic(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(encoding="utf-8", newline="") as handle:
        return [{c: v for c, v in row.items() if v} for row in csv.DictReader(handle)]


def test_random_selections_match_the_released_files(default_release: Path, open_explorer: Any) -> None:
    meta = __import__("json").loads((default_release / "metadata.json").read_text())
    k, length = meta["release"]["k"], meta["release"]["reporting_length"]
    _, official = _official(default_release / "reportable_aggregates.tsv")
    rows = _synthetic(default_release / "synthetic_microdata.csv")
    records = [{f"{c}:{v}" for c, v in row.items()} for row in rows]
    rng = random.Random(20261121)
    page = open_explorer((default_release / "explorer/index.html").as_uri())
    columns = sorted({c for row in rows for c in row})
    checked = Counter()
    for _ in range(SELECTIONS):
        # Selections are drawn from a synthetic record, so they are combinations that occur.
        donor = rng.choice([r for r in rows if len(r) >= length - 1])
        size = rng.randint(0, length - 1)
        selection = [f"{c}:{donor[c]}" for c in rng.sample(sorted(donor), size)]
        fragment = urllib.parse.urlencode(
            [("view", "explore"), *[("s", a) for a in selection], *[("cols", c) for c in columns]]
        )
        page.go(fragment)
        page.render_all()
        bars = page.bars()
        assert bars, f"no bars rendered for a selection of {size}"
        for bar in bars:
            column, value = bar["col"], bar["val"]
            others = [a for a in selection if oracle.column_of(a) != column]
            key = [*others, f"{column}:{value}"]
            assert int(bar["syn"]) == oracle.support(records, key), (bar["col"], size)
            if len(key) > length:
                assert bar["state"] == "na"
            elif oracle.combination_string(key) in official:
                assert bar["state"] == "value" and int(bar["agg"]) == official[oracle.combination_string(key)]
            else:
                assert bar["state"] == "lt_k" and bar["agg"] == ""
            checked[bar["state"]] += 1
    page.assert_clean()
    assert checked["value"] > 0 and k > 0


# For the current page language: every place that shows a text the codebook translates, and what it shows.
# Returns the mismatches (an English or raw text where the payload has a translation).
TRANSLATION_MISMATCHES = """(lang) => {
    const m = window.__explorer.model;
    const strip = (s) => s.replace(/[\\u2066-\\u2069]/g, '').trim();
    const bad = [];
    const want = (where, shown, labels) => {
        if (labels && labels[lang] && strip(shown) !== labels[lang]) {
            bad.push([where, strip(shown), labels[lang]]);
        }
    };
    const regions = new Intl.DisplayNames([lang], {type: 'region'});
    document.querySelectorAll('[data-testid="chart"]').forEach(chart => {
        const v = m.visualById.get(chart.dataset.visual);
        const title = chart.querySelector('.chart-title').textContent;
        if (v.type === 'group') want('title ' + v.id, title, v.labels);
        else if (v.type === 'column') want('title ' + v.id, title, m.columns[v.column].labels);
    });
    document.querySelectorAll('[data-testid="bar"]').forEach(bar => {
        const a = m.attrs[m.attrById.get(bar.dataset.attr)];
        const col = m.columns[a.col];
        const label = bar.querySelector('.bar-label').textContent.replace('✓ ', '');
        if (col.geo) {
            const name = regions.of(a.value);
            if (strip(label) !== name) bad.push(['country ' + a.id, strip(label), name]);
        } else if (col.kind === 'single' && !col.indicator && bar.dataset.visual === col.id) {
            want('value ' + a.id, label, col.values[a.vi].labels);
        }
        if (strip(label) === '1') bad.push(['raw indicator value', a.id, '']);
    });
    return bad;
}"""


def test_every_language_is_translated_grouped_and_accessible(
    default_release: Path, open_explorer: Any, axe_source: str
) -> None:
    page = open_explorer((default_release / "explorer/index.html").as_uri())
    languages = page.page.evaluate("window.__explorer.model.meta.languages")
    assert set(languages) == {"ar", "en", "fr", "de", "es"}
    model = __import__("json").loads(page.page.text_content("#explorer-data"))
    ordinal = [c for c in model["columns"] if c["ordinal"]]
    for lang in languages:
        page.go(f"view=explore&lang={lang}")
        page.render_all()
        assert page.page.evaluate(TRANSLATION_MISMATCHES, lang) == [], lang
        visuals = page.page.eval_on_selector_all(
            '[data-testid="chart"]', "els => els.map(e => e.dataset.visual)"
        )
        # Default page: indicator families as grouped charts (no one-bar indicator chart), a world map.
        assert any(v.startswith("group:") for v in visuals), lang
        assert not {c["id"] for c in model["columns"] if c["indicator"]} & set(visuals), lang
        assert any(v.startswith("map:") for v in visuals), lang
        for column in ordinal:  # natural order, not count order
            shown = [b["val"] for b in page.bars(column["id"])]
            if shown:
                assert shown == [v["value"] for v in column["values"]][: len(shown)], (lang, column["id"])
        page.page.evaluate(axe_source)
        for view in ("explore", "home", "downloads"):
            page.go(f"view={view}&lang={lang}")
            page.render_all()
            if view == "downloads":
                shown = page.page.eval_on_selector_all(
                    '[data-testid="download-description"]', "els => els.map(e => e.textContent)"
                )
                expected = [
                    page.page.evaluate(f"window.__explorer.t({lang!r}, 'download_' + {d['kind']!r})")
                    for d in model["downloads"]
                ]
                assert shown == expected, lang
            violations = page.page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                    .filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id)"""
            )
            assert violations == [], (lang, view, violations)
    page.assert_clean()
