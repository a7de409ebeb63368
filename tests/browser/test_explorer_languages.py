"""The explorer in all five languages, its Arabic bidi, the world map and contract-v2 charts (issue: "only the
interface is translated").

Translations come from ``explorer_fixture`` (every label in en, fr, es, de, ar); a text counts as English in
another language when it equals the English page's text at the same place although the fixture gives that
place a different translation.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import pytest
from explorer_fixture import (
    CONTROL_GROUP,
    CONTROLS,
    GROUP_LABELS,
    INDICATOR_LABELS,
    LABELS,
    LANGUAGES,
    TITLES,
    VALUE_LABELS,
    Fixture,
)

pytestmark = pytest.mark.browser

LRI, RLI, PDI, WJ, NBSP = "\u2066", "\u2067", "\u2069", "\u2060", "\u00a0"
ISOLATES = re.compile("[\u2066-\u2069]")
CONTROL_VISUAL = f"group:{CONTROL_GROUP}"

# Every translatable text the page shows, keyed by where it is: chart titles, bar labels, page names, the
# dataset card and the downloads table.
COLLECT_TEXTS = """() => {
    const out = {};
    const put = (key, el) => { if (el) out[key] = el.textContent.replace(/[\\u2066-\\u2069]/g, '').trim(); };
    document.querySelectorAll('[data-testid="chart"]').forEach(
        c => put('title|' + c.dataset.visual, c.querySelector('.chart-title')));
    document.querySelectorAll('[data-testid="bar"]').forEach(
        b => put('bar|' + b.dataset.visual + '|' + b.dataset.attr, b.querySelector('.bar-label')));
    document.querySelectorAll('[data-testid="page-select"] option').forEach(
        o => { if (o.value) put('page|' + o.value, o); });
    put('dataset|title', document.querySelector('.brand-title'));
    put('dataset|description', document.querySelector('[data-testid="dataset-description"]'));
    document.querySelectorAll('[data-testid="download-description"]').forEach(
        d => put('download|' + d.closest('tr').dataset.download, d));
    put('dataset|licence', document.querySelector('[data-testid="licence"]'));
    put('dataset|citation', document.querySelector('[data-testid="release-citation"]'));
    return out;
}"""


def _fragment(view: str, lang: str, **extra: str) -> str:
    return urllib.parse.urlencode([("view", view), ("lang", lang), *extra.items()])


def _all_visuals(release: Fixture) -> str:
    return "&".join("cols=" + urllib.parse.quote(v["id"]) for v in release.model()["visuals"])


def _texts(open_explorer: Any, release: Fixture, lang: str) -> dict[str, str]:
    texts: dict[str, str] = {}
    page = open_explorer(release.url, _fragment("explore", lang) + "&" + _all_visuals(release))
    page.render_all()
    texts.update(page.page.evaluate(COLLECT_TEXTS))
    for view in ("home", "downloads"):
        page.go(_fragment(view, lang))
        texts.update(page.page.evaluate(COLLECT_TEXTS))
    page.assert_clean()
    return texts


def _same_in_both(lang: str, release: Fixture) -> set[str]:
    """Texts shown alike in English and `lang`: translated alike ("Nepal" in German), or not translated."""
    maps = [
        TITLES,
        *LABELS.values(),
        *VALUE_LABELS.values(),
        *INDICATOR_LABELS.values(),
        *GROUP_LABELS.values(),
    ]
    maps += [p["labels"] for p in release.payload["pages"]]
    maps += [release.payload["meta"][key] for key in ("licence", "citation", "description")]
    untranslated_values = {  # values the codebook gives no label for are shown as they are in every language
        v["value"]
        for c in release.payload["columns"]
        if c["kind"] == "single" and not c.get("indicator") and not c.get("geo")
        for v in c["values"]
        if lang not in v["labels"]
    }
    return {m["en"] for m in maps if m.get(lang) == m["en"]} | untranslated_values


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_no_english_where_a_translation_exists(release: Fixture, open_explorer: Any, lang: str) -> None:
    english = _texts(open_explorer, release, "en")
    translated = _texts(open_explorer, release, lang)
    assert translated.keys() == english.keys()
    same = _same_in_both(lang, release)
    page = open_explorer(release.url, _fragment("home", lang))
    # Country names come from the browser; some are spelt alike (Nepal): those may match English.
    same |= set(
        page.page.evaluate(
            """(lang) => ['NP', 'CI', 'IN', 'BD', 'PH', 'NG', 'TH', 'VN', 'KH']
                .map(c => [new Intl.DisplayNames(['en'], {type: 'region'}).of(c),
                           new Intl.DisplayNames([lang], {type: 'region'}).of(c)])
                .filter(([en, other]) => en === other).map(([en]) => en)""",
            lang,
        )
    )
    untranslated = {
        key: text
        for key, text in translated.items()
        if text == english[key] and re.search(r"[^\W\d_]", text) and text not in same
    }
    assert untranslated == {}
    # Downloads describe their kind in the page language, from the string table.
    for key, text in translated.items():
        if key.startswith("download|"):
            kind = next(d["kind"] for d in release.payload["downloads"] if d["name"] == key.split("|", 1)[1])
            assert text == ISOLATES.sub(
                "", page.page.evaluate(f"window.__explorer.t({lang!r}, 'download_{kind}')")
            )
    page.assert_clean()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_axe_finds_no_serious_violations_in_every_language(
    release: Fixture, open_explorer: Any, axe_source: str, lang: str
) -> None:
    page = open_explorer(release.url, _fragment("explore", lang, s="Gender:Female"))
    for view in ("explore", "home", "downloads", "privacy"):
        page.go(_fragment(view, lang, s="Gender:Female"))
        page.render_all()
        page.page.evaluate(axe_source)
        result = page.page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(
                v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})
            )"""
        )
        serious = [v for v in result if v["impact"] in ("serious", "critical")]
        assert serious == [], (view, serious)
    page.assert_clean()


def _rects(page: Any, selector: str, *needles: str) -> list[dict[str, float]]:
    """Layout boxes of the last occurrence of each needle in the text under `selector` (no pixels read)."""
    return page.page.evaluate(  # type: ignore[no-any-return]
        """([selector, needles]) => {
            const root = document.querySelector(selector);
            return needles.map(needle => {
                const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    const at = node.data.lastIndexOf(needle);
                    if (at < 0) continue;
                    const range = document.createRange();
                    range.setStart(node, at);
                    range.setEnd(node, at + needle.length);
                    const box = range.getBoundingClientRect();
                    return {left: box.left, right: box.right, top: box.top};
                }
                return null;
            });
        }""",
        [selector, list(needles)],
    )


def test_arabic_numbers_ranges_and_latin_text_are_isolated_and_read_in_order(
    release: Fixture, open_explorer: Any
) -> None:
    page = open_explorer(release.url, "view=explore&lang=ar&s=Gender%3AFemale")
    page.render_all()
    nf = lambda x: page.page.evaluate(  # noqa: E731
        f"new Intl.NumberFormat('ar').format({x}).replace(/[\\u061C\\u200E\\u200F]/g, '')"
    )
    young = '[data-testid="bar"][data-attr="AgeGroup:18-29"] .bar-label'
    old = '[data-testid="bar"][data-attr="AgeGroup:30+"] .bar-label'
    # DOM: a digits-only age band is a left-to-right isolate, an Arabic label a right-to-left one.
    assert page.page.text_content(young) == LRI + "18–29" + PDI
    assert page.page.text_content(old) == RLI + "30 فأكثر" + PDI
    counts = page.page.eval_on_selector_all(
        '[data-testid="bar-off-text"]', "els => els.map(e => e.textContent)"
    )
    assert counts and all(LRI in c and PDI in c for c in counts if any(ch.isdigit() for ch in c))
    # The official range of the selection "(يمثل low–high)" is one left-to-right unit of two isolated numbers.
    off = page.page.text_content('[data-testid="summary-off"]')
    low = int(page.page.get_attribute('[data-testid="summary-off"]', "data-value"))
    high = low + 4
    assert f"{LRI}{LRI}{nf(low)}{PDI}{WJ}–{WJ}{LRI}{nf(high)}{PDI}{PDI}" in off  # word joiners: no line break
    # Reading order from layout boxes: the range and the age band run low to high left to right; in the
    # Arabic label the number comes first in reading order, i.e. at the right.
    band_low, band_high = _rects(page, young, "18", "29")
    assert band_low["right"] <= band_high["left"]
    number, words = _rects(page, old, "30", "فأكثر")
    assert number["left"] >= words["right"]
    range_low, range_high = _rects(
        page, '[data-testid="summary-off"]', nf(low), nf(high)
    )  # the count comes first
    assert range_low["top"] == range_high["top"] and range_low["right"] <= range_high["left"]
    # Latin fragments of Arabic sentences ("k = 5") are isolated, so the parentheses stay in place.
    page.go("view=home&lang=ar")
    mode = page.page.text_content('[data-fact="privacy-mode"]')
    assert f"({LRI}k{NBSP}={NBSP}{LRI}{nf(5)}{PDI}{PDI})" in mode
    page.assert_clean()


def test_default_page_groups_indicators_keeps_age_order_and_names_countries(
    release: Fixture, open_explorer: Any
) -> None:
    page = open_explorer(release.url, "view=explore&lang=de")
    page.render_all()
    visuals = page.page.eval_on_selector_all('[data-testid="chart"]', "els => els.map(e => e.dataset.visual)")
    assert CONTROL_VISUAL in visuals and not any(v.startswith("Control_") for v in visuals)
    control = page.bars(CONTROL_VISUAL)
    assert {b["label"] for b in control} == {LABELS[f"Control_{c}"]["de"] for c in CONTROLS}
    # No chart is a single bar labelled with the raw indicator value.
    for visual in visuals:
        bars = page.bars(visual)
        assert not (len(bars) == 1 and bars[0]["label"] in ("1", "ja")), visual
    # Ordinal age bands keep their natural order by default, not the count order.
    ages = [b["attr"] for b in page.bars("AgeGroup")]
    assert ages == ["AgeGroup:0-17", "AgeGroup:18-29", "AgeGroup:30+"]
    page.go("view=explore&lang=de&sort=agg")
    page.render_all()
    by_count = page.bars("AgeGroup")
    assert [int(b["agg"] or 0) for b in by_count] == sorted(
        (int(b["agg"] or 0) for b in by_count), reverse=True
    )
    assert [b["attr"] for b in by_count] != ages
    # Countries are named in the page language; the ISO code stays in the tooltip.
    countries = {b["attr"]: b for b in page.bars("Citizenship")}
    name = page.page.evaluate("new Intl.DisplayNames(['de'], {type: 'region'}).of('CI')")
    assert countries["Citizenship:CI"]["label"] == name
    assert page.page.get_attribute('[data-attr="Citizenship:CI"] .bar-label', "title") == "CI"
    # A page of indicators is one grouped chart.
    page.go("view=explore&lang=de&page=Control")
    assert page.page.eval_on_selector_all(
        '[data-testid="chart"]', "els => els.map(e => e.dataset.visual)"
    ) == [CONTROL_VISUAL]
    page.assert_clean()


def test_map_is_keyboard_reachable_and_its_table_equals_the_bar_chart(
    release: Fixture, open_explorer: Any
) -> None:
    page = open_explorer(release.url, "view=explore&cols=map%3ACitizenship&cols=Citizenship")
    page.render_all()
    countries = page.map_countries("map:Citizenship")
    bars = {b["attr"]: b for b in page.bars("Citizenship")}
    assert {c["attr"]: (c["syn"], c["agg"], c["state"]) for c in countries} == {
        a: (b["syn"], b["agg"], b["state"]) for a, b in bars.items()
    }
    # Keyboard: Tab from the map's own table toggle lands on its one tab stop; arrows move; Enter selects.
    page.page.focus('[data-testid="chart-table-toggle"][data-visual="map:Citizenship"]')
    page.page.keyboard.press("Tab")
    assert page.page.evaluate("document.activeElement.dataset.testid") == "map-country"
    first = page.page.evaluate("document.activeElement.dataset.code")
    page.page.keyboard.press("ArrowRight")
    second = page.page.evaluate("document.activeElement.dataset.code")
    assert second != first
    page.page.keyboard.press("Enter")
    page.page.wait_for_function("() => window.__explorer.state().sel.length === 1")
    assert (
        page.page.get_attribute(f'[data-testid="bar"][data-attr="Citizenship:{second}"]', "aria-selected")
        == "true"
    )
    assert page.page.evaluate("document.activeElement.dataset.code") == second  # focus kept on the country
    name = page.page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert f"({second})" in name
    # The map's table alternative lists exactly the bar chart's counts.
    page.page.click('[data-testid="chart-table-toggle"][data-visual="map:Citizenship"]')
    page.page.wait_for_selector('[data-visual="map:Citizenship"] [data-testid="chart-table"]')
    rows = page.page.eval_on_selector_all(
        '[data-visual="map:Citizenship"] tbody tr', "rows => rows.map(r => [r.dataset.attr, r.dataset.syn])"
    )
    bars = {b["attr"]: b for b in page.bars("Citizenship")}
    assert sorted(rows) == sorted([a, b["syn"]] for a, b in bars.items())
    page.assert_clean()


def test_agreement_mark_is_relative_and_explained(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, "view=privacy")
    light = "([s, a]) => window.__explorer.model.agreement(s, window.__explorer.model.rangeOf(a))"
    assert page.page.evaluate(light, [6234, 6360]) == "amber"  # 2 % off a large count agrees
    assert page.page.evaluate(light, [92, 470]) == "red"
    assert page.page.evaluate(light, [6362, 6360]) == "green"  # inside [a, a + k - 1]
    glossary = page.page.text_content('[data-term="agreement"]')
    assert "10%" in glossary and "evaluation" in glossary
    assert page.page.locator('[data-term="blank"]').count() == 1
    page.assert_clean()


def test_accuracy_selection_and_blank_cells_are_explained(release: Fixture, open_explorer: Any) -> None:
    stats = release.payload["stats"]
    page = open_explorer(release.url, "view=home")
    accuracy = page.page.text_content('[data-statement="accuracy"]')
    single = round(100 * stats["by_length"][0]["mean_proportional_error"], 1)
    multi = round(100 * stats["multi"]["mean_proportional_error"], 1)
    assert f"{single:g}%" in accuracy and f"{multi:g}%" in accuracy and "2 to 3" in accuracy
    page.go("view=privacy")
    glossary = page.page.text_content('[data-testid="glossary-accuracy"]')
    assert f"{single:g}%" in glossary and f"{multi:g}%" in glossary, "the glossary states the card's errors"
    page.go("view=explore")
    explained = page.page.text_content('[data-testid="synthetic-explained"]')
    meta = release.payload["meta"]
    assert (
        f"{meta['synthetic_records']:,}" in explained and f"{meta['reportable_record_count']:,}" in explained
    )
    assert "not a person" in explained
    assert "not stated in the source, or left out to protect privacy" in page.page.text_content(
        '[data-testid="blank-cells"]'
    )
    page.assert_clean()
