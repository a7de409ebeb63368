"""Pure-Python tests of the explorer builder: payload validation, escaping, the written file (no browser)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ctdc_spark.publish._explorer import (
    EMPTY_STATS,
    ExplorerPayload,
    build_explorer,
    compile_payload,
    json_for_script,
    render_html,
)

SECRET = "SECRET-Value-7f3a"  # a data value that must never appear in an error message
SCRIPTY = "</script><script>alert(1)</script>"


def _codes(values: list[int]) -> str:
    return base64.b64encode(np.asarray(values, dtype="<u2").tobytes()).decode("ascii")


def make_payload() -> dict[str, Any]:
    """A minimal valid payload: two columns, four synthetic rows, k = 5, L = 2."""
    attrs = sorted(["Sex:F", "Sex:M", f"Country:{SECRET}", "Country:Nepal"], key=lambda a: a.encode())
    rank = {a: i for i, a in enumerate(attrs)}
    return {
        "meta": {
            "title": "Test",
            "description": "d",
            "dataset_version": "v1",
            "run_id": "r1",
            "created": "2025-03-01T00:00:00+00:00",
            "pipeline_version": "0.1.0",
            "privacy_mode": "k_anonymity",
            "k": 5,
            "L": 2,
            "dp": None,
            "synthesis_mode": "row_seeded",
            "synthetic_records": 4,
            "reportable_record_count": 20,
            "licence": "CC BY 4.0",
            "citation": "Cite me",
            "languages": ["en", "fr", "ar"],
            "default_language": "en",
            "small_count_threshold": None,
        },
        "columns": [
            {
                "id": "Sex",
                "source_column": "Sex",
                "kind": "single",
                "labels": {"en": "Sex"},
                "description": "",
                "values": [
                    {"code": 1, "value": "F", "attribute": "Sex:F", "rank": rank["Sex:F"], "labels": {}},
                    {"code": 2, "value": "M", "attribute": "Sex:M", "rank": rank["Sex:M"], "labels": {}},
                ],
            },
            {
                "id": "Country",
                "source_column": "Country",
                "kind": "single",
                "labels": {},
                "description": "",
                "values": [
                    {
                        "code": 1,
                        "value": "Nepal",
                        "attribute": "Country:Nepal",
                        "rank": rank["Country:Nepal"],
                        "labels": {},
                    },
                    {
                        "code": 2,
                        "value": SECRET,
                        "attribute": f"Country:{SECRET}",
                        "rank": rank[f"Country:{SECRET}"],
                        "labels": {},
                    },
                ],
            },
        ],
        "default_columns": ["Sex", "Country"],
        "pages": [],
        "groups": [],
        "synthetic": {"n": 4, "columns": {"Sex": _codes([1, 1, 2, 0]), "Country": _codes([1, 2, 1, 1])}},
        "aggregates": {
            "record_count": 20,
            "entries": [["Sex:F", 10], ["Country:Nepal", 15], ["Country:Nepal;Sex:F", 5]],
        },
        "stats": dataclasses.asdict(EMPTY_STATS),
        "downloads": [
            {
                "name": "synthetic_microdata.csv",
                "href": "../synthetic_microdata.csv",
                "bytes": 10,
                "sha256": "a" * 64,
                "description": "Synthetic records",
            }
        ],
    }


def compile_mapping(payload: dict[str, Any]) -> dict[str, Any]:
    """Read a JSON-like payload as the builder does, and compile it."""
    return compile_payload(ExplorerPayload.from_mapping(payload))


def _data_block(html: str) -> Any:
    match = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', html, re.S)
    assert match, "data block not found"
    return json.loads(match.group(1))


def test_valid_payload_compiles_to_canonical_model() -> None:
    model = compile_mapping(make_payload())
    attrs = [
        "{}:{}".format(model["columns"][ci]["id"], model["columns"][ci]["values"][vi]["value"])
        for ci, vi in model["attrs"]
    ]
    assert attrs == sorted(attrs, key=lambda a: a.encode())  # dense ids follow canonical byte order
    tables = {t["length"]: t for t in model["aggregates"]["tables"]}
    assert set(tables) == {1, 2}
    ranks = np.frombuffer(base64.b64decode(tables[1]["ranks"]), dtype="<u2")
    counts = np.frombuffer(base64.b64decode(tables[1]["counts"]), dtype="<u4")
    assert [attrs[r] for r in ranks] == sorted(["Sex:F", "Country:Nepal"], key=lambda a: a.encode())
    assert dict(zip([attrs[r] for r in ranks], counts.tolist(), strict=True)) == {
        "Sex:F": 10,
        "Country:Nepal": 15,
    }
    assert model["meta"]["small_count_threshold"] == 5  # null means k
    assert model["default_visuals"] == ["Sex", "Country"]


def _set(payload: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = payload
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value


_DELETE = object()

INVALID_CASES = [
    ("missing_meta_k", "meta.k", _DELETE, r"payload\.meta\.k: missing field"),
    ("missing_columns", "columns", _DELETE, r"payload\.columns: missing field"),
    (
        "missing_value_rank",
        "columns.0.values.0.rank",
        _DELETE,
        r"payload\.columns\[0\]\.values\[0\]\.rank: missing",
    ),
    ("k_zero", "meta.k", 0, r"payload\.meta\.k: must be >= 1"),
    ("k_bool", "meta.k", True, r"payload\.meta\.k: must be a whole number"),
    ("bad_mode", "meta.privacy_mode", "other", r"privacy_mode"),
    ("dp_without_params", "meta.privacy_mode", "dp", r"payload\.meta\.dp"),
    ("bad_created", "meta.created", "yesterday", r"payload\.meta\.created"),
    ("unsupported_language", "meta.languages", ["en", "xx"], r"payload\.meta\.languages\[1\]: unsupported"),
    ("default_language_not_listed", "meta.default_language", "de", r"default_language"),
    ("bad_kind", "columns.0.kind", "many", r"payload\.columns\[0\]\.kind"),
    (
        "attribute_mismatch",
        "columns.1.values.1.attribute",
        "Country:other",
        r"columns\[1\]\.values\[1\]\.attribute",
    ),
    (
        "value_with_reserved_char",
        "columns.1.values.1.value",
        SECRET + ";x",
        r"columns\[1\]\.values\[1\]\.value",
    ),
    ("duplicate_code", "columns.1.values.1.code", 1, r"columns\[1\]\.values\[1\]\.code: duplicate"),
    ("rank_out_of_order", "columns.0.values.0.rank", 99, r"ranks must follow the byte order"),
    ("synthetic_n_mismatch", "synthetic.n", 5, r"payload\.synthetic\.n: must equal meta\.synthetic_records"),
    (
        "synthetic_column_missing",
        "synthetic.columns.Sex",
        _DELETE,
        r"payload\.synthetic\.columns\.Sex: missing",
    ),
    (
        "synthetic_bad_length",
        "synthetic.columns.Sex",
        base64.b64encode(b"\x01\x00").decode(),
        r"expected 2 \* synthetic\.n",
    ),
    ("synthetic_unknown_code", "synthetic.columns.Sex", None, r"code that is not listed"),
    ("synthetic_not_base64", "synthetic.columns.Sex", "***", r"not valid base64"),
    ("record_count_mismatch", "aggregates.record_count", 25, r"aggregates\.record_count"),
    ("count_not_multiple_of_k", "aggregates.entries.0.1", 12, r"entries\[0\]\[1\].*multiple of k"),
    ("count_below_k", "aggregates.entries.0.1", 0, r"entries\[0\]\[1\]"),
    (
        "unknown_attribute_in_key",
        "aggregates.entries.0.0",
        f"Sex:{SECRET}",
        r"entries\[0\]\[0\]: names an attribute",
    ),
    (
        "non_canonical_key",
        "aggregates.entries.2.0",
        "Sex:F;Country:Nepal",
        r"entries\[2\]\[0\]: key is not canonical",
    ),
    (
        "key_longer_than_L",
        "aggregates.entries.2.0",
        f"Country:Nepal;Country:{SECRET};Sex:F",
        r"longer than meta\.L",
    ),
    (
        "bad_entry_shape",
        "aggregates.entries.0",
        ["Sex:F"],
        r"entries\[0\]: must be a \[key, protected_count\]",
    ),
    ("absolute_download", "downloads.0.href", "https://example.org/x.csv", r"downloads\[0\]\.href"),
    ("root_download", "downloads.0.href", "/etc/passwd", r"downloads\[0\]\.href"),
    ("bad_sha", "downloads.0.sha256", "ABC", r"downloads\[0\]\.sha256"),
    (
        "nan_metric",
        "stats.overall.coverage_pct",
        float("nan"),
        r"stats\.overall\.coverage_pct: must be a finite",
    ),
    (
        "missing_overall_metric",
        "stats.overall.mean_abs_error",
        _DELETE,
        r"stats\.overall\.mean_abs_error: missing",
    ),
    ("unknown_default_column", "default_columns", ["Sex", "Nope"], r"default_columns\[1\]"),
    (
        "group_unknown_attribute",
        "groups",
        [{"name": "g", "attributes": [f"Sex:{SECRET}"]}],
        r"groups\[0\]\.attributes\[0\]",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "pattern"), [c[1:] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES]
)
def test_invalid_payload_names_the_field_and_never_the_value(path: str, value: Any, pattern: str) -> None:
    payload = make_payload()
    if value is None and path == "synthetic.columns.Sex":
        value = _codes([1, 1, 7, 0])  # code 7 is not in the codebook
    _set(payload, path, value)
    with pytest.raises(ValueError, match=pattern) as err:
        compile_mapping(payload)
    assert SECRET not in str(err.value)
    assert str(err.value).startswith("explorer payload: payload.")


def test_duplicate_aggregate_key_is_rejected() -> None:
    payload = make_payload()
    payload["aggregates"]["entries"].append(["Sex:F", 10])
    with pytest.raises(ValueError, match="repeats a key of length 1"):
        compile_mapping(payload)


def test_dp_mode_accepts_any_non_negative_count() -> None:
    payload = make_payload()
    payload["meta"].update(privacy_mode="dp", dp={"epsilon": 4.0, "delta": None})
    payload["aggregates"]["entries"][0][1] = 3
    assert compile_mapping(payload)["meta"]["dp"] == {"epsilon": 4.0, "delta": None}


def test_multi_value_columns_get_an_automatic_group() -> None:
    payload = make_payload()
    extra = ["Exp_Labour:1", "Exp_Sexual:1"]
    attrs = sorted(
        [a for c in payload["columns"] for a in (v["attribute"] for v in c["values"])] + extra,
        key=lambda a: a.encode(),
    )
    rank = {a: i for i, a in enumerate(attrs)}
    for col in payload["columns"]:
        for v in col["values"]:
            v["rank"] = rank[v["attribute"]]
    for piece in ("Labour", "Sexual"):
        col_id = f"Exp_{piece}"
        payload["columns"].append(
            {
                "id": col_id,
                "source_column": "Exp",
                "kind": "multi",
                "labels": {"en": piece},
                "description": "",
                "values": [
                    {
                        "code": 1,
                        "value": "1",
                        "attribute": f"{col_id}:1",
                        "rank": rank[f"{col_id}:1"],
                        "labels": {},
                    }
                ],
            }
        )
        payload["synthetic"]["columns"][col_id] = _codes([1, 0, 0, 1])
    payload["default_columns"] = ["Sex", "Exp"]  # a multi-value source column resolves to its group
    model = compile_mapping(payload)
    group = next(v for v in model["visuals"] if v["id"] == "group:Exp")
    assert group["auto"] is True and len(group["attrs"]) == 2
    assert model["default_visuals"] == ["Sex", "group:Exp"]
    assert not any(
        v["id"].startswith("Exp_") for v in model["visuals"]
    )  # indicators only appear in the group


def test_everything_embedded_is_escaped() -> None:
    payload = make_payload()
    payload["meta"]["title"] = SCRIPTY
    payload["meta"]["description"] = "line\u2028separator & <!-- comment"
    payload["columns"][0]["labels"]["en"] = SCRIPTY
    html = render_html(compile_mapping(payload))
    assert SCRIPTY not in html
    assert "<!--" not in html.split("<body>", 1)[1]
    assert "<title>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>" in html
    data = _data_block(html)  # the block still parses and round-trips the original strings
    assert data["meta"]["title"] == {"en": SCRIPTY}  # a v1 str means the default language's text
    assert data["meta"]["description"] == {"en": "line\u2028separator & <!-- comment"}
    assert data["columns"][0]["labels"]["en"] == SCRIPTY


def test_json_for_script_escapes_markup_characters() -> None:
    text = json_for_script({"a": "</script>&<!--\u2028\u2029"})
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == {"a": "</script>&<!--\u2028\u2029"}


def test_page_is_offline_and_csp_pins_the_inline_blocks(tmp_path: Path) -> None:
    index = build_explorer(make_payload(), tmp_path / "explorer")
    html = index.read_text(encoding="utf-8")
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp
    policy = csp.group(1)
    assert "default-src 'none'" in policy and "img-src data: blob:" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(scripts) == 1 and len(styles) == 1
    for block in [*scripts, *styles]:
        digest = base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    # No external resources, modules, workers or fetches.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<script src" not in html and 'type="module"' not in html
    for banned in ("fetch(", "new Worker(", "import(", "XMLHttpRequest", "<canvas"):
        assert banned not in html
    assert len(re.findall(r'<script type="application/json"', html)) == 1


def test_written_file_is_readable_and_replaced_atomically(tmp_path: Path) -> None:
    out = tmp_path / "explorer"
    first = build_explorer(make_payload(), out)
    payload = make_payload()
    payload["meta"]["title"] = "Second"
    second = build_explorer(payload, out)
    assert first == second == out / "index.html"
    assert "<title>Second</title>" in second.read_text(encoding="utf-8")
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]  # no temp files left behind
    assert stat.S_IMODE(second.stat().st_mode) & 0o044 == 0o044  # group/other can read the published page


def test_invalid_payload_writes_nothing(tmp_path: Path) -> None:
    payload = copy.deepcopy(make_payload())
    del payload["stats"]
    with pytest.raises(ValueError, match=r"payload\.stats: missing field"):
        build_explorer(payload, tmp_path / "explorer")
    assert not (tmp_path / "explorer").exists()


def _with_v2_columns(payload: dict[str, Any]) -> dict[str, Any]:
    """Add a country column (alpha-2 codes) and two yes/no indicator columns gathered in a group."""
    added = [("Citizenship", ["NP", "IN"]), ("Ctl_Debt", ["1"]), ("Ctl_Threats", ["1"])]
    attrs = sorted(
        [v["attribute"] for c in payload["columns"] for v in c["values"]]
        + [f"{col}:{value}" for col, values in added for value in values],
        key=lambda a: a.encode(),
    )
    rank = {a: i for i, a in enumerate(attrs)}
    for col in payload["columns"]:
        for v in col["values"]:
            v["rank"] = rank[v["attribute"]]
    for col_id, values in added:
        payload["columns"].append(
            {
                "id": col_id,
                "source_column": col_id,
                "kind": "single",
                "labels": {"en": col_id},
                "descriptions": {"en": "d", "fr": "d fr"},
                "geo": "iso3166-1-alpha2" if col_id == "Citizenship" else None,
                "indicator": col_id.startswith("Ctl_"),
                "values": [
                    {"code": i + 1, "value": v, "attribute": f"{col_id}:{v}", "rank": rank[f"{col_id}:{v}"]}
                    for i, v in enumerate(values)
                ],
            }
        )
        payload["synthetic"]["columns"][col_id] = _codes([1, 0, 1, 1])
    payload["groups"] = [{"name": "Control", "attributes": ["Ctl_Debt:1", "Ctl_Threats:1"]}]
    return payload


def test_v2_layout_groups_indicators_and_maps_countries() -> None:
    payload = _with_v2_columns(make_payload())
    payload["default_columns"] = ["Sex", "Citizenship", "Ctl_Debt", "Ctl_Threats"]
    payload["pages"] = [{"name": "Control", "columns": ["Ctl_Debt", "Ctl_Threats"]}]
    model = compile_mapping(payload)
    # An indicator stands for its group; a country column brings its map first.
    assert model["default_visuals"] == ["Sex", "map:Citizenship", "Citizenship", "group:Control"]
    assert model["pages"][0]["visuals"] == ["group:Control"]
    citizenship = next(c for c in model["columns"] if c["id"] == "Citizenship")
    assert citizenship["geo"] == "iso3166-1-alpha2" and citizenship["descriptions"] == {
        "en": "d",
        "fr": "d fr",
    }
    sex = model["columns"][0]
    assert sex["descriptions"] == {"en": ""} and sex["ordinal"] is False and sex["indicator"] is False


def test_v2_texts_are_lang_maps_holding_the_default_language() -> None:
    payload = make_payload()
    payload["meta"]["title"] = {"en": "Title", "fr": "Titre"}
    assert compile_mapping(payload)["meta"]["title"] == {"en": "Title", "fr": "Titre"}
    payload["meta"]["title"] = {"fr": "Titre"}
    with pytest.raises(
        ValueError, match=r"payload\.meta\.title: must give a text for meta\.default_language"
    ):
        compile_mapping(payload)
    payload["meta"]["title"] = {"en": " "}
    with pytest.raises(ValueError, match=r"payload\.meta\.title\.en: must not be empty"):
        compile_mapping(payload)


def test_v2_agreement_rule_defaults_and_validation() -> None:
    payload = make_payload()
    assert compile_mapping(payload)["meta"]["agreement"] == {"interval": 5, "relative": 0.1, "absolute": 5}
    payload["meta"]["agreement"] = {"interval": 1, "relative": 0.2, "absolute": 3}
    assert compile_mapping(payload)["meta"]["agreement"] == {"interval": 1, "relative": 0.2, "absolute": 3}
    payload["meta"]["agreement"]["relative"] = -1
    with pytest.raises(ValueError, match=r"payload\.meta\.agreement\.relative: must be a number >= 0"):
        compile_mapping(payload)


V2_INVALID_CASES = [
    (
        "geo_not_alpha2",
        lambda p: p["columns"][1].update(geo="iso3166-1-alpha2"),
        r"columns\[1\]\.values: a country",
    ),
    ("geo_unknown", lambda p: p["columns"][0].update(geo="iso3166-1-alpha3"), r"columns\[0\]\.geo: must be"),
    (
        "indicator_two_values",
        lambda p: p["columns"][0].update(indicator=True),
        r"columns\[0\]\.values: an indicator",
    ),
    (
        "indicator_not_bool",
        lambda p: p["columns"][0].update(indicator="yes"),
        r"columns\[0\]\.indicator: must be",
    ),
    (
        "ordinal_codes_descending",
        lambda p: p["columns"][0].update(ordinal=True, values=p["columns"][0]["values"][::-1]),
        r"columns\[0\]\.values: an ordinal column",
    ),
    (
        "download_kind",
        lambda p: p["downloads"][0].update(kind="other"),
        r"downloads\[0\]\.kind: must be one of",
    ),
    (
        "download_without_kind_or_description",
        lambda p: p["downloads"][0].pop("description"),
        r"downloads\[0\]\.kind: missing field",
    ),
    (
        "multi_max_below_min",
        lambda p: p["stats"].update(
            multi={
                "min_length": 2,
                "max_length": 1,
                "combinations": 0,
                "mean_abs_error": None,
                "mean_proportional_error": None,
            }
        ),
        r"stats\.multi\.max_length: must be >= 2",
    ),
    (
        "agreement_more_than_compared",
        lambda p: p["stats"].update(
            agreement={"by_length": [], "overall": {"compared": 1, "agreeing": 2, "agreeing_pct": 200.0}}
        ),
        r"stats\.agreement\.overall\.agreeing: must be <= compared",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "pattern"), [c[1:] for c in V2_INVALID_CASES], ids=[c[0] for c in V2_INVALID_CASES]
)
def test_invalid_v2_fields_name_the_field_and_never_the_value(mutate: Any, pattern: str) -> None:
    payload = make_payload()
    mutate(payload)
    with pytest.raises(ValueError, match=pattern) as info:
        compile_mapping(payload)
    assert SECRET not in str(info.value)


def test_v2_statistics_and_download_kinds_compile() -> None:
    payload = make_payload()
    payload["downloads"][0] = {k: v for k, v in payload["downloads"][0].items() if k != "description"}
    payload["downloads"][0]["kind"] = "synthetic_microdata"
    multi = {
        "min_length": 2,
        "max_length": 2,
        "combinations": 1,
        "mean_abs_error": 1.5,
        "mean_proportional_error": 0.3,
    }
    payload["stats"]["multi"] = multi
    payload["stats"]["agreement"] = {
        "by_length": [{"length": 1, "compared": 2, "agreeing": 1, "agreeing_pct": 50.0}],
        "overall": {"compared": 2, "agreeing": 1, "agreeing_pct": 50.0},
    }
    model = compile_mapping(payload)
    assert (
        model["downloads"][0]["kind"] == "synthetic_microdata" and model["downloads"][0]["description"] == ""
    )
    assert model["stats"]["multi"] == multi
    assert model["stats"]["agreement"]["by_length"][0]["length"] == 1
    assert compile_mapping(make_payload())["stats"]["multi"] is None  # older evaluation.json: absent
