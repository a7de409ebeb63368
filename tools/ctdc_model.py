"""Seeded generative model of records shaped like CTDC's Global Dataset (no real records).

The Counter-Trafficking Data Collaborative's global victim file (April 2020 release) has 64 header
cells: a terms-of-use sentence heading an always-empty first column, then 63 categorical columns.
Unknown is ``-99``; indicator columns hold ``0``/``1``/``-99``; four ``*Concatenated`` columns and
``RecruiterRelationship`` repeat their indicator groups as ``;``-joined labels in alphabetical order
(CTDC data dictionary, 28 Nov 2017).

The model is a latent-class mixture: every record belongs to one *profile*, a trafficking pattern
with its own data source, citizenship -> country-of-exploitation corridors, exploitation mix, share
of women among forced-labour victims and share of minors. Everything else is drawn conditionally:

* gender and age depend on the type of exploitation (sexual exploitation and forced marriage are
  mostly women and younger; male forced labour is older);
* labour sectors depend on the profile, gender and minority (construction, mining and fishing are
  mostly men; domestic work mostly women; begging and peddling mostly children);
* means of control depend on the type of exploitation, with a per-record intensity so that control
  methods co-occur, and are recorded more often in recent years and by hotlines;
* the data source (IOM-style case management since 2002, Polaris-style US hotline since 2015)
  decides which fields are collected at all, hence how many cells are ``-99``; fields that CTDC
  started collecting in 2017 are ``-99`` before that year.

Marginals are loosely calibrated on CTDC's public material (its victim-perpetrator synthetic dataset
and data stories: most victims are women, sexual exploitation is overwhelmingly female, forced
labour splits by sector and gender); about 68% of generated victims are women. Sparsity is
CTDC-like: a record has a median of 14 cells that are neither ``-99`` nor ``0`` among its 63
columns, 11 without the summary columns. Unlike CTDC, which fills ``RecruiterRelationship`` for
hotline records only, the model fills every summary column from its indicators for all sources.

Example:
    >>> frame = generate_ctdc_like(5, seed=1)
    >>> frame.shape
    (5, 64)
    >>> bool((frame[TERMS_OF_USE_COLUMN] == "").all())
    True
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "CONCATENATED_COLUMNS",
    "HEADER",
    "INDICATOR_COLUMNS",
    "TERMS_OF_USE_COLUMN",
    "UNKNOWN",
    "generate_ctdc_like",
]

UNKNOWN = "-99"
TERMS_OF_USE_COLUMN = (
    "By using this data you agree to the Terms of Use: https://www.ctdatacollaborative.org/terms-use"
)

# (indicator column, label used in the matching concatenated column), in header order.
MEANS_OF_CONTROL: tuple[tuple[str, str], ...] = (
    ("meansOfControlDebtBondage", "Debt bondage"),
    ("meansOfControlTakesEarnings", "Takes earnings"),
    ("meansOfControlRestrictsFinancialAccess", "Restricts financial access"),
    ("meansOfControlThreats", "Threats"),
    ("meansOfControlPsychologicalAbuse", "Psychological abuse"),
    ("meansOfControlPhysicalAbuse", "Physical abuse"),
    ("meansOfControlSexualAbuse", "Sexual abuse"),
    ("meansOfControlFalsePromises", "False promises"),
    ("meansOfControlPsychoactiveSubstances", "Psychoactive substances"),
    ("meansOfControlRestrictsMovement", "Restricts movement"),
    ("meansOfControlRestrictsMedicalCare", "Restricts medical care"),
    ("meansOfControlExcessiveWorkingHours", "Excessive working hours"),
    ("meansOfControlUsesChildren", "Uses children"),
    ("meansOfControlThreatOfLawEnforcement", "Threat of law enforcement"),
    ("meansOfControlWithholdsNecessities", "Withholds necessities"),
    ("meansOfControlWithholdsDocuments", "Withholds documents"),
    ("meansOfControlOther", "Other"),
)
EXPLOITATION_TYPES: tuple[tuple[str, str], ...] = (
    ("isForcedLabour", "Forced labour"),
    ("isSexualExploit", "Sexual exploitation"),
    ("isOtherExploit", "Other"),
    ("isForcedMarriage", "Forced marriage"),
    ("isForcedMilitary", "Forced military"),
    ("isOrganRemoval", "Organ removal"),
    ("isSlaveryAndPractices", "Slavery and similar practices"),
)
LABOUR_SECTORS: tuple[tuple[str, str], ...] = (
    ("typeOfLabourAgriculture", "Agriculture"),
    ("typeOfLabourAquafarming", "Aquafarming"),
    ("typeOfLabourBegging", "Begging"),
    ("typeOfLabourConstruction", "Construction"),
    ("typeOfLabourDomesticWork", "Domestic work"),
    ("typeOfLabourHospitality", "Hospitality"),
    ("typeOfLabourIllicitActivities", "Illicit activities"),
    ("typeOfLabourManufacturing", "Manufacturing"),
    ("typeOfLabourMiningOrDrilling", "Mining or drilling"),
    ("typeOfLabourPeddling", "Peddling"),
    ("typeOfLabourTransportation", "Transportation"),
    ("typeOfLabourOther", "Other"),
)
SEX_TYPES: tuple[tuple[str, str], ...] = (
    ("typeOfSexProstitution", "Prostitution"),
    ("typeOfSexPornography", "Pornography"),
    ("typeOfSexRemoteInteractiveServices", "Remote interactive services"),
    ("typeOfSexPrivateSexualServices", "Private sexual services"),
)
RECRUITER_RELATIONS: tuple[tuple[str, str], ...] = (
    ("recruiterRelationIntimatePartner", "Intimate partner"),
    ("recruiterRelationFriend", "Friend"),
    ("recruiterRelationFamily", "Family"),
    ("recruiterRelationOther", "Other"),
)

# Each summary column lists the labels of its group's indicators that hold 1. The "not specified"
# and "unknown" indicators have no label: CTDC leaves the summary at -99 when only they are set.
CONCATENATED_COLUMNS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "meansOfControlConcatenated": MEANS_OF_CONTROL,
    "typeOfExploitConcatenated": EXPLOITATION_TYPES,
    "typeOfLabourConcatenated": LABOUR_SECTORS,
    "typeOfSexConcatenated": SEX_TYPES,
    "RecruiterRelationship": RECRUITER_RELATIONS,
}

HEADER: tuple[str, ...] = (
    TERMS_OF_USE_COLUMN,
    "yearOfRegistration",
    "Datasource",
    "gender",
    "ageBroad",
    "majorityStatus",
    "majorityStatusAtExploit",
    "majorityEntry",
    "citizenship",
    *(c for c, _ in MEANS_OF_CONTROL),
    "meansOfControlNotSpecified",
    "meansOfControlConcatenated",
    *(c for c, _ in EXPLOITATION_TYPES[:3]),
    # CTDC puts the derived "both" flag between isOtherExploit and isForcedMarriage.
    "isSexAndLabour",
    *(c for c, _ in EXPLOITATION_TYPES[3:]),
    "typeOfExploitConcatenated",
    *(c for c, _ in LABOUR_SECTORS),
    "typeOfLabourNotSpecified",
    "typeOfLabourConcatenated",
    *(c for c, _ in SEX_TYPES),
    "typeOfSexConcatenated",
    "isAbduction",
    "RecruiterRelationship",
    "CountryOfExploitation",
    *(c for c, _ in RECRUITER_RELATIONS),
    "recruiterRelationUnknown",
)
INDICATOR_COLUMNS: tuple[str, ...] = tuple(
    c
    for c in HEADER
    if c.startswith(("meansOfControl", "is", "typeOf", "recruiterRelation")) and c not in CONCATENATED_COLUMNS
)

CASE_MANAGEMENT = "Case Management"
HOTLINE = "Hotline"
YEARS = np.arange(2002, 2021)
# Relative registrations per year: steady growth, a 2016-2017 peak and a partial 2020 (CTDC's
# April 2020 release), as in CTDC's published year distributions.
_CASE_YEAR_WEIGHTS = (
    1.0,
    1.2,
    1.4,
    1.6,
    1.9,
    2.2,
    2.4,
    2.6,
    2.9,
    3.2,
    3.6,
    4.0,
    4.7,
    5.6,
    7.0,
    7.6,
    6.8,
    6.0,
    2.4,
)
_HOTLINE_FIRST_YEAR = 2015  # CTDC: hotline data are collected from 2015 on
_COLLECTED_FROM_2017 = 2017  # remote/private sexual services, abduction: "data collection begins 2017"
_SEX_TYPES_FROM_2017 = ("Remote interactive services", "Private sexual services")

ADULT_AGES = ("18--20", "21--23", "24--26", "27--29", "30--38", "39--47", "48+")
MINOR_AGES = ("0--8", "9--17")

# Type codes used in profile patterns, in EXPLOITATION_TYPES order.
_TYPE_CODES = ("FL", "SE", "OT", "FM", "MIL", "ORG", "SLV")


@dataclass(frozen=True)
class _Profile:
    """One latent trafficking pattern; weights are relative and normalised at compile time."""

    weight: float
    source: str
    corridors: tuple[tuple[str, str, float], ...]  # (citizenship, country of exploitation, weight)
    patterns: tuple[tuple[str, float], ...]  # ("FL+SE", weight): exploitation types present
    female_if_labour: float
    minor_share: float
    sectors: Mapping[str, float] = field(default_factory=dict)  # labour sector label -> weight
    sex_types: Mapping[str, float] = field(default_factory=dict)  # sexual exploitation label -> weight
    first_year: int = 2002
    sector_unknown: float = 0.15


_DEFAULT_SECTORS: Mapping[str, float] = {
    "Agriculture": 15,
    "Construction": 15,
    "Domestic work": 15,
    "Hospitality": 10,
    "Manufacturing": 12,
    "Aquafarming": 5,
    "Begging": 4,
    "Peddling": 4,
    "Mining or drilling": 3,
    "Transportation": 3,
    "Illicit activities": 3,
    "Other": 11,
}
_DEFAULT_SEX_TYPES: Mapping[str, float] = {
    "Prostitution": 88,
    "Pornography": 6,
    "Remote interactive services": 3,
    "Private sexual services": 5,
}

_PROFILES: tuple[_Profile, ...] = (
    # Eastern Europe and Central Asia: men in construction and agriculture, mostly in Russia.
    _Profile(
        weight=8,
        source=CASE_MANAGEMENT,
        female_if_labour=0.2,
        minor_share=0.03,
        first_year=2004,
        corridors=(
            ("UA", "RU", 40),
            ("UA", "PL", 5),
            ("UA", "CZ", 3),
            ("MD", "RU", 14),
            ("BY", "RU", 10),
            ("UZ", "RU", 8),
            ("UZ", "KZ", 5),
            ("KG", "RU", 6),
            ("KG", "KZ", 3),
            ("TJ", "RU", 4),
            ("UA", "UA", 4),
        ),
        patterns=(("FL", 90), ("SE", 4), ("FL+SE", 3), ("OT", 3)),
        sectors={
            "Construction": 42,
            "Agriculture": 12,
            "Manufacturing": 12,
            "Hospitality": 5,
            "Transportation": 5,
            "Mining or drilling": 3,
            "Begging": 2,
            "Other": 10,
        },
    ),
    # Eastern and South-Eastern Europe: women in sexual exploitation, in Turkey, Russia, the EU and Gulf.
    _Profile(
        weight=10,
        source=CASE_MANAGEMENT,
        female_if_labour=0.55,
        minor_share=0.12,
        corridors=(
            ("UA", "TR", 10),
            ("UA", "RU", 8),
            ("UA", "UA", 12),
            ("UA", "AE", 4),
            ("UA", "PL", 4),
            ("UA", "IL", 2),
            ("MD", "TR", 10),
            ("MD", "RU", 6),
            ("MD", "MD", 7),
            ("MD", "IL", 4),
            ("MD", "AE", 3),
            ("MD", "CY", 3),
            ("BY", "RU", 4),
            ("BY", "BY", 3),
            ("RO", "IT", 4),
            ("RO", "ES", 3),
            ("RO", "GB", 2),
            ("RO", "RO", 4),
            ("BG", "DE", 2),
            ("BG", "GR", 2),
            ("AL", "IT", 2),
            ("AL", "AL", 2),
        ),
        patterns=(("SE", 85), ("FL+SE", 9), ("FL", 6)),
    ),
    # The Philippines: domestic sexual exploitation (including online exploitation of children) and
    # domestic work at home and in the Gulf.
    _Profile(
        weight=12,
        source=CASE_MANAGEMENT,
        female_if_labour=0.72,
        minor_share=0.3,
        first_year=2005,
        corridors=(
            ("PH", "PH", 60),
            ("PH", "MY", 10),
            ("PH", "SA", 8),
            ("PH", "AE", 6),
            ("PH", "KW", 4),
            ("PH", "QA", 3),
            ("PH", "HK", 2),
            ("PH", "SG", 2),
        ),
        patterns=(("SE", 45), ("FL", 45), ("FL+SE", 5), ("OT", 5)),
        sectors={
            "Domestic work": 50,
            "Hospitality": 10,
            "Agriculture": 8,
            "Manufacturing": 6,
            "Aquafarming": 6,
            "Other": 10,
        },
        sex_types={
            "Prostitution": 60,
            "Pornography": 15,
            "Remote interactive services": 20,
            "Private sexual services": 5,
        },
    ),
    # Mekong region: men on fishing boats, farms and building sites in Thailand, Malaysia, Indonesia.
    _Profile(
        weight=8,
        source=CASE_MANAGEMENT,
        female_if_labour=0.3,
        minor_share=0.08,
        first_year=2006,
        corridors=(
            ("KH", "TH", 25),
            ("KH", "MY", 10),
            ("KH", "KH", 6),
            ("MM", "TH", 20),
            ("MM", "MY", 8),
            ("LA", "TH", 10),
            ("VN", "VN", 3),
            ("KH", "ID", 4),
            ("MM", "ID", 4),
            ("MM", "MM", 3),
        ),
        patterns=(("FL", 85), ("SE", 8), ("FL+SE", 4), ("FM", 3)),
        sectors={
            "Aquafarming": 35,
            "Agriculture": 15,
            "Construction": 15,
            "Manufacturing": 12,
            "Domestic work": 8,
            "Other": 6,
        },
    ),
    # Forced marriage of women and girls into China.
    _Profile(
        weight=2,
        source=CASE_MANAGEMENT,
        female_if_labour=0.8,
        minor_share=0.2,
        first_year=2010,
        corridors=(("MM", "CN", 30), ("KH", "CN", 25), ("VN", "CN", 20), ("LA", "CN", 10), ("NP", "CN", 3)),
        patterns=(("FM", 80), ("FM+SE", 10), ("FL+FM", 10)),
        sectors={"Domestic work": 60, "Agriculture": 30, "Other": 10},
    ),
    # Indonesia: women in domestic work in Malaysia and the Gulf; men on fishing boats.
    _Profile(
        weight=7,
        source=CASE_MANAGEMENT,
        female_if_labour=0.72,
        minor_share=0.1,
        first_year=2005,
        corridors=(
            ("ID", "MY", 35),
            ("ID", "SA", 15),
            ("ID", "ID", 10),
            ("ID", "AE", 5),
            ("ID", "TW", 4),
            ("ID", "SG", 3),
            ("ID", "HK", 3),
            ("ID", "QA", 2),
        ),
        patterns=(("FL", 75), ("SE", 15), ("FL+SE", 7), ("OT", 3)),
        sectors={
            "Domestic work": 45,
            "Manufacturing": 10,
            "Agriculture": 10,
            "Aquafarming": 12,
            "Construction": 6,
            "Hospitality": 5,
            "Other": 5,
        },
    ),
    # South Asia: cross-border trafficking into India, labour migration to Malaysia and the Gulf.
    _Profile(
        weight=5,
        source=CASE_MANAGEMENT,
        female_if_labour=0.4,
        minor_share=0.2,
        corridors=(
            ("NP", "IN", 20),
            ("NP", "NP", 8),
            ("NP", "MY", 6),
            ("NP", "AE", 4),
            ("BD", "IN", 8),
            ("BD", "MY", 6),
            ("BD", "BD", 6),
            ("BD", "SA", 4),
            ("LK", "SA", 4),
            ("LK", "LK", 2),
            ("IN", "IN", 6),
            ("PK", "SA", 3),
            ("PK", "AE", 3),
            ("AF", "IR", 3),
            ("AF", "AF", 2),
        ),
        patterns=(("FL", 55), ("SE", 35), ("FL+SE", 5), ("FM", 3), ("ORG", 2)),
        sectors={
            "Construction": 20,
            "Manufacturing": 15,
            "Domestic work": 20,
            "Agriculture": 15,
            "Begging": 6,
            "Other": 8,
        },
    ),
    # Sub-Saharan Africa: mostly within the region, many children, and towards Libya, Italy, the Gulf.
    _Profile(
        weight=6,
        source=CASE_MANAGEMENT,
        female_if_labour=0.5,
        minor_share=0.35,
        first_year=2004,
        corridors=(
            ("GH", "GH", 12),
            ("GH", "LB", 3),
            ("NG", "NG", 6),
            ("NG", "LY", 5),
            ("NG", "IT", 6),
            ("ML", "ML", 3),
            ("ML", "CI", 3),
            ("BF", "CI", 4),
            ("SN", "SN", 5),
            ("GN", "SN", 3),
            ("ET", "SA", 6),
            ("ET", "ET", 3),
            ("KE", "SA", 3),
            ("UG", "KE", 4),
            ("UG", "SA", 2),
            ("ER", "LY", 3),
            ("ER", "SD", 2),
            ("SO", "SO", 2),
            ("CD", "CD", 3),
            ("ZW", "ZA", 3),
            ("MW", "ZA", 2),
            ("MZ", "ZA", 2),
        ),
        patterns=(("FL", 55), ("SE", 20), ("FL+SE", 6), ("OT", 8), ("MIL", 4), ("FM", 4), ("SLV", 3)),
        sectors={
            "Domestic work": 20,
            "Agriculture": 20,
            "Begging": 12,
            "Mining or drilling": 10,
            "Peddling": 8,
            "Aquafarming": 6,
            "Construction": 6,
            "Other": 8,
        },
    ),
    # Haiti and the Dominican Republic: children begging, in agriculture and domestic work.
    _Profile(
        weight=2,
        source=CASE_MANAGEMENT,
        female_if_labour=0.45,
        minor_share=0.55,
        first_year=2006,
        corridors=(("HT", "DO", 20), ("HT", "HT", 10)),
        patterns=(("FL", 70), ("SE", 20), ("OT", 10)),
        sectors={"Begging": 25, "Agriculture": 25, "Domestic work": 20, "Peddling": 15, "Construction": 10},
    ),
    # Latin America: sexual exploitation and labour, largely within the region.
    _Profile(
        weight=4,
        source=CASE_MANAGEMENT,
        female_if_labour=0.45,
        minor_share=0.25,
        corridors=(
            ("CO", "CO", 10),
            ("CO", "EC", 4),
            ("CO", "MX", 3),
            ("VE", "CO", 6),
            ("VE", "TT", 3),
            ("VE", "VE", 2),
            ("GT", "GT", 4),
            ("GT", "MX", 4),
            ("HN", "GT", 2),
            ("HN", "MX", 3),
            ("MX", "MX", 5),
            ("BO", "AR", 3),
            ("PY", "AR", 2),
            ("PE", "PE", 3),
            ("EC", "EC", 2),
        ),
        patterns=(("SE", 55), ("FL", 35), ("FL+SE", 6), ("OT", 4)),
    ),
    # Western Europe as destination: labour in construction, farms, cannabis farms and car washes.
    _Profile(
        weight=3,
        source=CASE_MANAGEMENT,
        female_if_labour=0.35,
        minor_share=0.15,
        first_year=2010,
        corridors=(
            ("RO", "GB", 5),
            ("RO", "DE", 3),
            ("BG", "NL", 2),
            ("PL", "GB", 3),
            ("AL", "GB", 3),
            ("VN", "GB", 4),
            ("NG", "GB", 2),
            ("UA", "CZ", 3),
            ("RO", "FR", 2),
            ("BG", "BE", 1),
        ),
        patterns=(("FL", 60), ("SE", 30), ("FL+SE", 6), ("OT", 4)),
        sectors={
            "Illicit activities": 15,
            "Construction": 15,
            "Agriculture": 15,
            "Hospitality": 12,
            "Manufacturing": 12,
            "Begging": 6,
            "Domestic work": 8,
            "Other": 8,
        },
    ),
    # US hotline, sexual exploitation; callers often do not know the victim's citizenship.
    _Profile(
        weight=16,
        source=HOTLINE,
        female_if_labour=0.6,
        minor_share=0.3,
        corridors=(
            ("-99", "US", 55),
            ("US", "US", 30),
            ("MX", "US", 5),
            ("CN", "US", 3),
            ("KR", "US", 1),
            ("TH", "US", 1),
            ("HN", "US", 1),
            ("GT", "US", 1),
            ("-99", "-99", 3),
        ),
        patterns=(("SE", 90), ("FL+SE", 10)),
        sex_types={
            "Prostitution": 82,
            "Pornography": 10,
            "Remote interactive services": 8,
            "Private sexual services": 8,
        },
    ),
    # US hotline, forced labour: domestic work, farms, restaurants, sales crews.
    _Profile(
        weight=7,
        source=HOTLINE,
        female_if_labour=0.55,
        minor_share=0.1,
        sector_unknown=0.1,
        corridors=(
            ("-99", "US", 40),
            ("MX", "US", 15),
            ("PH", "US", 6),
            ("GT", "US", 5),
            ("HN", "US", 4),
            ("US", "US", 10),
            ("IN", "US", 4),
            ("CN", "US", 3),
            ("SV", "US", 3),
            ("-99", "-99", 2),
        ),
        patterns=(("FL", 90), ("FL+SE", 10)),
        sectors={
            "Domestic work": 22,
            "Agriculture": 18,
            "Hospitality": 15,
            "Peddling": 10,
            "Illicit activities": 6,
            "Construction": 8,
            "Manufacturing": 5,
            "Transportation": 3,
            "Other": 10,
        },
    ),
)

# P(female) by exploitation type when the profile does not decide it (forced labour only).
_FEMALE_SHARE = {"SE": 0.95, "FM": 0.98, "MIL": 0.1, "ORG": 0.45, "OT": 0.6, "SLV": 0.6, "FL+SE": 0.8}
# Men's weight for a sector relative to women's (sqrt applied to each side): why construction, mining
# and fishing victims are mostly men and domestic workers mostly women.
_SECTOR_MALE_RATIO = {
    "Agriculture": 1.5,
    "Aquafarming": 5.0,
    "Begging": 1.0,
    "Construction": 10.0,
    "Domestic work": 0.08,
    "Hospitality": 0.6,
    "Illicit activities": 2.0,
    "Manufacturing": 1.0,
    "Mining or drilling": 6.0,
    "Peddling": 1.0,
    "Transportation": 4.0,
    "Other": 1.0,
}
_SECTOR_MINOR_FACTOR = {
    "Begging": 4.0,
    "Peddling": 2.0,
    "Domestic work": 1.5,
    "Construction": 0.3,
    "Mining or drilling": 0.5,
    "Transportation": 0.3,
}
# Abusers of children film and stream them far more often than they prostitute adults.
_SEX_MINOR_FACTOR = {"Pornography": 3.0, "Remote interactive services": 3.0, "Private sexual services": 0.5}
_ADULT_AGE_WEIGHTS = {
    "young": (0.28, 0.24, 0.17, 0.11, 0.13, 0.05, 0.02),  # sexual exploitation, forced marriage
    "older": (0.08, 0.12, 0.14, 0.14, 0.28, 0.16, 0.08),  # men in forced labour
    "default": (0.14, 0.16, 0.16, 0.13, 0.22, 0.12, 0.07),
}

# P(method | type) for a record whose means of control were recorded. Sexual exploitation leans on
# abuse and movement restrictions, forced labour on earnings, documents, debt and working hours.
_CONTROL_TYPES = ("SE", "FL", "FM", "OT", "MIL", "ORG", "SLV")
_CONTROL_BY_METHOD: Mapping[str, tuple[float, ...]] = {
    #                               SE    FL    FM    OT    MIL   ORG   SLV
    "Debt bondage": (0.12, 0.30, 0.02, 0.10, 0.02, 0.30, 0.20),
    "Takes earnings": (0.35, 0.45, 0.05, 0.20, 0.05, 0.05, 0.30),
    "Restricts financial access": (0.08, 0.12, 0.10, 0.05, 0.02, 0.02, 0.10),
    "Threats": (0.40, 0.35, 0.35, 0.30, 0.50, 0.30, 0.40),
    "Psychological abuse": (0.55, 0.35, 0.50, 0.35, 0.40, 0.20, 0.40),
    "Physical abuse": (0.40, 0.25, 0.40, 0.25, 0.50, 0.25, 0.40),
    "Sexual abuse": (0.35, 0.04, 0.35, 0.05, 0.10, 0.02, 0.15),
    "False promises": (0.30, 0.45, 0.35, 0.30, 0.20, 0.60, 0.20),
    "Psychoactive substances": (0.15, 0.02, 0.02, 0.05, 0.15, 0.05, 0.05),
    "Restricts movement": (0.35, 0.35, 0.50, 0.25, 0.60, 0.30, 0.50),
    "Restricts medical care": (0.05, 0.08, 0.05, 0.05, 0.10, 0.10, 0.10),
    "Excessive working hours": (0.12, 0.40, 0.10, 0.15, 0.20, 0.02, 0.40),
    "Uses children": (0.03, 0.01, 0.05, 0.02, 0.02, 0.01, 0.05),
    "Threat of law enforcement": (0.08, 0.15, 0.05, 0.05, 0.02, 0.05, 0.05),
    "Withholds necessities": (0.08, 0.20, 0.10, 0.10, 0.30, 0.05, 0.30),
    "Withholds documents": (0.12, 0.35, 0.15, 0.10, 0.10, 0.20, 0.20),
    "Other": (0.05, 0.06, 0.05, 0.15, 0.10, 0.10, 0.05),
}
_ABDUCTION_BY_TYPE = {"FM": 0.35, "MIL": 0.6, "ORG": 0.2, "SE": 0.07, "FL": 0.03, "OT": 0.05, "SLV": 0.1}
# P(relation | type) over RECRUITER_RELATIONS: intimate partner, friend, family, other.
_RELATION_BY_TYPE: Mapping[str, tuple[float, ...]] = {
    "SE": (0.30, 0.30, 0.12, 0.28),
    "FL": (0.04, 0.36, 0.12, 0.48),
    "FM": (0.10, 0.15, 0.60, 0.15),
    "default": (0.05, 0.30, 0.20, 0.45),
}


@dataclass(frozen=True)
class _Compiled:
    """Profile parameters as arrays indexed by profile id (and pattern id), built once."""

    profile_p: np.ndarray
    hotline: np.ndarray  # bool per profile
    year_p: tuple[np.ndarray, ...]
    corridor_cit: tuple[np.ndarray, ...]  # per profile: country index per corridor
    corridor_coe: tuple[np.ndarray, ...]
    corridor_p: tuple[np.ndarray, ...]
    pattern_p: tuple[np.ndarray, ...]  # per profile: probability per global pattern
    pattern_bits: np.ndarray  # bit i set = EXPLOITATION_TYPES[i] present
    female_if_labour: np.ndarray
    minor_share: np.ndarray
    sector_w: np.ndarray  # profile x sector
    sector_unknown: np.ndarray
    sex_w: np.ndarray  # profile x sex type
    countries: np.ndarray  # object array of codes; index 0 is UNKNOWN


def _normalise(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    normalised: np.ndarray = w / w.sum()
    return normalised


@functools.lru_cache(maxsize=1)
def _compile() -> _Compiled:
    """Turn the readable profile table into arrays, so generation is pure numpy indexing."""
    countries = sorted({c for p in _PROFILES for cit, coe, _ in p.corridors for c in (cit, coe)} - {UNKNOWN})
    country_index = {c: i for i, c in enumerate([UNKNOWN, *countries])}
    patterns = sorted({code for p in _PROFILES for code, _ in p.patterns})
    pattern_index = {code: i for i, code in enumerate(patterns)}
    bits = np.array(
        [sum(1 << _TYPE_CODES.index(t) for t in code.split("+")) for code in patterns], dtype=np.int64
    )
    sector_labels = [label for _, label in LABOUR_SECTORS]
    sex_labels = [label for _, label in SEX_TYPES]

    year_p, cit, coe, corridor_p, pattern_p = [], [], [], [], []
    for p in _PROFILES:
        first = max(p.first_year, _HOTLINE_FIRST_YEAR if p.source == HOTLINE else 2002)
        curve = np.where(YEARS >= first, _CASE_YEAR_WEIGHTS, 0.0)
        if p.source == HOTLINE:
            # Hotline reports grew faster than case management once the partnership started.
            curve = curve * np.where(YEARS < 2020, 1.0 + 0.25 * (YEARS - first), 0.4)
        year_p.append(_normalise(curve))
        cit.append(np.array([country_index[c] for c, _, _ in p.corridors]))
        coe.append(np.array([country_index[c] for _, c, _ in p.corridors]))
        corridor_p.append(_normalise([w for _, _, w in p.corridors]))
        row = np.zeros(len(patterns))
        for code, w in p.patterns:
            row[pattern_index[code]] = w
        pattern_p.append(row / row.sum())

    return _Compiled(
        profile_p=_normalise([p.weight for p in _PROFILES]),
        hotline=np.array([p.source == HOTLINE for p in _PROFILES]),
        year_p=tuple(year_p),
        corridor_cit=tuple(cit),
        corridor_coe=tuple(coe),
        corridor_p=tuple(corridor_p),
        pattern_p=tuple(pattern_p),
        pattern_bits=bits,
        female_if_labour=np.array([p.female_if_labour for p in _PROFILES]),
        minor_share=np.array([p.minor_share for p in _PROFILES]),
        sector_w=np.array(
            [[(p.sectors or _DEFAULT_SECTORS).get(s, 0.0) for s in sector_labels] for p in _PROFILES],
            dtype=float,
        ),
        sector_unknown=np.array([p.sector_unknown for p in _PROFILES]),
        sex_w=np.array(
            [[(p.sex_types or _DEFAULT_SEX_TYPES).get(s, 0.0) for s in sex_labels] for p in _PROFILES],
            dtype=float,
        ),
        countries=np.array([UNKNOWN, *countries], dtype=object),
    )


def _sample_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a non-negative (rows x categories) weight matrix.

    Inverse-CDF sampling against per-row cumulative sums: vectorised where ``rng.choice`` would
    need a Python loop over rows with different probabilities. Every row needs a positive total.
    """
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    drawn: np.ndarray = np.minimum((u[:, None] >= cum).sum(axis=1), weights.shape[1] - 1)
    return drawn


def _multi_select(
    rng: np.random.Generator, weights: np.ndarray, second_p: float, third_p: float
) -> np.ndarray:
    """Boolean (rows x categories) matrix with one category per row, sometimes two or three.

    Extra picks reuse the row's weights and are dropped when they repeat an earlier pick, so rows
    with one dominant category stay single-valued, as in CTDC.
    """
    chosen = np.zeros(weights.shape, dtype=bool)
    rows = np.arange(len(weights))
    chosen[rows, _sample_rows(rng, weights)] = True
    for p in (second_p, third_p):
        extra = rng.random(len(weights)) < p
        chosen[rows[extra], _sample_rows(rng, weights[extra])] = True
    return chosen


def _to_cells(values: np.ndarray) -> np.ndarray:
    """Map an indicator array (-1 unknown, 0, 1; or bool) to CTDC's strings."""
    return np.array([UNKNOWN, "0", "1"], dtype=object)[values.astype(np.int8) + 1]


def _indicator_cells(group: Sequence[tuple[str, str]], values: np.ndarray) -> dict[str, np.ndarray]:
    """Name the columns of a (records x indicators) -1/0/1 matrix after ``group``."""
    return {name: _to_cells(values[:, j]) for j, (name, _) in enumerate(group)}


def _concatenate(ones: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """``;``-join the labels of the set indicators, alphabetically as CTDC does; ``-99`` if none.

    Rows are reduced to a bit mask so each distinct combination is joined in Python only once.
    """
    masks = ones.astype(np.int64) @ (np.int64(1) << np.arange(ones.shape[1], dtype=np.int64))
    unique, inverse = np.unique(masks, return_inverse=True)
    text = np.array(
        [";".join(sorted(labels[i] for i in range(len(labels)) if m >> i & 1)) or UNKNOWN for m in unique],
        dtype=object,
    )
    return text[inverse]


@dataclass(frozen=True)
class _Latent:
    """Per-record draws that the observed columns are conditioned on (one array entry per record)."""

    profile: np.ndarray
    hotline: np.ndarray
    year: np.ndarray
    citizenship: np.ndarray  # index into _Compiled.countries
    exploitation_country: np.ndarray
    has: Mapping[str, np.ndarray]  # type code -> bool: the record has this type of exploitation
    exploit_known: np.ndarray  # False: the whole exploitation block is -99
    female: np.ndarray
    minor: np.ndarray
    adult_age: np.ndarray  # index into ADULT_AGES (drawn for minors too, then unused)

    @property
    def since_2002(self) -> np.ndarray:
        """0 in 2002, 1 in 2020: data collection improved over the years."""
        return (self.year - 2002) / 18.0


def _draw_latent(rng: np.random.Generator, model: _Compiled, n: int) -> _Latent:
    """Draw profile, year, corridor and exploitation pattern, then gender and age given the pattern."""
    profile = rng.choice(len(_PROFILES), size=n, p=model.profile_p)
    year = np.empty(n, dtype=np.int64)
    cit = np.empty(n, dtype=np.int64)
    coe = np.empty(n, dtype=np.int64)
    pattern = np.empty(n, dtype=np.int64)
    for k in range(len(_PROFILES)):  # one vectorised draw per profile, not per record
        rows = np.flatnonzero(profile == k)
        year[rows] = rng.choice(YEARS, size=len(rows), p=model.year_p[k])
        corridor = rng.choice(len(model.corridor_p[k]), size=len(rows), p=model.corridor_p[k])
        cit[rows] = model.corridor_cit[k][corridor]
        coe[rows] = model.corridor_coe[k][corridor]
        pattern[rows] = rng.choice(len(model.pattern_bits), size=len(rows), p=model.pattern_p[k])
    hotline = model.hotline[profile]
    bits = model.pattern_bits[pattern]
    has = {code: (bits >> i & 1).astype(bool) for i, code in enumerate(_TYPE_CODES)}
    labour_only = bits == 1 << _TYPE_CODES.index("FL")

    p_female = np.full(n, _FEMALE_SHARE["OT"])
    for code in ("SLV", "ORG", "MIL", "SE", "FM"):  # later assignments win: FM beats SE beats the rest
        p_female[has[code]] = _FEMALE_SHARE[code]
    p_female[has["FL"] & has["SE"]] = _FEMALE_SHARE["FL+SE"]
    p_female[labour_only] = model.female_if_labour[profile[labour_only]]
    female = rng.random(n) < p_female

    minor_factor = np.ones(n)
    minor_factor[has["FL"]] = 0.8
    minor_factor[has["SE"]] = 1.2
    minor_factor[has["FM"] | has["MIL"]] = 1.6
    minor = rng.random(n) < np.minimum(model.minor_share[profile] * minor_factor, 0.9)
    age_group = np.where(has["SE"] | has["FM"], 0, np.where(labour_only & ~female, 1, 2))
    adult_w = np.array([_ADULT_AGE_WEIGHTS[g] for g in ("young", "older", "default")])[age_group]

    return _Latent(
        profile=profile,
        hotline=hotline,
        year=year,
        citizenship=cit,
        exploitation_country=coe,
        has=has,
        exploit_known=rng.random(n) >= np.where(hotline, 0.01, 0.03),
        female=female,
        minor=minor,
        adult_age=_sample_rows(rng, adult_w),
    )


def _person_columns(rng: np.random.Generator, model: _Compiled, lat: _Latent) -> dict[str, np.ndarray]:
    """Registration, demographics and countries, with source-dependent unknowns.

    Hotline callers rarely know a victim's age or citizenship; old case files often lack the
    country of exploitation.
    """
    n = len(lat.year)
    hotline = lat.hotline
    minor_age = (rng.random(n) < 0.8).astype(np.int64)  # most identified minors are 9-17
    age_cells = np.where(
        lat.minor,
        np.array(MINOR_AGES, dtype=object)[minor_age],
        np.array(ADULT_AGES, dtype=object)[lat.adult_age],
    )
    gender_unknown = rng.random(n) < np.where(hotline, 0.06, 0.01)
    majority_unknown = rng.random(n) < np.where(hotline, 0.25, 0.04)
    age_unknown = majority_unknown | (rng.random(n) < np.where(hotline, 0.7, 0.45))
    at_exploit_known = rng.random(n) < np.where(hotline, 0.45, np.where(lat.year >= 2012, 0.3, 0.1))
    # Adults registered young were often minors when the exploitation began.
    young_adult = ~lat.minor & (lat.adult_age <= 1)
    was_minor = lat.minor | (young_adult & (rng.random(n) < np.where(lat.adult_age == 0, 0.35, 0.1)))
    entry_known = at_exploit_known & ~hotline & (rng.random(n) < 0.6)
    cit = np.where(~hotline & (rng.random(n) < 0.02), 0, lat.citizenship)
    coe = np.where(~hotline & (rng.random(n) < 0.45 - 0.4 * lat.since_2002), 0, lat.exploitation_country)

    majority_cells = np.where(lat.minor, "Minor", "Adult").astype(object)
    was_minor_cells = np.where(was_minor, "Minor", "Adult").astype(object)
    return {
        TERMS_OF_USE_COLUMN: np.full(n, "", dtype=object),
        "yearOfRegistration": lat.year.astype(str).astype(object),
        "Datasource": np.where(hotline, HOTLINE, CASE_MANAGEMENT).astype(object),
        "gender": np.where(gender_unknown, UNKNOWN, np.where(lat.female, "Female", "Male")).astype(object),
        "ageBroad": np.where(age_unknown, UNKNOWN, age_cells),
        "majorityStatus": np.where(majority_unknown, UNKNOWN, majority_cells),
        "majorityStatusAtExploit": np.where(at_exploit_known, was_minor_cells, UNKNOWN),
        "majorityEntry": np.where(entry_known, was_minor_cells, UNKNOWN),
        "citizenship": model.countries[cit],
        "CountryOfExploitation": model.countries[coe],
    }


def _exploitation_columns(rng: np.random.Generator, model: _Compiled, lat: _Latent) -> dict[str, np.ndarray]:
    """Types of exploitation, labour sectors and types of sexual exploitation as indicator cells.

    A group that does not apply to a record is all ``0`` in half of the case files and ``-99``
    otherwise, as in CTDC's example rows; hotlines do not use the marriage, military, organ and
    slavery categories.
    """
    n = len(lat.year)
    has, hotline, known = lat.has, lat.hotline, lat.exploit_known
    available = {
        "FL": np.ones(n, dtype=bool),
        "SE": np.ones(n, dtype=bool),
        "OT": np.ones(n, dtype=bool),
        "FM": ~hotline & (rng.random(n) < 0.8),
        "MIL": ~hotline & (rng.random(n) < 0.9),
        "ORG": ~hotline & (rng.random(n) < 0.9),
        "SLV": ~hotline & (lat.year >= 2018) & (rng.random(n) < 0.7),
    }
    exploit = np.column_stack(
        [np.where(has[code], 1, np.where(available[code], 0, -1)) for code in _TYPE_CODES]
    ).astype(np.int8)
    exploit[~known] = -1
    sex_and_labour = np.where(known, has["FL"] & has["SE"], -1)

    sector_w = model.sector_w[lat.profile].copy()
    male_ratio = np.sqrt([_SECTOR_MALE_RATIO[label] for _, label in LABOUR_SECTORS])
    sector_w[lat.female] /= male_ratio
    sector_w[~lat.female] *= male_ratio
    sector_w[lat.minor] *= [_SECTOR_MINOR_FACTOR.get(label, 1.0) for _, label in LABOUR_SECTORS]
    sectors = _multi_select(rng, sector_w, 0.1, 0.02).astype(np.int8)
    sector_unknown = rng.random(n) < model.sector_unknown[lat.profile]
    sectors[sector_unknown] = 0
    in_labour = has["FL"] & known
    labour_zero_filled = known & ~hotline & (rng.random(n) < 0.5)
    sectors[~in_labour] = np.where(labour_zero_filled[~in_labour, None], 0, -1)
    labour_not_specified = np.where(in_labour, sector_unknown, np.where(labour_zero_filled, 0, -1))

    # Remote and private sexual services are only collected from 2017.
    recent = lat.year >= _COLLECTED_FROM_2017
    late_types = np.array([label in _SEX_TYPES_FROM_2017 for _, label in SEX_TYPES])
    sex_w = model.sex_w[lat.profile].copy()
    sex_w[lat.minor] *= [_SEX_MINOR_FACTOR.get(label, 1.0) for _, label in SEX_TYPES]
    sex_w[np.ix_(~recent, late_types)] = 0.0
    sex = _multi_select(rng, sex_w, 0.12, 0.02).astype(np.int8)
    sex[rng.random(n) < 0.1] = 0  # the type of sexual exploitation was not recorded
    in_sex = has["SE"] & known
    sex_zero_filled = known & ~hotline & (rng.random(n) < 0.5)
    sex[~in_sex] = np.where(sex_zero_filled[~in_sex, None], 0, -1)
    sex[np.ix_(~recent, late_types)] = -1

    return {
        **_indicator_cells(EXPLOITATION_TYPES, exploit),
        "isSexAndLabour": _to_cells(sex_and_labour),
        **_indicator_cells(LABOUR_SECTORS, sectors),
        "typeOfLabourNotSpecified": _to_cells(labour_not_specified),
        **_indicator_cells(SEX_TYPES, sex),
    }


def _control_columns(rng: np.random.Generator, lat: _Latent) -> dict[str, np.ndarray]:
    """Means of control and abduction.

    A per-record intensity makes control methods co-occur; hotline callers describe control in
    more detail; case files record it more often in recent years. Abduction is only in case files,
    mostly from 2017 when CTDC started collecting it.
    """
    n = len(lat.year)
    has, hotline = lat.has, lat.hotline
    by_type = np.array([_CONTROL_BY_METHOD[label] for _, label in MEANS_OF_CONTROL]).T
    base = np.zeros((n, len(MEANS_OF_CONTROL)))
    for code, probs in zip(_CONTROL_TYPES, by_type, strict=True):
        base[has[code]] = np.maximum(base[has[code]], probs)  # several types: the likelier wins
    intensity = rng.gamma(2.0, 0.35, n) * np.where(hotline, 1.3, 1.0)
    p_control = 1.0 - (1.0 - base) ** intensity[:, None]
    # "Uses children" means threats against the victim's own children.
    p_control[lat.minor, [label for _, label in MEANS_OF_CONTROL].index("Uses children")] = 0.0
    control = (rng.random(base.shape, dtype=np.float32) < p_control).astype(np.int8)
    p_recorded = np.where(hotline, 0.85, 0.2 + 0.55 * lat.since_2002) * np.where(lat.exploit_known, 1.0, 0.3)
    recorded = rng.random(n) < p_recorded
    control[~recorded] = -1
    not_specified = ~recorded | (control.max(axis=1) <= 0)

    p_abduction = np.zeros(n)
    for code, p in _ABDUCTION_BY_TYPE.items():
        p_abduction = np.maximum(p_abduction, np.where(has[code], p, 0.0))
    p_abduction *= np.where(lat.minor, 1.6, 1.0)
    abduction_recorded = ~hotline & ((lat.year >= _COLLECTED_FROM_2017) | (rng.random(n) < 0.35))
    abduction = np.where(abduction_recorded, rng.random(n) < p_abduction, -1)
    return {
        **_indicator_cells(MEANS_OF_CONTROL, control),
        "meansOfControlNotSpecified": _to_cells(not_specified),
        "isAbduction": _to_cells(abduction),
    }


def _recruiter_columns(rng: np.random.Generator, lat: _Latent) -> dict[str, np.ndarray]:
    """Recruiter relationship indicators: always 0/1, with "unknown" set when none is known."""
    n = len(lat.year)
    has = lat.has
    group = np.where(has["FM"], 2, np.where(has["SE"], 0, np.where(has["FL"], 1, 3)))
    weights = np.array([_RELATION_BY_TYPE[g] for g in ("SE", "FL", "FM", "default")])[group]
    weights[lat.minor, 2] *= 2.5  # children are more often recruited by relatives
    relations = _multi_select(rng, weights, 0.06, 0.0).astype(np.int8)
    known = rng.random(n) < np.where(lat.hotline, 0.75, 0.45 + 0.3 * lat.since_2002)
    relations[~known] = 0
    return {
        **_indicator_cells(RECRUITER_RELATIONS, relations),
        "recruiterRelationUnknown": _to_cells(~known),
    }


def generate_ctdc_like(n_rows: int, seed: int) -> pd.DataFrame:
    """Generate synthetic records with CTDC's global 64-column layout.

    The same ``(n_rows, seed)`` always gives the same frame (numpy's PCG64 stream; no global
    state). Rows are sorted by year of registration, as CTDC publishes them.

    Args:
        n_rows: Number of records, >= 0.
        seed: Seed of ``numpy.random.default_rng``.

    Returns:
        A frame with exactly :data:`HEADER` as columns and only ``str`` cells: the terms-of-use
        column is empty, unknown is ``-99``, indicators are ``0``/``1``/``-99`` and every
        :data:`CONCATENATED_COLUMNS` cell joins the labels of its group's indicators that are ``1``.

    Raises:
        ValueError: if ``n_rows`` is negative.
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}.")
    model = _compile()
    rng = np.random.default_rng(seed)
    lat = _draw_latent(rng, model, n_rows)
    columns = {
        **_person_columns(rng, model, lat),
        **_exploitation_columns(rng, model, lat),
        **_control_columns(rng, lat),
        **_recruiter_columns(rng, lat),
    }
    for name, group in CONCATENATED_COLUMNS.items():
        indicators = np.column_stack([columns[c] == "1" for c, _ in group])
        columns[name] = _concatenate(indicators, [label for _, label in group])

    # Fill one 2-D object block directly: pandas would otherwise copy every column into it again.
    order = np.argsort(lat.year, kind="stable")
    cells = np.empty((n_rows, len(HEADER)), dtype=object)
    for j, name in enumerate(HEADER):
        cells[:, j] = columns[name][order]
    return pd.DataFrame(cells, columns=list(HEADER), copy=False)
