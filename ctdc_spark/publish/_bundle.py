"""The documents that make a release bundle explain itself: README (one per language), codebook, LICENSE.

A person who only downloads the folder must learn from it what each file is, which number to
cite, what the guarantee means and what a blank cell means, in their language. Sentences come
from the string tables in ``locales/`` (``bundle/<lang>.json`` for the README, and the explorer's
``ui/<lang>.json`` for the file descriptions and caveats, so the page and the README say the same
thing); numbers are formatted for each language with Babel (CLDR data), and country codes are
named with Babel's territory names, as the page names them with the browser's
``Intl.DisplayNames``.

Pure Python: the publish stage passes in the facts (no Spark here).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from babel import Locale
from babel.numbers import format_decimal

from ctdc_spark.io.files import SHA256SUMS, atomic_text_writer
from ctdc_spark.publish._explorer.model import DownloadKind, DpParameters

__all__ = [
    "BUNDLE_DOCUMENTS",
    "CODEBOOK",
    "LICENSE_FILE",
    "README",
    "CodebookValue",
    "ReadmeFacts",
    "country_name",
    "readme_name",
    "ui_strings",
    "write_bundle_documents",
]

README = "README.md"
CODEBOOK = "codebook.csv"
LICENSE_FILE = "LICENSE"
#: Download kind of each bundle document (the explorer's ``download_<kind>`` sentence describes it).
BUNDLE_DOCUMENTS: dict[str, DownloadKind] = {README: "readme", CODEBOOK: "codebook", LICENSE_FILE: "licence"}
EXPLORER_PAGE = "explorer/index.html"
METADATA = "metadata.json"

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def _table(kind: str, language: str) -> Mapping[str, str]:
    path = resources.files("ctdc_spark.publish").joinpath("locales", kind, f"{language}.json")
    data: Mapping[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def ui_strings(language: str) -> Mapping[str, str]:
    """The explorer's string table of ``language`` (file descriptions, caveats, ...)."""
    return _table("ui", language)


def _fill(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def country_name(code: str, language: str) -> str:
    """The CLDR name of an ISO 3166-1 alpha-2 code in ``language``, or the code when CLDR has none.

    Example:
        >>> country_name("DE", "fr"), country_name("XX", "en")
        ('Allemagne', 'XX')
    """
    name = Locale.parse(language).territories.get(code.upper())
    return str(name) if name else code


def readme_name(language: str, default_language: str) -> str:
    """``README.md`` for the release's default language, ``README.<lang>.md`` for the others."""
    return README if language == default_language else f"README.{language}.md"


@dataclass(frozen=True)
class CodebookValue:
    """One released attribute of the codebook."""

    column: str
    value: str
    attribute: str
    column_labels: Mapping[str, str]
    value_labels: Mapping[str, str]
    official_count: int | None


@dataclass(frozen=True)
class ReadmeFacts:
    """What the README states about one release."""

    title: Mapping[str, str]
    description: Mapping[str, str]
    citation: Mapping[str, str]
    licence: Mapping[str, str]
    languages: tuple[str, ...]
    default_language: str
    k: int
    L: int
    dp: DpParameters | None
    synthetic_records: int
    people: int
    files: Sequence[tuple[str, str]]  # (file name, download kind), in the order the README lists them


def _number(value: float, language: str, digits: int = 0) -> str:
    return str(
        format_decimal(
            round(value, digits), format=f"#,##0{'.' + '0' * digits if digits else ''}", locale=language
        )
    )


def _readme(facts: ReadmeFacts, language: str) -> str:
    text = _table("bundle", language)
    ui = ui_strings(language)
    k = _number(facts.k, language)
    values = {
        "title": facts.title.get(language, ""),
        "k": k,
        "L": _number(facts.L, language),
        "synthetic": _number(facts.synthetic_records, language),
        "people": _number(facts.people, language),
        "ratio": _number(facts.synthetic_records / facts.people, language, 2) if facts.people else "–",
        "epsilon": "" if facts.dp is None else _number(float(facts.dp.epsilon), language, 2),
        "delta": "" if facts.dp is None or facts.dp.delta is None else f"{facts.dp.delta:.3g}",
    }

    def say(key: str) -> str:
        return _fill(text[key], values)

    listed = [
        *((name, _fill(ui[f"download_{kind}"], values)) for name, kind in facts.files),
        (EXPLORER_PAGE, say("file_explorer")),
        (METADATA, say("file_metadata")),
        (SHA256SUMS, say("checksums")),
    ]
    lines = [f"# {values['title']}", ""]
    if facts.description.get(language):
        lines += [facts.description[language], ""]
    lines += [say("readme_intro"), "", f"## {say('files_heading')}", ""]
    lines += [f"| {say('file_column')} | {say('what_column')} |", "|---|---|"]
    lines += [f"| `{name}` | {what} |" for name, what in listed]
    lines += ["", say("codebook_intro"), ""]
    lines += [f"## {say('cite_heading')}", "", say("cite_dp" if facts.dp else "cite_k"), ""]
    lines += [say("cite_synthetic"), ""]
    lines += [f"## {say('guarantee_heading')}", "", say("guarantee_dp" if facts.dp else "guarantee_k"), ""]
    lines += [f"## {say('records_heading')}", "", say("records_body"), "", say("blank_cells"), ""]
    lines += [f"## {say('caveats_heading')}", ""]
    lines += [
        f"- {_fill(ui[key], values)}"
        for key in (
            "caveat_identified",
            "caveat_prevalence",
            "caveat_sample",
            "caveat_synthetic",
            "caveat_small",
        )
    ]
    if facts.citation.get(language):
        lines += ["", f"## {say('citation_heading')}", "", facts.citation[language]]
    lines += ["", f"## {say('licence_heading')}", "", say("licence_see")]
    others = [lang for lang in facts.languages if lang != language]
    if others:
        lines += ["", f"## {say('languages_heading')}", ""]
        lines += [
            f"- [{_table('bundle', lang)['language_name']}]({readme_name(lang, facts.default_language)})"
            for lang in others
        ]
    if Locale.parse(language).character_order == "right-to-left":
        # Markdown viewers lay text out left to right unless the block says otherwise.
        lines = [f'<div dir="rtl" lang="{language}">', "", *lines, "", "</div>"]
    return "\n".join(lines) + "\n"


def _licence(facts: ReadmeFacts) -> str:
    ordered = [facts.default_language, *(lang for lang in facts.languages if lang != facts.default_language)]
    texts = [(lang, facts.licence[lang]) for lang in ordered if facts.licence.get(lang)]
    if len({t for _, t in texts}) <= 1:
        return (texts[0][1] if texts else "") + "\n"
    return "\n\n".join(f"[{_table('bundle', lang)['language_name']}]\n{text}" for lang, text in texts) + "\n"


def _codebook(values: Sequence[CodebookValue], languages: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "column",
            *(f"column_label_{lang}" for lang in languages),
            "value",
            *(f"value_label_{lang}" for lang in languages),
            "code",
            "official_count",
        ]
    )
    for v in values:
        writer.writerow(
            [
                v.column,
                *(v.column_labels.get(lang, "") for lang in languages),
                v.value,
                *(v.value_labels.get(lang, "") for lang in languages),
                v.attribute,
                "" if v.official_count is None else v.official_count,
            ]
        )
    return out.getvalue()


def write_bundle_documents(folder: Path, facts: ReadmeFacts, codebook: Sequence[CodebookValue]) -> list[Path]:
    """Write the READMEs (one per language), ``codebook.csv`` and ``LICENSE`` into ``folder``.

    Returns:
        The files written, the default language's README first.
    """
    written = []
    documents = [
        (readme_name(lang, facts.default_language), _readme(facts, lang)) for lang in facts.languages
    ]
    documents.sort(key=lambda d: d[0] != README)
    documents += [(CODEBOOK, _codebook(codebook, facts.languages)), (LICENSE_FILE, _licence(facts))]
    for name, content in documents:
        with atomic_text_writer(folder / name) as out:
            out.write(content)
        written.append(folder / name)
    return written
