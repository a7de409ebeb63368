"""``cached(df)``: a frame is cached inside its ``with`` block only, also when the block fails."""

from __future__ import annotations

import pytest
from pyspark import StorageLevel
from pyspark.sql import SparkSession

from ctdc_spark._caching import cached


@pytest.mark.spark
def test_a_frame_is_cached_inside_the_block_and_released_after_it(spark: SparkSession) -> None:
    df = spark.range(10)
    with cached(df, StorageLevel.MEMORY_AND_DISK) as kept:
        assert kept is df
        assert df.is_cached and df.storageLevel == StorageLevel.MEMORY_AND_DISK
        assert kept.count() == 10
    assert not df.is_cached


@pytest.mark.spark
def test_a_failing_block_releases_its_cache_too(spark: SparkSession) -> None:
    df = spark.range(3)
    with pytest.raises(ZeroDivisionError), cached(df):
        assert df.storageLevel == StorageLevel.MEMORY_AND_DISK_DESER  # DataFrame.persist's default
        _ = 1 / 0
    assert not df.is_cached
