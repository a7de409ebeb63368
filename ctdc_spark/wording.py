"""Reader-facing wording of a release in every configured language, with visible fallbacks.

Every text a reader sees (titles, column and value labels, page and group names) is configured
per language in the ``explorer`` section. Where a language lacks a text, the release shows the
English one (or, with no English either, the column name or value itself) and the key is recorded,
so the publish stage can warn about it and ``ctdc-spark validate`` can list it: a fallback is
never silent. Value labels are recorded per column with a count, never by value, because values
come from the data and must not reach logs.

Pure Python (no Spark), so ``validate`` can use it.

Example:
    >>> wording = Wording(("en", "de"))
    >>> wording.text("title", {"en": "Cases", "de": "Fälle"})
    {'en': 'Cases', 'de': 'Fälle'}
    >>> wording.label("column_labels", {"en": {"gender": "Gender"}}, "gender", "gender")
    {'en': 'Gender', 'de': 'Gender'}
    >>> wording.missing_by_language()
    {'de': ['explorer.column_labels.de.gender']}
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ctdc_spark.config import ExplorerConfig, LangTable, LangText

__all__ = ["ENGLISH", "Wording", "config_wording", "is_language_neutral"]

#: The reference language: every fallback shows the English text.
ENGLISH = "en"

_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def is_language_neutral(value: str) -> bool:
    """A value that reads the same in every language (a number such as a year), needing no label."""
    return bool(_NUMBER.match(value.strip()))


@dataclass
class Wording:
    """Resolves per-language texts for a release and records every fallback it had to make."""

    languages: tuple[str, ...]
    _missing: dict[str, list[str]] = field(default_factory=dict)
    _missing_values: dict[str, Counter[str]] = field(default_factory=dict)

    def _record(self, language: str, key: str) -> None:
        self._missing.setdefault(language, []).append(key)

    def text(self, name: str, texts: LangText) -> dict[str, str]:
        """``{language: text}`` for one of the explorer's own texts (title, description, ...).

        Nothing is recorded when no language has the text (there is nothing to translate): every
        language then gets an empty text.
        """
        if not texts:
            return dict.fromkeys(self.languages, "")
        english = texts.get(ENGLISH, next(iter(texts.values())))
        out = {}
        for language in self.languages:
            if language not in texts:
                self._record(language, f"explorer.{name}.{language}")
            out[language] = texts.get(language, english)
        return out

    def label(
        self, table_name: str, table: LangTable, key: str, raw: str, *, raw_is_english: bool = False
    ) -> dict[str, str]:
        """``{language: label}`` of ``key`` (a column id, page or group name) from a per-language table.

        Args:
            table_name: the config key of the table, e.g. ``column_labels``.
            table: ``{language: {key: label}}``.
            key: what to label.
            raw: shown when no language labels ``key``.
            raw_is_english: ``raw`` already reads as English (a page name), so English needs no label.
        """
        english = table.get(ENGLISH, {}).get(key, raw)
        out = {}
        for language in self.languages:
            own = table.get(language, {}).get(key)
            if own is None and not (language == ENGLISH and raw_is_english):
                self._record(language, f"explorer.{table_name}.{language}.{key}")
            out[language] = english if own is None else own
        return out

    def value_label(self, table: LangTable, column: str, attribute: str, raw: str) -> dict[str, str]:
        """``{language: label}`` of a ``column:value`` attribute; ``raw`` (the value) reads as English.

        A missing label is counted against its column, so reports never repeat a data value.
        """
        english = table.get(ENGLISH, {}).get(attribute, raw)
        out = {}
        for language in self.languages:
            own = table.get(language, {}).get(attribute)
            if own is None and language != ENGLISH:
                self._missing_values.setdefault(language, Counter())[column] += 1
            out[language] = english if own is None else own
        return out

    def missing_by_language(self) -> dict[str, list[str]]:
        """Every fallback made so far: ``{language: [config key, ...]}``, languages in config order."""
        report = {}
        for language in self.languages:
            keys = list(self._missing.get(language, []))
            keys += [
                f"explorer.value_labels.{language}: {n} value(s) of column {column}"
                for column, n in sorted(self._missing_values.get(language, Counter()).items())
            ]
            if keys:
                report[language] = keys
        return report

    def summary_lines(self, *, limit: int = 12) -> list[str]:
        """One line per language with missing texts, listing at most ``limit`` keys."""
        lines = []
        for language, keys in self.missing_by_language().items():
            shown = ", ".join(keys[:limit]) + (f", and {len(keys) - limit} more" if len(keys) > limit else "")
            lines.append(f"{language}: {len(keys)} missing, shown in English: {shown}")
        return lines


def config_wording(explorer: ExplorerConfig, columns: Iterable[str]) -> Wording:
    """Check every text the config itself names, as ``ctdc-spark validate`` does before any data is read.

    Args:
        explorer: the ``explorer`` section.
        columns: the attribute columns the input will give (their ids).

    Values known from the config are the ordinal columns' values and every ``column:value`` key that
    some language labels; the data's other values are checked when the release is built.
    """
    wording = Wording(explorer.languages)
    for name in ("title", "description", "licence", "citation", "record_noun"):
        wording.text(name, getattr(explorer, name))
    described = {c for table in explorer.column_descriptions.values() for c in table}
    for column in columns:
        wording.label("column_labels", explorer.column_labels, column, column)
        if column in described:
            wording.label("column_descriptions", explorer.column_descriptions, column, "")
    for page in explorer.pages:
        wording.label("page_labels", explorer.page_labels, page, page, raw_is_english=True)
    for group in explorer.groups:
        wording.label("group_labels", explorer.group_labels, group, group, raw_is_english=True)
    countries = set(explorer.country_columns)
    attributes = {a for table in explorer.value_labels.values() for a in table}
    attributes |= {f"{c}:{v}" for c, values in explorer.ordinal_columns.items() for v in values}
    for attribute in sorted(attributes):
        column, _, value = attribute.partition(":")
        if column not in countries and not is_language_neutral(value):
            wording.value_label(explorer.value_labels, column, attribute, value)
    return wording
