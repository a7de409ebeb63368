"""The reference implementation (tests/oracle) against docs/spec.md's worked numbers and hand-made cases.

Everything else is checked against the oracle, so these expectations are literal: docs/spec.md 8's
numbers (derived there from SDS's own tests and README) and cases small enough to count by hand.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SDS_EXAMPLE_CSV
from tests.oracle import (
    CellRules,
    PartialSupports,
    aggregate_seeded_weight,
    by_length,
    column_of,
    consolidate,
    consolidation_quota,
    count_combinations,
    count_encoded,
    dp_candidates,
    dp_post_process,
    dp_valid_tuples,
    encode,
    encode_frame,
    protect,
    row_seeded,
    sample_weighted,
    seeded_records,
    sub_combinations,
    support,
    suppress,
)


def _read(text: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = list(csv.reader(io.StringIO(text)))
    return header, rows


def _records(path: Path, rules: CellRules) -> list[frozenset[str]]:
    header, rows = _read(path.read_text(encoding="utf-8"))
    return [rules.record(header, row) for row in rows]


def _key(combination: tuple[str, ...]) -> str:
    return ";".join(combination)


# --- docs/spec.md 2: which cells are attributes ---------------------------------------------------------


def test_data_block_normalisation_zeros_and_empties(shared_data: Path) -> None:
    records = _records(shared_data / "sds_test_resources/test_data_block.csv", CellRules())
    assert records == [
        {"A:a1", "C:c1", "D<semicolon>h:d1"},
        {"A:a2", "B:b2", "D<semicolon>h:d3<semicolon>D", "E<colon>h:e2"},
        {"A:a3<colon>A", "B:b3"},
        {"D<semicolon>h:d4"},
    ]
    with_zeros = _records(
        shared_data / "sds_test_resources/test_data_block.csv", CellRules(sensitive_zeros=["B"])
    )
    assert "B:0" in with_zeros[0] and "B:0" in with_zeros[3] and "C:0" not in with_zeros[1]


def test_multi_value_pieces_are_trimmed_normalised_deduplicated_and_expanded(shared_data: Path) -> None:
    rules = CellRules(multi_value_columns={"B": ";", "C": ";", "D": "|"})
    header, rows = _read((shared_data / "sds_test_resources/test_data_block_multi_value.csv").read_text())
    records = [rules.record(header, row) for row in rows]
    # Pieces "0" and "" are no attribute; a quoted cell is one value, normalised.
    assert records[1] == {"RowID:2", "A:a1", "C_c1:1", "D_d1:1", "D_d4:1"}
    assert "G<colon>SenseZeros:Value<semicolon>ToNormalize" in records[2]
    # docs/spec.md's headers but F, whose cells are all "0": a column with no attribute.
    assert {column_of(a) for r in records for a in r} == {
        "RowID", "A", "B_b1", "B_b3", "B_b4", "C_c1", "C_c2", "C_c3",
        "G<colon>SenseZeros", "D_d1", "D_d3", "D_d4",
    }  # fmt: skip


def test_unknown_values_are_no_attribute_and_zero_is_only_a_plain_zero() -> None:
    rules = CellRules(unknown_values=["-99", " unknown "])
    assert rules.record(["A", "B", "C", "D", "E"], ["-99", "unknown", "0", "0.0", " 00 "]) == {
        "D:0.0",
        "E:00",
    }


def test_frame_encoding_numbers_attributes_in_byte_order() -> None:
    frame = pd.DataFrame({"b": ["x", "-99", "é", "x"], "a": ["Z", "z", "0", " Z "]})
    encoded = encode_frame(frame, CellRules(unknown_values=["-99"]))
    assert encoded.names == ["a:Z", "a:z", "b:x", "b:é"]
    assert encoded.records() == [[0, 2], [1], [3], [0, 2]]
    assert encoded.attr_column.tolist() == [0, 0, 1, 1]
    same = encode([{"b:x", "a:Z"}, {"a:z"}, {"b:é"}, {"a:Z", "b:x"}])
    assert same.names == encoded.names and same.records() == encoded.records()


# --- docs/spec.md 3: counts and protection ------------------------------------------------------------


def test_spec_8_1_cli_readme_aggregates() -> None:
    header, rows = _read(SDS_EXAMPLE_CSV)
    records = [CellRules().record(header, row) for row in rows]
    counts = count_combinations(records, 3)
    assert by_length(counts) == {1: 13, 2: 39, 3: 39}
    assert by_length(c for c, n in counts.items() if n < 2) == {1: 4, 2: 24, 3: 28}
    reportable = {_key(c): n for c, n in protect(counts, 2).items()}
    assert len(reportable) == 35
    assert {c: n for c, n in reportable.items() if ";" not in c} == {
        "A:a2": 6, "B:b2": 6, "C:c2": 6, "D:d2": 6, "A:a1": 4, "B:b1": 4, "C:c1": 4, "D:d1": 4, "F:1": 2,
    }  # fmt: skip
    assert reportable["C:c1;D:d1"] == 4 and reportable["B:b2;C:c2;F:1"] == 2
    assert by_length(c.split(";") for c in reportable) == {1: 9, 2: 15, 3: 11}


def test_spec_8_2_test_block(shared_data: Path) -> None:
    records = _records(shared_data / "sds_test_resources/test_block.csv", CellRules())
    counts = count_combinations(records, 4)
    assert by_length(counts) == {1: 8, 2: 12, 3: 6, 4: 1}
    assert {_key(c): n for c, n in protect(counts, 2).items()} == {"A:a1": 2, "B:b2": 2}


def test_spec_8_2_multi_value_column_joiner(shared_data: Path) -> None:
    rules = CellRules(multi_value_columns={"B": ";", "C": ";", "D": "|"})
    records = _records(shared_data / "sds_test_resources/test_multi_value_column_joiner.csv", rules)
    # 16 columns, of which G holds only zeros, so no attribute.
    assert len({column_of(a) for r in records for a in r}) == 15
    counts = count_combinations(records, 3)
    assert by_length(counts) == {1: 27, 2: 136, 3: 296}
    assert by_length(c for c, n in counts.items() if n < 2) == {1: 15, 2: 108, 3: 278}
    assert len(protect(counts, 2)) == 58


def test_spec_8_2_noise_aggregator_counts(shared_data: Path) -> None:
    records = _records(shared_data / "sds_test_resources/test_noise_aggregator.csv", CellRules())
    counts = count_combinations(records, 3)
    assert len(counts) == 21
    assert {_key(c) for c, n in counts.items() if n == 2} == {"A:a1", "C:c1", "A:a1;C:c1"}


def test_counts_by_hand_and_every_record_contributes_all_its_subsets() -> None:
    records = [[0, 1, 2], [0, 1], [2], [], [1, 2, 0]]
    assert count_combinations(records, 2) == {
        (0,): 3, (1,): 3, (2,): 3, (0, 1): 3, (0, 2): 2, (1, 2): 2,
    }  # fmt: skip
    combos, counts = count_encoded([0, 3, 5, 6, 6, 9], [0, 1, 2, 0, 1, 2, 2, 0, 1], 3)
    assert combos.tolist() == [
        [0, -1, -1], [1, -1, -1], [2, -1, -1], [0, 1, -1], [0, 2, -1], [1, 2, -1], [0, 1, 2],
    ]  # fmt: skip
    assert counts.tolist() == [3, 3, 3, 3, 2, 2, 2]


def test_sub_combinations_and_support() -> None:
    assert sub_combinations("cab", 3)[-1] == ("a", "b", "c")
    assert len(sub_combinations(range(5), 2)) == 5 + 10
    assert support([{1, 2}, {1}, {1, 2, 3}], (2, 1)) == 2
    assert support([{1, 2}], ()) == 1


# --- docs/spec.md 4: synthesis --------------------------------------------------------------------------


def test_sample_weighted_visits_keys_by_ascending_weight() -> None:
    # Weights 5, 1, 5 in the order 1, 0, 2: r = 1 -> key 1, r = 2..6 -> key 0, r = 7..11 -> key 2.
    picks = [sample_weighted([5, 1, 5], (r - 0.5) / 11) for r in range(1, 12)]
    assert picks == [1, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2]
    assert sample_weighted([0, 0], 0.3) is None
    assert sample_weighted([0, 3], 0.0) == 1


def test_supports_of_a_partial_record() -> None:
    # Records {0, 2}, {0, 3}, {1, 2}, {0, 2}: among the rows holding 0, attribute 2 is held twice.
    supports = PartialSupports([0, 2, 4, 6, 8], [0, 2, 0, 3, 1, 2, 2, 0], 4, cache_entries=1)
    assert supports.supports(()) == [3, 1, 3, 1]
    assert supports.rows((0,)).tolist() == [0, 1, 3]
    assert supports.supports((0,)) == [3, 0, 2, 1]
    assert supports.supports((0, 2)) == [2, 0, 2, 0]


def test_phase_one_grows_a_maximal_k_safe_subset_of_each_seed() -> None:
    # Columns: {0, 1} and {2, 3}. With k = 2, seed {0, 3} can keep 0 (support 3) but never 3 (support 1).
    seeds = [[0, 2], [0, 3], [1, 2], [0, 2]]
    supports = PartialSupports([0, 2, 4, 6, 8], [a for s in seeds for a in s], 4)
    out = seeded_records(supports, seeds, [0, 0, 1, 1], 2, lambda i: random.Random(i).random)
    assert out[1] == [0] and out[2] == [2] and out[0] == out[3] == [0, 2]


def test_consolidation_places_every_available_count() -> None:
    seeds = [[0, 2], [0, 3], [1, 2], [0, 2], [1, 3], [1, 2]]
    indptr = np.arange(0, 13, 2)
    supports = PartialSupports(indptr, [a for s in seeds for a in s], 4)
    single = np.array(supports.supports(()))
    assert consolidation_quota(single, np.array([1, 3, 0, 5]), 2).tolist() == [1, 0, 4, 0]
    extra = consolidate(supports, [1, 0, 4, 0], [0, 0, 1, 1], 2, lambda j: random.Random(j).random)
    assert np.bincount([a for r in extra for a in r], minlength=4).tolist() == [1, 0, 4, 0]
    with pytest.raises(ValueError, match="support below k"):
        consolidate(supports, [1, 0, 0, 0], [0, 0, 1, 1], 4, lambda j: random.Random(j).random)


def test_suppression_drops_excess_from_the_first_records_visited() -> None:
    # 0 and 2 are held once too often twice each: records 3, 1 and 4, visited first, lose them all.
    records = [[0, 1], [0], [1, 2], [0, 2], [2]]
    assert suppress(records, [1, 2, 1], [3, 1, 4, 0, 2]) == [(0, [0, 1]), (2, [1, 2])]
    assert suppress(records, [3, 2, 3], range(5)) == list(enumerate(records))


def test_row_seeded_places_the_reported_counts_exactly_in_k_safe_records() -> None:
    rng = np.random.default_rng(5)
    seeds = [
        sorted({int(rng.integers(0, 3)), 3 + int(rng.integers(0, 4)), 7 + int(rng.integers(0, 2))})
        for _ in range(60)
    ]
    attr_column = [0, 0, 0, 1, 1, 1, 1, 2, 2]
    k = 3
    out = row_seeded(seeds, attr_column, k, random.Random(1))
    single = np.bincount([a for s in seeds for a in s], minlength=9)
    assert np.bincount([a for r in out for a in r], minlength=9).tolist() == (single // k * k).tolist()
    assert all(r and support(map(set, seeds), r) >= k for r in out)


def test_aggregate_seeded_weight_up_to_and_beyond_l() -> None:
    aggregates = {(0,): 9, (1,): 8, (2,): 7, (0, 1): 6, (0, 2): 5, (1, 2): 4}
    assert aggregate_seeded_weight(aggregates, {}, [0], 1, reporting_length=2, percentile=95) == 6
    assert aggregate_seeded_weight(aggregates, {(0, 1): 6}, [0], 1, reporting_length=2, percentile=95) == 0
    # Beyond L = 2: the sub-combinations holding 2 are (2,), (0, 2), (1, 2) with weights 7, 5, 4.
    assert aggregate_seeded_weight(aggregates, {}, [0, 1], 2, reporting_length=2, percentile=50) == 5
    assert aggregate_seeded_weight(aggregates, {}, [0, 1], 2, reporting_length=2, percentile=100) == 7
    assert aggregate_seeded_weight({(0,): 1, (1,): 1}, {}, [0], 1, reporting_length=2, percentile=50) == 0


# --- docs/spec.md 3.4: DP candidates and post-processing ------------------------------------------------


def test_spec_8_2_noise_aggregator_candidates(shared_data: Path) -> None:
    encoded = encode(_records(shared_data / "sds_test_resources/test_noise_aggregator.csv", CellRules()))
    assert encoded.names == ["A:a1", "A:a2", "B:b1", "B:b2", "C:c1", "D:d1", "D:d2"]
    columns = encoded.attr_column.tolist()
    v1 = {(a,) for a in range(7)}
    v2 = dp_candidates(v1, columns, set())
    assert len(v2) == 18
    assert len(dp_candidates(v2, columns, v2)) == 20
    s2 = v2 - {(0, 2), (1, 5)}  # without A:a1;B:b1 and A:a2;D:d1
    assert len(dp_candidates(s2, columns, s2)) == 14


def test_valid_tuples_need_every_shorter_subset_to_survive() -> None:
    assert dp_valid_tuples([2, 0, 1], 2, None) == [(0, 1), (0, 2), (1, 2)]
    assert dp_valid_tuples([0, 1, 2], 3, {(0, 1), (0, 2), (1, 2)}) == [(0, 1, 2)]
    assert dp_valid_tuples([0, 1, 2], 3, {(0, 1), (0, 2)}) == []


def test_spec_3_4_post_processing() -> None:
    # docs/spec.md's example (A:a1;B:b1 = 25, its child 30 -> 25) and a missing parent taking its largest
    # child.
    got = dp_post_process({(0,): 40, (1,): 38, (2,): 31, (0, 1): 25, (0, 1, 2): 30, (1, 2, 3): 9, (3,): 20})
    assert got[(0, 1, 2)] == 25
    assert got[(1, 2)] == 30 and got[(1, 3)] == 9 and got[(2, 3)] == 9 and got[(0, 2)] == 30
