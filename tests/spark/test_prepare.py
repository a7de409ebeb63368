"""The prepare stage on SDS's edge-case files (docs/spec.md 8.2) and on the shared real datasets."""

from __future__ import annotations

import bz2
import gzip
import logging
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark.config import load_config
from ctdc_spark.errors import InputDataError
from ctdc_spark.io import delta as delta_io
from ctdc_spark.prepare._layout import list_input_files
from ctdc_spark.schemas import ATTRIBUTES, COLUMNS, RECORDS
from tests.conftest import SHARED_DATA, job_config, run_stages, write_text

pytestmark = pytest.mark.spark


def records_as_strings(spark: SparkSession, root: Path, run_id: str = "test") -> DataFrame:
    """``record_id, attrs`` with attributes rendered as sorted ``col:value`` strings."""
    records = delta_io.read_run_table(spark, RECORDS, root=str(root), run_id=run_id)
    attributes = delta_io.read_run_table(spark, ATTRIBUTES, root=str(root), run_id=run_id)
    names = attributes.select("attr_id", F.concat_ws(":", "column", "value").alias("name"))
    exploded = records.select("record_id", F.explode_outer("attrs").alias("attr_id"))
    return (
        exploded.join(names, "attr_id", "left")
        .groupBy("record_id")
        .agg(F.sort_array(F.collect_list("name")).alias("attrs"))
    )


def expected_records(spark: SparkSession, rows: list[list[str]]) -> DataFrame:
    return spark.createDataFrame(
        [(i, sorted(r)) for i, r in enumerate(rows)], "record_id long, attrs array<string>"
    )


@pytest.fixture(scope="module")
def data_block_root(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """test_data_block.csv prepared once with default settings."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside this checkout (it is in CI)")
    root = tmp_path_factory.mktemp("data_block")
    run_stages(spark, job_config(SHARED_DATA / "sds_test_resources/test_data_block.csv", root), ["prepare"])
    return root


def test_data_block_headers_and_records(spark: SparkSession, data_block_root: Path) -> None:
    tmp_path = data_block_root
    columns = delta_io.read_run_table(spark, COLUMNS, root=str(tmp_path), run_id="test")
    assert [r["column"] for r in columns.orderBy("column_index").collect()] == [
        "A",
        "B",
        "C",
        "D<semicolon>h",
        "E<colon>h",
    ]
    assert_df_equality(
        records_as_strings(spark, tmp_path),
        expected_records(
            spark,
            [
                ["A:a1", "C:c1", "D<semicolon>h:d1"],
                ["A:a2", "B:b2", "D<semicolon>h:d3<semicolon>D", "E<colon>h:e2"],
                ["A:a3<colon>A", "B:b3"],
                ["D<semicolon>h:d4"],
            ],
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )


@pytest.mark.slow
def test_tabs_and_line_breaks_become_spaces_in_headers_and_values(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Quoted CSV cells may hold tabs and line breaks; the SDS TSV (one line per combination, one tab
    # before its count) and line-based CSV readers cannot, so prepare folds them like ; and :.
    csv_text = '"Multi\nHeader","Tab\tH"\r\n"Multi\nLine, v","a\tb"\r\n" x\r\ny ","c"\r\n'
    (tmp_path / "in.csv").write_bytes(csv_text.encode())
    run_stages(spark, job_config(tmp_path / "in.csv", tmp_path / "out"), ["prepare"])
    columns = delta_io.read_run_table(spark, COLUMNS, root=str(tmp_path / "out"), run_id="test")
    assert [r["column"] for r in columns.orderBy("column_index").collect()] == ["Multi Header", "Tab H"]
    assert_df_equality(
        records_as_strings(spark, tmp_path / "out"),
        expected_records(
            spark, [["Multi Header:Multi Line, v", "Tab H:a b"], ["Multi Header:x y", "Tab H:c"]]
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )


@pytest.mark.slow
def test_compressed_and_windows_encoded_inputs_prepare_like_plain_utf8(
    spark: SparkSession, tmp_path: Path
) -> None:
    text = "country,note\nCôte d'Ivoire,5 €\nNepal,é\nNepal,\n"
    rows = [["country:Côte d'Ivoire", "note:5 €"], ["country:Nepal", "note:é"], ["country:Nepal"]]
    # One folder of a plain, a gzip and a bzip2 file (read in name order), then one file per encoding.
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder/a.csv").write_bytes(text.encode())
    (tmp_path / "folder/b.csv.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "folder/c.csv.bz2").write_bytes(bz2.compress(text.encode()))
    (tmp_path / "windows.csv").write_bytes(text.encode("cp1252"))
    (tmp_path / "bom.csv").write_bytes("\ufeff".encode() + text.encode())
    cases = [("folder", [], rows * 3), ("windows.csv", ["input.encoding=cp1252"], rows)]
    cases.append(("bom.csv", ["input.encoding=utf-8-sig"], rows))
    for name, overrides, expected in cases:
        out = tmp_path / f"out_{name}"
        run_stages(spark, job_config(tmp_path / name, out, *overrides), ["prepare"])
        assert_df_equality(
            records_as_strings(spark, out).drop("record_id"),
            expected_records(spark, expected).drop("record_id"),
            ignore_row_order=True,
            ignore_nullable=True,
        )


def test_a_compression_spark_cannot_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "cases.csv.zst").write_bytes(b"(\xb5/\xfd")
    with pytest.raises(InputDataError, match=r"zstd-compressed.*recompress it with gzip"):
        list_input_files(load_config(None, overrides=[f"input.path={tmp_path / 'cases.csv.zst'}"]).input)


def test_a_folder_input_takes_compressed_text_files_too(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv.gz", "c.tsv.bz2", "notes.md", "d.gz"):
        (tmp_path / name).write_bytes(b"")
    files = list_input_files(load_config(None, overrides=[f"input.path={tmp_path}"]).input)
    assert [Path(f).name for f in files] == ["a.csv", "b.csv.gz", "c.tsv.bz2"]


@pytest.mark.slow
def test_use_columns_sensitive_zeros_and_record_limit(
    spark: SparkSession, shared_data: Path, tmp_path: Path
) -> None:
    cfg = job_config(
        shared_data / "sds_test_resources/test_data_block.csv",
        tmp_path,
        'input.use_columns=["a", " B ", "D;h"]',  # case-insensitive, trimmed, file order kept
        "input.sensitive_zeros=[b]",
        "input.record_limit=2",
    )
    run_stages(spark, cfg, ["prepare"])
    assert_df_equality(
        records_as_strings(spark, tmp_path),
        expected_records(
            spark, [["A:a1", "B:0", "D<semicolon>h:d1"], ["A:a2", "B:b2", "D<semicolon>h:d3<semicolon>D"]]
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_attribute_ids_follow_canonical_byte_order(spark: SparkSession, data_block_root: Path) -> None:
    attributes = delta_io.read_run_table(spark, ATTRIBUTES, root=str(data_block_root), run_id="test")
    names = [f"{r['column']}:{r['value']}" for r in attributes.orderBy("attr_id").collect()]
    assert names == sorted(names, key=lambda s: s.encode())
    assert [r["attr_id"] for r in attributes.orderBy("attr_id").collect()] == list(range(len(names)))


@pytest.mark.slow
def test_multi_value_expansion(spark: SparkSession, shared_data: Path, tmp_path: Path) -> None:
    cfg = job_config(
        shared_data / "sds_test_resources/test_data_block_multi_value.csv",
        tmp_path,
        'input.multi_value_columns={B: ";", C: ";", D: "|"}',
    )
    run_stages(spark, cfg, ["prepare"])
    columns = delta_io.read_run_table(spark, COLUMNS, root=str(tmp_path), run_id="test")
    assert [r["column"] for r in columns.orderBy("column_index").collect()] == [
        "RowID",
        "A",
        "B_b1",
        "B_b3",
        "B_b4",
        "C_c1",
        "C_c2",
        "C_c3",
        "F<colon>SenseZeros",
        "G<colon>SenseZeros",
        "D_d1",
        "D_d3",
        "D_d4",
    ]
    assert_df_equality(
        records_as_strings(spark, tmp_path),
        expected_records(
            spark,
            [
                [
                    "RowID:1",
                    "A:a1",
                    "B_b1:1",
                    "B_b3:1",
                    "B_b4:1",
                    "C_c1:1",
                    "C_c2:1",
                    "C_c3:1",
                    "D_d1:1",
                    "D_d3:1",
                ],
                ["RowID:2", "A:a1", "C_c1:1", "D_d1:1", "D_d4:1"],
                ["RowID:3", "A:a1", "B_b1:1", "G<colon>SenseZeros:Value<semicolon>ToNormalize", "D_d1:1"],
            ],
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )


@pytest.mark.slow
def test_subject_id_joining(spark: SparkSession, shared_data: Path, tmp_path: Path) -> None:
    cfg = job_config(
        shared_data / "sds_test_resources/test_duplicated_id_valid.csv",
        tmp_path,
        "input.subject_id=ID",
        'input.multi_value_columns={A: ";", B: ";", C: ";", D: "|"}',
    )
    run_stages(spark, cfg, ["prepare"])
    records = {r["record_id"]: r["attrs"] for r in records_as_strings(spark, tmp_path).collect()}
    assert len(records) == 9  # one record per subject, sorted by id
    assert records[8] == sorted(
        [
            "A_a1:1",
            "A_a2:1",
            "A_b2:1",
            "B_b1:1",
            "B_b2:1",
            "C_c2:1",
            "G:1",
            "D_d1:1",
            "D_d10:1",
            "D_d3:1",
            "D_d7:1",
        ]
    )
    assert records[0] == sorted(
        ["A_a1:1", "B_b1:1", "B_b3:1", "B_b4:1", "C_c1:1", "C_c2:1", "C_c3:1", "D_d1:1", "D_d3:1"]
    )
    assert not any(a.startswith("ID") for attrs in records.values() for a in attrs)  # never an attribute


def test_subject_id_conflicts_name_the_columns(
    spark: SparkSession, shared_data: Path, tmp_path: Path
) -> None:
    cfg = job_config(
        shared_data / "sds_test_resources/test_duplicated_id_valid.csv", tmp_path, "input.subject_id=ID"
    )
    with pytest.raises(InputDataError) as info:
        run_stages(spark, cfg, ["prepare"])
    assert str(info.value).endswith(
        "please set the following columns as multi value if you want to join records with duplicated IDs: "
        "A, B, C, D"
    )


def test_subject_id_missing_ids(spark: SparkSession, shared_data: Path, tmp_path: Path) -> None:
    cfg = job_config(
        shared_data / "sds_test_resources/test_duplicated_id_missing_id.csv",
        tmp_path,
        "input.subject_id=ID",
        'input.multi_value_columns={A: ";", B: ";", C: ";", D: "|"}',
    )
    with pytest.raises(InputDataError, match="records with missing/empty Subject ID: 2 row") as info:
        run_stages(spark, cfg, ["prepare"])
    assert "data rows 5, 10 of test_duplicated_id_missing_id.csv" in str(info.value)


@pytest.mark.slow
def test_ctdc_victim_perpetrator_dataset(spark: SparkSession, shared_data: Path, tmp_path: Path) -> None:
    multi = "{IP_Gender: ';', IP_ageBroad: ';', IP_citizen_UNRegion: ';', IP_Relation: ';', IP_PayMoney: ';'}"
    cfg = job_config(
        shared_data / "ctdc_vp_synthetic/CTDC_VPsynthetic_condensed.csv",
        tmp_path,
        f"input.multi_value_columns={multi}",
    )
    run_stages(spark, cfg, ["prepare"])
    attributes = delta_io.read_run_table(spark, ATTRIBUTES, root=str(tmp_path), run_id="test")
    by_column = {
        r["column"]: r["values"]
        for r in attributes.groupBy("column").agg(F.collect_set("value").alias("values")).collect()
    }
    for indicator in (
        "isForcedLabour",
        "isSexualExploit",
        "IP_Exploiter",
        "IP_RecruiterBroker",
        "IP_TransactionProcess",
        "IP_ControlAbuseKidnap",
    ):
        assert by_column[indicator] == ["1"]
    assert {"IP_Gender_Female", "IP_Gender_Male"} <= set(by_column)
    assert "IP_Gender" not in by_column and by_column["IP_Gender_Female"] == ["1"]
    assert not any(";" in c or ";" in "".join(v) for c, v in by_column.items())
    records = delta_io.read_run_table(spark, RECORDS, root=str(tmp_path), run_id="test")
    assert records.count() == 21_195
    assert records.select(F.max(F.size("attrs"))).head()[0] >= 14


@pytest.mark.slow
def test_nist_unknown_and_bins(spark: SparkSession, shared_data: Path, tmp_path: Path) -> None:
    cfg = job_config(
        shared_data / "nist_crc/national2019.csv",
        tmp_path,
        "input.unknown_values=['', N]",
        "input.bins={AGEP: [18, 30, 45, 65], PINCP: [0, 20000, 50000, 100000], POVPIP: [100, 200, 400], "
        "DENSITY: [100, 1000, 5000], PWGTP: [50, 100, 200], WGTP: [50, 100, 200]}",
        "input.sensitive_zeros=[AGEP, PINCP, WGTP]",
    )
    run_stages(spark, cfg, ["prepare"])
    attributes = delta_io.read_run_table(spark, ATTRIBUTES, root=str(tmp_path), run_id="test")
    values = {
        r["column"]: set(r["values"])
        for r in attributes.groupBy("column").agg(F.collect_set("value").alias("values")).collect()
    }
    assert values["AGEP"] <= {"<18", "[18,30)", "[30,45)", "[45,65)", ">=65"}
    assert values["POVPIP"] <= {"<100", "[100,200)", "[200,400)", ">=400"}
    assert all("N" not in v for v in values.values())  # the unknown marker is never an attribute
    assert len(values["INDP"]) > 200  # categorical columns are untouched


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.slow
def test_parquet_and_delta_inputs_prepare_like_csv(
    spark: SparkSession, shared_data: Path, tmp_path: Path, fmt: str
) -> None:
    source = shared_data / "sds_test_resources/test_data_block.csv"
    frame = spark.read.option("header", "true").csv(str(source))
    # Positional names: Spark would rename the reserved characters away in Parquet/Delta columns.
    frame = frame.toDF(*[f"col{i}" for i in range(len(frame.columns))])
    path = tmp_path / f"input.{fmt}"
    frame.coalesce(1).write.format(fmt).save(str(path))
    csv_root = tmp_path / "csv"
    run_stages(spark, job_config(source, csv_root), ["prepare"])
    run_stages(spark, job_config(path, tmp_path / fmt, f"input.format={fmt}"), ["prepare"])
    strip = F.transform("attrs", lambda a: F.regexp_replace(a, "^[^:]+:", ""))
    assert_df_equality(
        records_as_strings(spark, tmp_path / fmt).select("record_id", F.sort_array(strip).alias("v")),
        records_as_strings(spark, csv_root).select("record_id", F.sort_array(strip).alias("v")),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_a_column_with_more_values_than_n_over_k_is_named_in_a_warning(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [f"secret-{i:03d},{'ab'[i % 2]}" for i in range(60)]
    write_text(tmp_path / "in.csv", "case_ref,sex\n" + "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING, logger="ctdc_spark.prepare.stage"):
        run_stages(
            spark, job_config(tmp_path / "in.csv", tmp_path / "out", "privacy.resolution=10"), ["prepare"]
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "column case_ref has 60 distinct values for 60 records, more than n / k = 6" in warnings[0]
    assert "input.use_columns" in warnings[0] and "input.bins" in warnings[0]
    assert "secret-" not in caplog.text  # the column is named, its values never
