"""A tiny, fully known explorer release (k = 5, L = 3) built from explicit records.

Besides the five source columns it has derived ones that exercise payload contract v2: ``Citizenship``
(ISO 3166-1 alpha-2 codes, ``geo``), three yes/no ``Control_*`` columns (``indicator``) gathered in the group
"Means of control", and ``AgeGroup`` marked ``ordinal``. Every text is translated into all five languages.

Everything the page shows can be recomputed here by brute force: the reportable aggregates (every combination
of length <= L of the "sensitive" records, counts >= k rounded down to multiples of k, by the reference
implementation in :mod:`tests.oracle`), the synthetic counts of any selection, the official state of any bar
and the public fidelity statistics. The browser tests compare the page's DOM with these numbers, so the page's
bitsets, caches and binary search are checked against code that shares nothing with them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctdc_spark.publish._explorer import EMPTY_STATS, ExplorerPayload, build_explorer, compile_payload
from tests import oracle
from tests.oracle import CellRules, column_of, combination_string

K = 5
L = 3
COLUMNS = ("Gender", "AgeGroup", "Country", "Exploitation", "Year")
MULTI = {"Exploitation": ";"}
LANGUAGES = ("en", "fr", "es", "de", "ar")
SCRIPT_VALUE = "</script><b>x</b>"  # must show as text, never as markup

# (Gender, AgeGroup, Country, Exploitation (multi, ";"), Year, copies); "" = empty cell.
SENSITIVE: tuple[tuple[str, str, str, str, str, int], ...] = (
    ("Female", "18-29", "Nepal", "Sexual;Domestic", "2020", 1310),
    ("Female", "30+", "Nepal", "Domestic", "2021", 142),
    ("Male", "18-29", "Côte d'Ivoire", "Labour", "2020", 205),
    ("Male", "30+", "Côte d'Ivoire", "Labour", "2019", 96),
    ("Female", "0-17", "Côte d'Ivoire", "Sexual", "2019", 57),
    ("Male", "0-17", SCRIPT_VALUE, "Labour;Sexual", "2021", 23),
    ("", "18-29", "Nepal", "", "2020", 31),
    ("Female", "18-29", "A,B", "Domestic", "", 12),
    ("Female", "30+", "Côte d'Ivoire", "Labour", "2018", 6),
    ("Male", "30+", "A,B", "Sexual", "2021", 3),
    ("Female", "0-17", "Nepal", "Labour", "2019", 2),
    ("Male", "0-17", "Nepal", "Domestic", "2020", 4),
    # Ten more countries make Country a high-cardinality column (in-chart value search, S9).
    *(("Male", "30+", f"Country {i:02d}", "Labour", "2019", 5) for i in range(10)),
)

SYNTHETIC: tuple[tuple[str, str, str, str, str, int], ...] = (
    ("Female", "18-29", "Nepal", "Sexual;Domestic", "2020", 1305),
    ("Female", "30+", "Nepal", "Domestic", "2021", 150),
    ("Male", "18-29", "Côte d'Ivoire", "Labour", "2020", 199),
    ("Male", "30+", "Côte d'Ivoire", "Labour", "2019", 101),
    ("Female", "0-17", "Côte d'Ivoire", "Sexual", "2019", 55),
    ("Male", "0-17", SCRIPT_VALUE, "Labour;Sexual", "2021", 21),
    ("", "18-29", "Nepal", "", "2020", 29),
    ("Female", "18-29", "A,B", "Domestic", "", 14),
    ("Male", "30+", "Nepal", "Sexual", "2021", 2),
    *(("Male", "30+", f"Country {i:02d}", "Labour", "2019", 5 + i % 3) for i in range(0, 10, 2)),
)

# Derived columns: citizenship (ISO alpha-2) from the country, means of control from the exploitation type.
CITIZENSHIP = {"Nepal": "NP", "Côte d'Ivoire": "CI", SCRIPT_VALUE: "IN", "A,B": "BD"}
OTHER_CITIZENSHIPS = ("PH", "NG", "TH", "VN", "KH")
CONTROL_OF_EXPLOITATION = {"Labour": "Debt", "Domestic": "Isolation", "Sexual": "Threats"}
CONTROLS = ("Debt", "Isolation", "Threats")
CONTROL_GROUP = "Means of control"


def _lang(en: str, fr: str, es: str, de: str, ar: str) -> dict[str, str]:
    return dict(zip(LANGUAGES, (en, fr, es, de, ar), strict=True))


LABELS = {
    "Gender": _lang("Gender", "Genre", "Género", "Geschlecht", "الجنس"),
    "AgeGroup": _lang("Age group", "Tranche d’âge", "Grupo de edad", "Altersgruppe", "الفئة العمرية"),
    "Country": _lang(
        "Country of exploitation",
        "Pays d’exploitation",
        "País de explotación",
        "Ausbeutungsland",
        "بلد الاستغلال",
    ),
    "Year": _lang(
        "Year of registration",
        "Année d’enregistrement",
        "Año de registro",
        "Registrierungsjahr",
        "سنة التسجيل",
    ),
    "Citizenship": _lang("Citizenship", "Nationalité", "Nacionalidad", "Staatsangehörigkeit", "الجنسية"),
    "Control_Debt": _lang(
        "Debt bondage",
        "Servitude pour dettes",
        "Servidumbre por deudas",
        "Schuldknechtschaft",
        "عبودية الدين",
    ),
    "Control_Isolation": _lang("Isolation", "Isolement", "Aislamiento", "Isolation", "العزل"),
    "Control_Threats": _lang("Threats", "Menaces", "Amenazas", "Drohungen", "التهديد"),
}
VALUE_LABELS = {
    ("Gender", "Female"): _lang("Female", "Femme", "Mujer", "Weiblich", "أنثى"),
    ("Gender", "Male"): _lang("Male", "Homme", "Hombre", "Männlich", "ذكر"),
    ("AgeGroup", "0-17"): _lang("0–17", "0–17", "0–17", "0–17", "0–17"),
    ("AgeGroup", "18-29"): _lang("18–29", "18–29", "18–29", "18–29", "18–29"),
    ("AgeGroup", "30+"): _lang("30 and over", "30 ans et plus", "30 y más", "30 und älter", "30 فأكثر"),
    ("Country", "Nepal"): _lang("Nepal", "Népal", "Nepal", "Nepal", "نيبال"),
    ("Country", "Côte d'Ivoire"): _lang(
        "Côte d'Ivoire", "Côte d’Ivoire", "Costa de Marfil", "Elfenbeinküste", "كوت ديفوار"
    ),
}
INDICATOR_LABELS = {
    "Sexual": _lang(
        "Sexual exploitation",
        "Exploitation sexuelle",
        "Explotación sexual",
        "Sexuelle Ausbeutung",
        "الاستغلال الجنسي",
    ),
    "Labour": _lang("Forced labour", "Travail forcé", "Trabajo forzoso", "Zwangsarbeit", "العمل القسري"),
    "Domestic": _lang(
        "Domestic servitude",
        "Servitude domestique",
        "Servidumbre doméstica",
        "Häusliche Knechtschaft",
        "العبودية المنزلية",
    ),
}
GROUP_LABELS = {
    "Exploitation": _lang(
        "Type of exploitation",
        "Type d’exploitation",
        "Tipo de explotación",
        "Art der Ausbeutung",
        "نوع الاستغلال",
    ),
    CONTROL_GROUP: _lang(
        "Means of control", "Moyens de contrôle", "Medios de control", "Kontrollmittel", "وسائل السيطرة"
    ),
    "Key facts": _lang("Key facts", "Faits clés", "Datos clave", "Eckdaten", "حقائق رئيسية"),
}


def citizenship(country: str) -> str:
    if country in CITIZENSHIP:
        return CITIZENSHIP[country]
    return OTHER_CITIZENSHIPS[sum(country.encode()) % len(OTHER_CITIZENSHIPS)]


CELL_RULES = CellRules(multi_value_columns=MULTI)


def record_attributes(row: Sequence[Any]) -> frozenset[str]:
    """The attributes ("col:value") of one record; multi-value cells become indicator columns.

    Besides the SDS attributes of the five source columns, each record gets the derived ones: its
    citizenship and one means of control per exploitation type.
    """
    attrs = set(CELL_RULES.record(COLUMNS, row[:5]))
    exploitation = row[COLUMNS.index("Exploitation")]
    attrs.update(
        f"Control_{CONTROL_OF_EXPLOITATION[p]}:1" for p in exploitation.split(MULTI["Exploitation"]) if p
    )
    if row[2]:
        attrs.add(f"Citizenship:{citizenship(row[2])}")
    return frozenset(attrs)


def expand(rows: Iterable[tuple[str, str, str, str, str, int]]) -> list[frozenset[str]]:
    """One attribute set per record (each spec row repeated `copies` times)."""
    out: list[frozenset[str]] = []
    for row in rows:
        out.extend([record_attributes(row)] * row[5])
    return out


def count_combinations(records: Sequence[frozenset[str]], max_length: int) -> dict[str, int]:
    """The count of every combination of length 1..max_length over the records, by its canonical key."""
    return {combination_string(c): n for c, n in oracle.count_combinations(records, max_length).items()}


@dataclass
class Fixture:
    """A built release: paths, the payload and brute-force oracles for what the page must show."""

    root: Path
    index: Path
    payload: dict[str, Any]
    sensitive: list[frozenset[str]]
    synthetic: list[frozenset[str]]
    aggregates: dict[str, int]
    files: dict[str, Path]

    @property
    def url(self) -> str:
        return self.index.as_uri()

    def model(self) -> dict[str, Any]:
        """The compiled model the page embeds."""
        return compile_payload(ExplorerPayload.from_mapping(self.payload))

    def synthetic_count(self, selection: Sequence[str], attribute: str) -> int:
        """Rows matching every selected attribute in OTHER columns, and `attribute`."""
        col = column_of(attribute)
        return oracle.support(self.synthetic, {a for a in selection if column_of(a) != col} | {attribute})

    def matching(self, selection: Sequence[str]) -> int:
        return oracle.support(self.synthetic, selection)

    def official(self, selection: Sequence[str], attribute: str | None) -> tuple[str, int | None]:
        """(state, count) of the bar `attribute` under `selection` (or of the selection itself)."""
        if attribute is None:
            key_attrs = set(selection)
        else:
            col = column_of(attribute)
            key_attrs = {a for a in selection if column_of(a) != col} | {attribute}
        if not key_attrs:
            return "value", self.payload["aggregates"]["record_count"]
        if len(key_attrs) > L:
            return "na", None
        count = self.aggregates.get(combination_string(key_attrs))
        return ("lt_k", None) if count is None else ("value", count)

    def all_attributes(self) -> list[str]:
        return [v["attribute"] for c in self.payload["columns"] for v in c["values"]]


def _codebook(sensitive: list[frozenset[str]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    present = sorted({a for rec in sensitive for a in rec}, key=lambda a: a.encode("utf-8"))
    rank = {a: i for i, a in enumerate(present)}
    columns: list[dict[str, Any]] = []
    for source in (*COLUMNS, "Citizenship", *(f"Control_{c}" for c in CONTROLS)):
        if source.startswith("Control_"):
            columns.append(
                {
                    "id": source,
                    "source_column": source,
                    "kind": "single",
                    "indicator": True,
                    "labels": LABELS[source],
                    "descriptions": {lang: f"{LABELS[source][lang]} (1)" for lang in LANGUAGES},
                    "values": [
                        {
                            "code": 1,
                            "value": "1",
                            "attribute": f"{source}:1",
                            "rank": rank[f"{source}:1"],
                            "labels": {},
                        }
                    ],
                }
            )
        elif source in MULTI:
            ids = sorted({column_of(a) for a in present if column_of(a).startswith(source + "_")})
            for col_id in ids:
                piece = col_id[len(source) + 1 :]
                columns.append(
                    {
                        "id": col_id,
                        "source_column": source,
                        "kind": "multi",
                        "labels": INDICATOR_LABELS.get(piece, {}),
                        "descriptions": {lang: INDICATOR_LABELS[piece][lang] for lang in LANGUAGES},
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
        else:
            values = sorted(a.split(":", 1)[1] for a in present if column_of(a) == source)
            columns.append(
                {
                    "id": source,
                    "source_column": source,
                    "kind": "single",
                    "labels": LABELS.get(source, {}),
                    # v1 form (one str) for Gender, lang maps elsewhere: both must keep working.
                    **(
                        {"description": 'Codebook description of Gender with <b>markup</b> & "quotes"'}
                        if source == "Gender"
                        else {
                            "descriptions": {lang: f"{LABELS[source][lang]} ({source})" for lang in LANGUAGES}
                        }
                    ),
                    "ordinal": source == "AgeGroup",  # "0-17" < "18-29" < "30+" in code order
                    "geo": "iso3166-1-alpha2" if source == "Citizenship" else None,
                    "values": [
                        {
                            "code": i + 1,
                            "value": v,
                            "attribute": f"{source}:{v}",
                            "rank": rank[f"{source}:{v}"],
                            "labels": VALUE_LABELS.get((source, v), {}),
                        }
                        for i, v in enumerate(values)
                    ],
                }
            )
    return columns, rank


def _encode_synthetic(columns: list[dict[str, Any]], synthetic: list[frozenset[str]]) -> dict[str, str]:
    out = {}
    for col in columns:
        code_of = {v["attribute"]: v["code"] for v in col["values"]}
        codes = np.zeros(len(synthetic), dtype="<u2")
        for i, rec in enumerate(synthetic):
            for attr in rec:
                if attr in code_of:
                    codes[i] = code_of[attr]
        out[col["id"]] = base64.b64encode(codes.tobytes()).decode("ascii")
    return out


def agrees(syn: int, official: int, interval: int) -> bool:
    """The agreement rule with the default tolerances (10 % of the official count, at least k)."""
    distance = max(official - syn, syn - (official + interval - 1), 0)
    return distance <= max(K, 0.1 * official)


def _stats(aggregates: dict[str, int], synthetic: list[frozenset[str]]) -> dict[str, Any]:
    """Public-only fidelity statistics: synthetic combination counts vs the reportable aggregates."""
    syn = count_combinations(synthetic, L)
    by_length = []
    abs_all: list[float] = []
    prop_all: list[float] = []
    multi_abs: list[float] = []
    multi_prop: list[float] = []
    agreement_rows = []
    for length in range(1, L + 1):
        off = {k: v for k, v in aggregates.items() if k.count(";") + 1 == length}
        syn_l = {k: v for k, v in syn.items() if k.count(";") + 1 == length}
        common = off.keys() & syn_l.keys()
        errors = [syn_l[c] - off[c] for c in common]
        proportional = [abs(syn.get(c, 0) - v) / v for c, v in off.items()]
        if length >= 2:
            multi_abs += [abs(syn.get(c, 0) - v) for c, v in off.items()]
            multi_prop += proportional
        agreeing = sum(agrees(syn.get(c, 0), v, K) for c, v in off.items())
        agreement_rows.append(
            {
                "length": length,
                "compared": len(off),
                "agreeing": agreeing,
                "agreeing_pct": 100 * agreeing / len(off) if off else None,
            }
        )
        by_length.append(
            {
                "length": length,
                "official_combinations": len(off),
                "synthetic_combinations": len(syn_l),
                "common": len(common),
                "coverage_pct": 100 * len(common) / len(off) if off else None,
                "not_in_official_pct": 100 * len(syn_l.keys() - off.keys()) / len(syn_l) if syn_l else None,
                "mean_abs_error": float(np.mean(np.abs(errors))) if errors else None,
                "mean_signed_error": float(np.mean(errors)) if errors else None,
                "mean_proportional_error": float(np.mean(proportional)) if proportional else None,
            }
        )
    by_bucket = []
    low = K
    top = max(aggregates.values())
    while low <= top:
        high = 2 * low - 1
        keys = [k for k, v in aggregates.items() if low <= v <= high]
        abs_err = [abs(syn.get(k, 0) - aggregates[k]) for k in keys]
        prop = [abs(syn.get(k, 0) - aggregates[k]) / aggregates[k] for k in keys]
        abs_all += abs_err
        prop_all += prop
        by_bucket.append(
            {
                "low": low,
                "high": high,
                "combinations": len(keys),
                "mean_abs_error": float(np.mean(abs_err)) if keys else None,
                "mean_proportional_error": float(np.mean(prop)) if keys else None,
            }
        )
        low *= 2
    official_total = len(aggregates)
    syn_total = len(syn)
    return {
        "by_length": by_length,
        "by_bucket": by_bucket,
        "overall": {
            "mean_abs_error": float(np.mean(abs_all)),
            "mean_proportional_error": float(np.mean(prop_all)),
            "coverage_pct": 100 * len(aggregates.keys() & syn.keys()) / official_total,
            "not_in_official_pct": 100 * len(syn.keys() - aggregates.keys()) / syn_total,
        },
        "multi": {
            "min_length": 2,
            "max_length": L,
            "combinations": len(multi_prop),
            "mean_abs_error": float(np.mean(multi_abs)),
            "mean_proportional_error": float(np.mean(multi_prop)),
        },
        "agreement": {
            "by_length": agreement_rows,
            "overall": {
                "compared": sum(r["compared"] for r in agreement_rows),
                "agreeing": sum(r["agreeing"] for r in agreement_rows),
                "agreeing_pct": 100
                * sum(r["agreeing"] for r in agreement_rows)
                / sum(r["compared"] for r in agreement_rows),
            },
        },
    }


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    lines = [",".join(header)]
    for row in rows:
        lines.append(
            ",".join(
                '"' + str(c).replace('"', '""') + '"' if any(ch in str(c) for ch in ',"\n') else str(c)
                for c in row
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _pseudo_noise(key: str) -> int:
    """Deterministic stand-in for DP noise (-2..2), so the DP fixture's numbers stay known."""
    return sum(key.encode("utf-8")) % 5 - 2


DEFAULT_TITLE = "CTDC test release"
TITLES = _lang(
    DEFAULT_TITLE,
    "Publication de test CTDC",
    "Publicación de prueba CTDC",
    "CTDC-Testveröffentlichung",
    "إصدار CTDC التجريبي",
)


def build_fixture(
    root: Path,
    *,
    with_stats: bool = True,
    title: str = DEFAULT_TITLE,
    privacy_mode: str = "k_anonymity",
    extra_countries: int = 0,
) -> Fixture:
    """Write a release (two downloadable files and explorer/index.html) under `root`.

    ``privacy_mode="dp"`` publishes noisy, unrounded counts (deterministic pseudo-noise) instead of
    k-rounded ones, as a DP release would. ``extra_countries`` adds that many more countries (5 records
    each, in both datasets) to make a very long chart.
    """
    root.mkdir(parents=True, exist_ok=True)
    extra = tuple(
        ("Female", "18-29", f"Extra {i:03d}", "Domestic", "2020", 5) for i in range(extra_countries)
    )
    sensitive = expand(SENSITIVE + extra)
    synthetic = expand(SYNTHETIC + extra)
    combos = count_combinations(sensitive, L)
    if privacy_mode == "dp":
        noisy = {key: count + _pseudo_noise(key) for key, count in combos.items()}
        aggregates = {key: count for key, count in noisy.items() if count >= K}
    else:
        aggregates = oracle.protect(combos, K)
    columns, _ = _codebook(sensitive)

    files = {
        "synthetic_microdata.csv": root / "synthetic_microdata.csv",
        "reportable_aggregates.csv": root / "reportable_aggregates.csv",
    }
    _write_csv(
        files["synthetic_microdata.csv"], COLUMNS, [r[:5] for r in SYNTHETIC + extra for _ in range(r[5])]
    )
    _write_csv(
        files["reportable_aggregates.csv"],
        ("selections", "length", "protected_count"),
        sorted(((k, k.count(";") + 1, v) for k, v in aggregates.items()), key=lambda r: (r[1], -r[2], r[0])),
    )
    downloads = [
        {
            "name": name,
            "href": f"../{name}",
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "kind": "synthetic_microdata" if name.startswith("synthetic") else "aggregates_csv",
        }
        for name, path in files.items()
    ]
    payload: dict[str, Any] = {
        "meta": {
            "title": TITLES if title == DEFAULT_TITLE else {lang: title for lang in LANGUAGES},
            "description": _lang(
                "A small test release with known counts.",
                "Une petite publication de test aux chiffres connus.",
                "Una pequeña publicación de prueba con cifras conocidas.",
                "Eine kleine Testveröffentlichung mit bekannten Zahlen.",
                "إصدار تجريبي صغير بأعداد معروفة.",
            ),
            "dataset_version": "v2025-03",
            "run_id": "run-test-1",
            "created": "2025-03-01T12:00:00Z",
            "pipeline_version": "0.1.0",
            "privacy_mode": privacy_mode,
            "k": K,
            "L": L,
            "dp": {"epsilon": 4.0, "delta": 1e-6} if privacy_mode == "dp" else None,
            "synthesis_mode": "row_seeded",
            "synthetic_records": len(synthetic),
            "reportable_record_count": oracle.rounded_down(len(sensitive), K),
            "licence": _lang(
                "Creative Commons Attribution 4.0",
                "Creative Commons Attribution 4.0",
                "Creative Commons Reconocimiento 4.0",
                "Creative Commons Namensnennung 4.0",
                "المشاع الإبداعي، نسب المصنَّف 4.0",
            ),
            "citation": _lang(
                "Test Collaborative (2025). CTDC test release v2025-03.",
                "Test Collaborative (2025). Publication de test CTDC v2025-03.",
                "Test Collaborative (2025). Publicación de prueba CTDC v2025-03.",
                "Test Collaborative (2025). CTDC-Testveröffentlichung v2025-03.",
                "Test Collaborative (2025). الإصدار التجريبي CTDC v2025-03.",
            ),
            "languages": ["en", "fr", "es", "de", "ar"],
            "default_language": "en",
            "small_count_threshold": None,
            "record_noun": _lang(
                "identified victims",
                "victimes identifiées",
                "víctimas identificadas",
                "identifizierte Betroffene",
                "الضحايا المحدَّدين",
            ),
        },
        "columns": columns,
        # Control_Debt stands for its group: the default grid gets one "Means of control" chart.
        "default_columns": [
            "Gender",
            "AgeGroup",
            "Country",
            "Exploitation",
            "Year",
            "Citizenship",
            "Control_Debt",
        ],
        "pages": [
            {
                "name": "Demographics",
                "columns": ["Gender", "AgeGroup"],
                "labels": _lang(
                    "Demographics", "Démographie", "Demografía", "Demografie", "البيانات الديمغرافية"
                ),
            },
            {
                "name": "Exploitation and time",
                "columns": ["Exploitation", "Year"],
                "labels": _lang(
                    "Exploitation and time",
                    "Exploitation et période",
                    "Explotación y periodo",
                    "Ausbeutung und Zeit",
                    "الاستغلال والزمن",
                ),
            },
            {
                "name": "Control",
                "columns": [f"Control_{c}" for c in CONTROLS],
                "labels": _lang("Control", "Contrôle", "Control", "Kontrolle", "السيطرة"),
            },
        ],
        "groups": [
            {
                "name": "Key facts",
                "attributes": ["Gender:Female", "AgeGroup:0-17", "Exploitation_Sexual:1"],
                "labels": GROUP_LABELS["Key facts"],
            },
            {
                "name": "Exploitation",
                "attributes": [f"Exploitation_{p}:1" for p in ("Domestic", "Labour", "Sexual")],
                "labels": GROUP_LABELS["Exploitation"],
            },
            {
                "name": CONTROL_GROUP,
                "attributes": [f"Control_{c}:1" for c in CONTROLS],
                "labels": GROUP_LABELS[CONTROL_GROUP],
            },
        ],
        "synthetic": {"n": len(synthetic), "columns": _encode_synthetic(columns, synthetic)},
        "aggregates": {
            "record_count": oracle.rounded_down(len(sensitive), K),
            "entries": [[key, count] for key, count in aggregates.items()],
        },
        "stats": _stats(aggregates, synthetic) if with_stats else dataclasses.asdict(EMPTY_STATS),
        "downloads": downloads,
    }
    # Round-trip through JSON, as the publish stage would hand it over.
    payload = json.loads(json.dumps(payload))
    index = build_explorer(payload, root / "explorer")
    return Fixture(
        root=root,
        index=index,
        payload=payload,
        sensitive=sensitive,
        synthetic=synthetic,
        aggregates=aggregates,
        files=files,
    )
