"""The explorer in headless Chromium, from file:// (docs/explorer.md A.5.5).

Golden numbers come from ``explorer_fixture`` (explicit records, brute-force aggregates), never from the
page's own code, so bitsets, caches and binary search are checked independently.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from explorer_fixture import SCRIPT_VALUE, Fixture, K, L, agrees, build_fixture

pytestmark = pytest.mark.browser

NBSP = "\u00a0"
ISOLATES = re.compile("[\u2066-\u2069]")


def strip_isolates(text: str) -> str:
    return ISOLATES.sub("", text)


def explore_fragment(
    selection: Sequence[str] = (), *, all_visuals: Fixture | None = None, **extra: str
) -> str:
    params: list[tuple[str, str]] = [("view", "explore")] + [("s", a) for a in selection]
    if all_visuals is not None:
        params += [("cols", v["id"]) for v in all_visuals.model()["visuals"]]
    params += list(extra.items())
    return urllib.parse.urlencode(params)


def expected_agreement(syn: int, state: str, count: int | None, interval: int = K) -> str:
    """The light of the agreement rule: green inside [a, a + interval - 1], amber agreeing, red not."""
    if state in ("lt_k", "na"):
        return "grey"
    assert count is not None
    if count <= syn <= count + interval - 1:
        return "green"
    return "amber" if agrees(syn, count, interval) else "red"


def expected_syn_text(syn: int) -> str:
    return f"<{NBSP}{K}" if syn < K else f"{syn:,}"


def expected_off_text(state: str, count: int | None) -> str:
    if state == "value":
        return f"{count:,}"
    return f"◌ <{NBSP}{K}" if state == "lt_k" else "⊘ n/a"


def check_bars_against_oracle(
    release: Fixture, bars: list[dict[str, str]], selection: Sequence[str]
) -> set[str]:
    states = set()
    for bar in bars:
        attr = bar["attr"]
        syn = release.synthetic_count(selection, attr)
        state, count = release.official(selection, attr)
        states.add(state)
        where = f"bar {attr!r} under {list(selection)}"
        assert int(bar["syn"]) == syn, where
        assert bar["state"] == state, where
        assert bar["agg"] == ("" if count is None else str(count)), where
        assert bar["agree"] == expected_agreement(syn, state, count), where
        assert bar["synText"] == expected_syn_text(syn), where
        assert bar["offText"] == expected_off_text(state, count), where
        assert bar["selected"] == ("true" if attr in selection else "false"), where
        assert bar["col"] == attr.split(":", 1)[0] and bar["val"] == attr.split(":", 1)[1], where
    return states


SCENARIOS = {
    "no_filter": [],
    "one_filter": ["Gender:Female"],
    "two_filters": ["AgeGroup:18-29", "Gender:Female"],
    "three_filters_over_budget": ["AgeGroup:18-29", "Country:Nepal", "Gender:Female"],
    "multi_value_and_year": ["Exploitation_Sexual:1", "Year:2021"],
    "value_with_markup": [f"Country:{SCRIPT_VALUE}"],
    "rare_combination": ["AgeGroup:0-17", "Country:Nepal"],
}


def test_opens_offline_silently_and_every_view_renders(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url)
    csp = page.page.get_attribute('meta[http-equiv="Content-Security-Policy"]', "content")
    assert "default-src 'none'" in csp
    for view in ("explore", "fidelity", "privacy", "downloads", "home"):
        page.page.click(f'[data-testid="nav-{view}"]')
        page.page.wait_for_function("(v) => document.getElementById('main').dataset.view === v", arg=view)
        assert page.page.get_attribute(f'[data-testid="nav-{view}"]', "aria-current") == "page"
        page.render_all()
        text = page.page.evaluate("document.getElementById('app').textContent")
        assert not re.search(r"null|undefined|NaN|\[object ", text), view  # no leaked JS values
    # Debug panel (M21): record, combination and key counts.
    page.page.click('[data-testid="debug-panel"]')
    keys = page.page.get_attribute(".debug-list", "data-keys")
    assert keys == str(len(release.payload["aggregates"]["entries"]))
    assert f"{release.payload['meta']['synthetic_records']:,}" in page.page.text_content(".debug-list")
    page.assert_clean()


@pytest.mark.parametrize("selection", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_golden_counts_and_states(release: Fixture, open_explorer: Any, selection: list[str]) -> None:
    page = open_explorer(release.url, explore_fragment(selection, all_visuals=release))
    page.render_all()
    model = release.model()
    bars = page.bars()
    for visual in model["visuals"]:  # every value is shown, including synthetic zeros (M4)
        shown = page.map_countries(visual["id"]) if visual["type"] == "map" else page.bars(visual["id"])
        assert len(shown) == len(visual["attrs"]), visual["id"]
    check_bars_against_oracle(release, bars, selection)
    for country in page.map_countries():  # the map's numbers are the oracle's too
        state, count = release.official(selection, country["attr"])
        assert int(country["syn"]) == release.synthetic_count(selection, country["attr"])
        assert (country["state"], country["agg"]) == (state, "" if count is None else str(count))
    summary_syn = page.page.get_attribute('[data-testid="summary-syn"]', "data-value")
    assert int(summary_syn) == release.matching(selection)
    state, count = release.official(selection, None)
    assert page.page.get_attribute('[data-testid="summary-off"]', "data-state") == state
    assert page.page.get_attribute('[data-testid="summary-off"]', "data-value") == (
        "" if count is None else str(count)
    )
    page.assert_clean()


def test_golden_scenarios_cover_every_official_state(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, explore_fragment(all_visuals=release))
    seen: set[str] = set()
    for selection in SCENARIOS.values():
        page.go(explore_fragment(selection, all_visuals=release))
        page.render_all()
        seen |= check_bars_against_oracle(release, page.bars(), selection)
    assert {"value", "lt_k", "na"} <= seen
    page.assert_clean()


def _click_bar(page: Any, visual: str, attr: str) -> None:
    version = page.page.evaluate("document.documentElement.dataset.stateVersion")
    page.page.click(f'[data-testid="bar"][data-visual="{visual}"][data-attr="{attr}"]')
    page.page.wait_for_function("(v) => document.documentElement.dataset.stateVersion !== v", arg=version)


def test_cross_filter_chips_budget_and_history(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, "view=explore")
    totals = {b["attr"]: int(b["syn"]) for b in page.bars("Gender")}

    _click_bar(page, "Gender", "Gender:Female")
    assert "s=Gender%3AFemale" in page.page.evaluate("location.hash")
    chips = page.page.eval_on_selector_all(
        '[data-testid="chip-remove"]', "els => els.map(e => e.dataset.attr)"
    )
    assert chips == ["Gender:Female"]
    page.render_all()
    check_bars_against_oracle(release, page.bars(), ["Gender:Female"])
    # The selected column keeps its alternatives, counted without its own filter.
    gender = {b["attr"]: b for b in page.bars("Gender")}
    assert int(gender["Gender:Male"]["syn"]) == totals["Gender:Male"]
    assert gender["Gender:Female"]["selected"] == "true" and gender["Gender:Male"]["selected"] == "false"
    live = page.page.get_attribute('[data-testid="live-region"]', "data-message")
    assert "Filter added" in live and f"{release.matching(['Gender:Female']):,}" in live

    _click_bar(page, "AgeGroup", "AgeGroup:18-29")
    assert page.page.get_attribute('[data-testid="budget"]', "data-remaining") == "0"
    _click_bar(page, "Country", "Country:Nepal")
    selection = ["AgeGroup:18-29", "Country:Nepal", "Gender:Female"]
    assert page.page.get_attribute('[data-testid="budget"]', "data-remaining") == "-1"
    assert "budget-warn" in page.page.get_attribute('[data-testid="budget"]', "class")
    assert "Too many filters" in page.page.text_content('[data-testid="budget"]')
    page.render_all()
    bars = page.bars()
    check_bars_against_oracle(release, bars, selection)
    assert {b["state"] for b in bars if b["visual"] == "Year"} == {"na"}  # M7(c): 4 attributes > L
    assert {b["state"] for b in bars if b["visual"] == "Gender"} <= {"value", "lt_k"}  # own column: length 3

    page.page.go_back()
    page.page.wait_for_function("() => window.__explorer.state().sel.length === 2")
    page.render_all()
    check_bars_against_oracle(release, page.bars(), ["AgeGroup:18-29", "Gender:Female"])
    page.page.go_forward()
    page.page.wait_for_function("() => window.__explorer.state().sel.length === 3")

    # Removing a chip keeps focus inside the chip list.
    page.page.click('[data-testid="chip-remove"][data-attr="Country:Nepal"]')
    page.page.wait_for_function("() => window.__explorer.state().sel.length === 2")
    assert page.page.evaluate("document.activeElement.dataset.testid") == "chip-remove"
    page.page.click('[data-testid="clear-all"]')
    page.page.wait_for_function("() => window.__explorer.state().sel.length === 0")
    assert page.page.evaluate("document.activeElement.dataset.testid") == "filters-heading"
    page.assert_clean()


def test_keyboard_only_path(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, "view=explore")
    for _ in range(80):
        page.page.keyboard.press("Tab")
        if page.page.evaluate("document.activeElement.dataset.testid") == "bar":
            break
    else:
        pytest.fail("Tab never reached a bar")
    first = page.page.evaluate("document.activeElement.dataset.attr")
    page.page.keyboard.press("ArrowDown")
    second = page.page.evaluate("document.activeElement.dataset.attr")
    assert second != first
    assert page.page.evaluate("document.activeElement.getAttribute('tabindex')") == "0"  # roving tab stop
    page.page.keyboard.press("Enter")
    page.page.wait_for_function("() => window.__explorer.state().sel.length === 1")
    assert page.state()["sel"] == [page.page.evaluate(f"window.__explorer.model.attrById.get({second!r})")]
    # Focus stays on the same value after the re-render, now selected.
    assert page.page.evaluate("document.activeElement.dataset.attr") == second
    assert page.page.evaluate("document.activeElement.getAttribute('aria-selected')") == "true"
    page.page.keyboard.press("Escape")
    page.page.wait_for_function("() => window.__explorer.state().sel.length === 0")
    assert "cleared" in page.page.get_attribute('[data-testid="live-region"]', "data-message")
    page.assert_clean()


AXE_VIEWS = [
    "view=home",
    explore_fragment(["Gender:Female", "AgeGroup:18-29"], tbl="Country"),
    explore_fragment(["Gender:Female", "AgeGroup:18-29", "Country:Nepal"], lang="ar"),
    "view=fidelity",
    "view=privacy&step=2",
    "view=downloads",
    "view=home&lang=fr",
]


@pytest.mark.parametrize("fragment", AXE_VIEWS)
def test_axe_finds_no_serious_violations(
    release: Fixture, open_explorer: Any, axe_source: str, fragment: str
) -> None:
    page = open_explorer(release.url, fragment)
    page.render_all()
    page.page.evaluate(axe_source)  # through the DevTools protocol, so the page's CSP stays untouched
    result = page.page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    serious = [v for v in result if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    page.assert_clean()


def test_every_chart_has_a_table_alternative(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, explore_fragment(["Gender:Female"]))
    bars = {b["attr"]: b for b in page.bars("Country")}
    page.page.click('[data-testid="chart-table-toggle"][data-visual="Country"]')
    page.page.wait_for_selector('[data-visual="Country"] [data-testid="chart-table"]')
    assert "tbl=Country" in page.page.evaluate("location.hash")
    assert (
        page.page.get_attribute('[data-testid="chart-table-toggle"][data-visual="Country"]', "aria-pressed")
        == "true"
    )
    rows = page.page.eval_on_selector_all(
        '[data-visual="Country"] tbody tr',
        "rows => rows.map(r => [r.dataset.attr, r.dataset.syn, r.dataset.state])",
    )
    assert rows == [[a, b["syn"], b["state"]] for a, b in bars.items()]
    # Fidelity charts are images with a text alternative and a data table.
    page.go("view=fidelity")
    labels = page.page.eval_on_selector_all(
        '[role="img"]', "els => els.map(e => e.getAttribute('aria-label'))"
    )
    assert len(labels) == 5 and all(": " in label for label in labels)
    assert page.page.locator('[data-testid="fidelity-table"]').count() == 2
    page.assert_clean()


def test_arabic_is_right_to_left_and_translated(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, "view=explore&lang=ar")
    assert page.page.evaluate("document.documentElement.dir") == "rtl"
    assert page.page.evaluate("document.documentElement.lang") == "ar"
    expected = page.page.evaluate("window.__explorer.t('ar', 'view_explore')")
    assert page.page.text_content('[data-testid="nav-explore"]') == expected == "استكشاف"
    labels = [strip_isolates(b["label"]) for b in page.bars("Gender")]
    assert "أنثى" in labels  # value label from the payload's codebook
    assert strip_isolates(page.page.text_content('[data-visual="Gender"] .chart-title')) == "الجنس"
    for lang in ("fr", "es", "de", "ar"):
        assert page.page.evaluate(f"window.__explorer.i18nMissing({lang!r})") == [], lang
    page.assert_clean()


def test_french_number_and_date_formatting(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, "view=home&lang=fr")
    shown = page.page.text_content('[data-fact="synthetic-records"]')
    assert shown == page.page.evaluate(
        f"new Intl.NumberFormat('fr').format({release.payload['meta']['synthetic_records']})"
    )
    assert (
        shown == f"1\u202f{release.payload['meta']['synthetic_records'] % 1000:03d}"
    )  # narrow no-break space
    assert page.page.text_content('[data-fact="created"]') == "1 mars 2025"
    page.go("view=fidelity&lang=fr")
    mae = page.page.text_content('[data-testid="metric-fid_overall_mae"]')
    assert "," in mae and "." not in mae
    assert page.page.text_content('[data-testid="nav-fidelity"]') == "Vérifier la fidélité"
    page.assert_clean()


def test_exported_csv_equals_what_is_shown(release: Fixture, open_explorer: Any, tmp_path: Path) -> None:
    selection = ["AgeGroup:18-29", "Gender:Female"]
    page = open_explorer(release.url, explore_fragment(selection, all_visuals=release))
    page.render_all()
    with page.page.expect_download() as info:
        page.page.click('[data-testid="export-csv"]')
    target = tmp_path / "view.csv"
    info.value.save_as(target)
    assert info.value.suggested_filename == "explorer-view-run-test-1.csv"
    text = target.read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    bars = page.bars()
    assert len(rows) == len(bars)
    for row, bar in zip(rows, bars, strict=True):
        assert row["visual"] == bar["visual"]
        assert row["attribute"] == bar["attr"]
        assert row["synthetic_count"] == bar["syn"]
        assert row["synthetic_shown"] == bar["synText"]
        assert row["official_state"] == bar["state"]
        assert row["official_count"] == bar["agg"]
        assert row["official_shown"] == bar["offText"]
        assert row["agreement"] == bar["agree"]
        assert row["label"] == bar["label"].removeprefix("✓ ")
        assert row["filters"] == ";".join(selection)
    assert any(r["value"] == SCRIPT_VALUE for r in rows)
    assert any("," in r["value"] for r in rows)  # "A,B" survived CSV quoting
    page.assert_clean()


def test_sha256_shown_equals_the_files(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, "view=downloads")
    for name, path in release.files.items():
        row = f'[data-download="{name}"]'
        assert (
            page.page.text_content(f'{row} [data-testid="sha256"]')
            == hashlib.sha256(path.read_bytes()).hexdigest()
        )
        href = page.page.eval_on_selector(f'{row} [data-testid="download-link"]', "a => a.href")
        assert Path(urllib.parse.unquote(urllib.parse.urlparse(href).path)) == path.resolve()
        assert page.page.get_attribute(f"{row} [data-bytes]", "data-bytes") == str(path.stat().st_size)
    # In-page verification (crypto.subtle on a picked file) agrees with the published checksum.
    name, path = next(iter(release.files.items()))
    page.page.set_input_files('[data-testid="verify-file"]', str(path))
    page.page.wait_for_function(
        "() => document.querySelector('[data-testid=verify-result]').dataset.match !== undefined"
    )
    assert page.page.get_attribute('[data-testid="verify-result"]', "data-match") == name
    page.page.set_input_files('[data-testid="verify-file"]', str(release.index))
    page.page.wait_for_function(
        "(h) => document.querySelector('[data-testid=verify-result]').dataset.sha256 === h",
        arg=hashlib.sha256(release.index.read_bytes()).hexdigest(),
    )
    assert page.page.get_attribute('[data-testid="verify-result"]', "data-match") == ""
    page.assert_clean()


def test_values_are_shown_as_text_never_as_markup(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, explore_fragment([f"Country:{SCRIPT_VALUE}"]))
    assert page.page.evaluate("document.querySelectorAll('#app b').length") == 0
    labels = [b["label"] for b in page.bars("Country")]
    assert any(label.endswith(SCRIPT_VALUE) for label in labels)
    chips = page.page.eval_on_selector_all(
        '[data-testid="chip-remove"]', "els => els.map(e => e.dataset.attr)"
    )
    assert chips == [f"Country:{SCRIPT_VALUE}"]
    assert "<b>markup</b>" in page.page.text_content('[data-visual="Gender"] .chart-desc')
    page.assert_clean()


@pytest.mark.parametrize(
    "fragment", ["view=home", "view=explore&tbl=Gender", "view=fidelity", "view=privacy", "view=downloads"]
)
def test_every_interactive_element_has_a_testid(release: Fixture, open_explorer: Any, fragment: str) -> None:
    page = open_explorer(release.url, fragment)
    page.render_all()
    page.page.click('[data-testid="columns-toggle"]') if "explore" in fragment else None
    missing = page.page.evaluate(
        """() => Array.from(document.querySelectorAll(
                'a[href], button, input, select, textarea, summary, [tabindex]'))
            .filter(el => !el.dataset.testid).map(el => el.outerHTML.slice(0, 80))"""
    )
    assert missing == []
    page.assert_clean()


def test_small_synthetic_counts_are_guarded_until_switched_on(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, explore_fragment(["Gender:Female"]))
    small = [b for b in page.bars() if int(b["syn"]) < K]
    assert small and all(b["synText"] == f"<{NBSP}{K}" for b in small)
    page.page.check('[data-testid="toggle-exact"]')
    page.page.wait_for_function("() => window.__explorer.state().exact === true")
    assert "exact=1" in page.page.evaluate("location.hash")
    shown = {b["attr"]: b["synText"] for b in page.bars()}
    assert all(shown[b["attr"]] == b["syn"] for b in small)
    page.assert_clean()


def test_counting_strategies_agree(release: Fixture, open_explorer: Any) -> None:
    selection = ["Exploitation_Labour:1", "Year:2019"]
    page = open_explorer(release.url, explore_fragment(selection, all_visuals=release))
    for strategy in ("bitset", "histogram", "auto"):
        page.page.evaluate(f"window.__explorer.setStrategy({strategy!r})")
        check_bars_against_oracle(release, page.bars(), selection)
    page.assert_clean()


def test_only_visible_charts_are_rendered(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(
        release.url, explore_fragment(all_visuals=release), viewport={"width": 900, "height": 500}
    )
    rendered = page.page.eval_on_selector_all(
        '[data-testid="chart"]', "els => els.map(e => !!e.dataset.renderedVersion)"
    )
    assert not all(rendered), "charts far below the fold should wait for the IntersectionObserver"
    page.page.locator('[data-testid="chart"]').last.scroll_into_view_if_needed()
    page.page.wait_for_function(
        "() => { const c = document.querySelectorAll('[data-testid=chart]');"
        " return !!c[c.length - 1].dataset.renderedVersion; }"
    )
    page.assert_clean()


def test_citation_sentence_follows_the_official_state(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, explore_fragment(["Gender:Female"]))
    _, count = release.official(["Gender:Female"], None)
    assert count is not None
    text = page.page.text_content('[data-testid="citation-text"]')
    assert text.startswith(
        f"Between {count:,} and {count + K - 1:,} identified victims in the CTDC test release"
    )
    assert "v2025-03" in text and "March 1, 2025" in text and "Gender: Female" in text and "Source:" in text
    page.go(explore_fragment(["AgeGroup:18-29", "Country:Nepal", "Gender:Female", "Year:2020"]))
    text = page.page.text_content('[data-testid="citation-text"]')
    assert "cannot be officially confirmed" in text and f"at most {L} characteristics" in text
    assert "approximately" in text
    assert page.page.get_attribute('[data-testid="summary-verdict"]', "data-agree") == "grey"
    page.assert_clean()


def test_empty_statistics_show_explicit_empty_states(open_explorer: Any, tmp_path: Path) -> None:
    bare = build_fixture(tmp_path / "bare", with_stats=False)
    page = open_explorer(bare.url, "view=fidelity")
    assert page.page.locator('[data-testid="empty-by-length"]').is_visible()
    assert page.page.locator('[data-testid="empty-by-bucket"]').is_visible()
    assert page.page.text_content('[data-testid="metric-fid_overall_mae"]') == "—"
    page.go("view=home")
    assert "does not include accuracy statistics" in page.page.text_content('[data-statement="accuracy"]')
    page.assert_clean()


def test_unknown_filters_in_a_link_are_ignored_with_a_notice(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, explore_fragment(["Gender:Female", "Gender:Nobody"]))
    assert page.state()["sel"] == [
        page.page.evaluate("window.__explorer.model.attrById.get('Gender:Female')")
    ]
    assert "ignored: 1" in page.page.text_content("main .notice")
    page.assert_clean()


def test_dp_release_uses_noisy_counts_without_rounding_bands(open_explorer: Any, tmp_path: Path) -> None:
    dp = build_fixture(tmp_path / "dp", privacy_mode="dp")
    selection = ["Gender:Female"]
    page = open_explorer(dp.url, explore_fragment(selection, all_visuals=dp))
    page.render_all()
    for bar in page.bars():
        state, count = dp.official(selection, bar["attr"])
        syn = dp.synthetic_count(selection, bar["attr"])
        assert (bar["state"], bar["agg"], int(bar["syn"])) == (
            state,
            "" if count is None else str(count),
            syn,
        )
        if state == "value":
            assert count is not None
            # a DP count is a point, not a rounding interval
            assert bar["agree"] == expected_agreement(syn, state, count, interval=1)
    assert page.page.locator(".bar-band").count() == 0
    assert "differential-privacy" in page.page.text_content(".legend-card")
    _, total = dp.official(selection, None)
    assert page.page.text_content('[data-testid="citation-text"]').startswith(
        f"About {total:,} identified victims"
    )
    page.go("view=home")
    assert "ε = 4" in page.page.text_content('[data-statement="privacy"]')
    page.assert_clean()


def test_high_cardinality_chart_has_a_value_search(release: Fixture, open_explorer: Any) -> None:
    page = open_explorer(release.url, explore_fragment(["Country:Nepal"]))
    total = len(page.bars("Country"))
    assert total > 12
    page.page.fill('[data-testid="chart-search"][data-visual="Country"]', "country 0")
    page.page.wait_for_function(
        "() => document.querySelectorAll('[data-visual=Country] [data-testid=bar]').length < 12"
    )
    shown = page.bars("Country")
    # Matching values, plus the selected one so the active filter never disappears from view.
    assert {b["attr"] for b in shown} == {"Country:Nepal"} | {f"Country:Country {i:02d}" for i in range(10)}
    assert f"of {total}" in page.page.text_content('[data-visual="Country"] [data-testid="chart-summary"]')
    check_bars_against_oracle(release, shown, ["Country:Nepal"])
    assert page.page.evaluate("document.activeElement.dataset.testid") == "chart-search"
    page.page.fill('[data-testid="chart-search"][data-visual="Country"]', "")
    page.page.wait_for_function(
        "(n) => document.querySelectorAll('[data-visual=Country] [data-testid=bar]').length === n", arg=total
    )
    page.assert_clean()


def test_long_charts_show_the_top_values_until_expanded(open_explorer: Any, tmp_path: Path) -> None:
    wide = build_fixture(tmp_path / "wide", extra_countries=40)
    n_countries = len([a for a in wide.all_attributes() if a.startswith("Country:")])
    selected = "Country:Extra 039"  # sorts last among equal counts, so the top-25 cut would drop it
    page = open_explorer(wide.url, explore_fragment([selected]))
    shown = page.bars("Country")
    assert len(shown) == 26 and shown[-1]["attr"] == selected  # top 25 + the selected value
    button = '[data-testid="chart-show-all"][data-visual="Country"]'
    assert page.page.text_content(button) == f"Show all {n_countries} values"
    page.page.click(button)
    assert len(page.bars("Country")) == n_countries
    assert page.page.get_attribute(button, "aria-expanded") == "true"
    check_bars_against_oracle(wide, page.bars("Country"), [selected])
    page.page.click(button)
    assert len(page.bars("Country")) == 26
    page.assert_clean()
