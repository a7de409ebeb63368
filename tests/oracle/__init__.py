"""The one reference implementation of SDS semantics that tests and benchmarks check ctdc-spark against.

Small and written to be read next to docs/spec.md, in plain Python and numpy: it shares no code with
the library's engines (it may use its public config and types), so a bug in an engine cannot hide
in the expectation too. Every brute-force check in ``tests/`` and every one-process baseline in
``scripts/`` uses it; ``tests/unit/test_oracle.py`` checks it against docs/spec.md's worked numbers.

* :mod:`tests.oracle.records`: which cells are attributes, and records as attribute ids (docs/spec.md 2).
* :mod:`tests.oracle.aggregates`: exact combination counts and k-anonymous protection (docs/spec.md 3.1-3.2).
* :mod:`tests.oracle.synthesis`: support, weighted draws, ``row_seeded`` and ``aggregate_seeded``'s
  weights (docs/spec.md 4).
* :mod:`tests.oracle.dp`: DP candidate sets and post-processing (docs/spec.md 3.4).

Scripts run from the repository root with ``PYTHONPATH=.`` import it as ``tests.oracle``.
"""

from __future__ import annotations

from tests.oracle.aggregates import (
    by_length,
    combination_string,
    count_combinations,
    count_encoded,
    protect,
    rounded_down,
    sub_combinations,
)
from tests.oracle.dp import dp_candidates, dp_post_process, dp_valid_tuples
from tests.oracle.records import CellRules, EncodedRecords, column_of, encode, encode_frame, normalise
from tests.oracle.synthesis import (
    PartialSupports,
    aggregate_seeded_weight,
    consolidate,
    consolidation_quota,
    grow,
    row_seeded,
    sample_weighted,
    seeded_records,
    support,
    suppress,
)

__all__ = [
    "CellRules",
    "EncodedRecords",
    "PartialSupports",
    "aggregate_seeded_weight",
    "by_length",
    "column_of",
    "combination_string",
    "consolidate",
    "consolidation_quota",
    "count_combinations",
    "count_encoded",
    "dp_candidates",
    "dp_post_process",
    "dp_valid_tuples",
    "encode",
    "encode_frame",
    "grow",
    "normalise",
    "protect",
    "rounded_down",
    "row_seeded",
    "sample_weighted",
    "seeded_records",
    "sub_combinations",
    "support",
    "suppress",
]
