"""Shared fixtures: one session-scoped local SparkSession with Delta, test-data helpers, and the
seeded DP noise source that tests pass in explicitly."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pyspark.sql import SparkSession

from ctdc_spark._random import mix64, stage_key
from ctdc_spark.config import JobConfig, SparkConfig, load_config
from ctdc_spark.dp import NoiseSource, SelectionNoise, discrete_gaussian_tail
from ctdc_spark.pipeline import RunSummary, run_pipeline
from ctdc_spark.session import build_session

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local[2] session for the whole run (never stopped per test)."""
    os.environ["SPARK_TESTING"] = "1"
    session = build_session(
        SparkConfig(
            master="local[2]",
            app_name="ctdc-spark-tests",
            conf={
                "spark.sql.shuffle.partitions": "2",
                "spark.default.parallelism": "2",
                "spark.driver.memory": "3g",
            },
        ),
        under_spark_submit=False,
    )
    yield session


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (present in CI; absent in a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside this checkout (it is in CI)")
    return SHARED_DATA


def write_text(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write a test input file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def job_config(input_path: Path | str, output_root: Path, *overrides: str) -> JobConfig:
    """A validated config for a test input, with ``--set``-style overrides."""
    return load_config(None, overrides=[f"input.path={input_path}", f"output.root={output_root}", *overrides])


def run_stages(
    spark: SparkSession, cfg: JobConfig, stages: Sequence[str], run_id: str = "test"
) -> RunSummary:
    """Run pipeline stages in-process and return the summary."""
    return run_pipeline(spark, cfg, stages=stages, run_id=run_id)


class SeededTestNoiseSource(NoiseSource):
    """Reproducible DP noise for tests, with the distributions of the production source.

    Only tests construct it and pass it in (``RunContext(noise_source=...)``, ``source=``); the library
    never does. Driver-side draws (record count, percentile) come from one PCG64 stream in call order;
    count noise is a pure function of ``(seed, stream, key row)``, so a Spark stage gives the same
    noise for any partitioning, batching or task retry. The count noise is an exact discrete
    Gaussian by inverse CDF (the tail of :func:`ctdc_spark.dp.discrete_gaussian_tail`) of a keyed
    uniform; noisy max adds Gumbel or exponential noise and keeps the first of tied maxima.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._generator = np.random.Generator(np.random.PCG64(self.seed))

    def _draw_laplace_integer(self, value: int, scale: float) -> int:
        # Two-sided geometric: the difference of two geometric variables with p = 1 - exp(-1/scale).
        p = -math.expm1(-1.0 / scale)
        return value + int(self._generator.geometric(p)) - int(self._generator.geometric(p))

    def _draw_gaussian_integers(
        self, counts: npt.NDArray[np.int64], scale: float, *, stream: int, keys: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        with np.errstate(over="ignore"):
            h = mix64(np.full(len(keys), np.uint64(self.seed & 0xFFFFFFFFFFFFFFFF) ^ np.uint64(stream)))
            for column in keys.T:
                h = mix64(h ^ column.astype(np.uint64))
        uniform = ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
        tail = discrete_gaussian_tail(scale)
        # P(Z >= m) = tail[m] for m >= 0 and 1 - tail[1 - m] below, so the CDF at z is 1 - tail[z + 1].
        support = np.arange(-len(tail) + 1, len(tail) - 1)
        cdf = np.where(
            support >= 0, 1.0 - tail[np.clip(support + 1, 0, len(tail) - 1)], tail[np.abs(support)]
        )
        noise = support[np.minimum(np.searchsorted(cdf, uniform), len(support) - 1)]
        return counts + noise

    def _draw_noisy_max(self, scores: npt.NDArray[np.float64], scale: float, noise: SelectionNoise) -> int:
        n = len(scores)
        draws = (
            self._generator.gumbel(0.0, scale, n)
            if noise == "gumbel"
            else self._generator.exponential(scale, n)
        )
        return int(np.argmax(scores + draws))  # the first of tied maxima, as SDS

    def _draw_secret_key(self) -> int:
        return stage_key(self.seed, "dp-contribution")


# The example.csv of SDS's CLI README (packages/cli/README.md, MIT), with F = 1 in data rows 4 and
# 5, the variant docs/spec.md 8.1 shows reproduces the README's aggregate output exactly.
SDS_EXAMPLE_CSV = """A,B,C,F,G,D
a2,b2,c3,0,0,d2
a1,b1,c1,0,0,d1
a1,b1,c1,0,0,d1
a1,b2,c2,1,0,d2
a2,b2,c2,1,0,d2
a2,b1,c2,0,0,d2
a1,b1,c1,0,0,d1
a2,b3,c2,0,0,d2
a2,b2,c1,0,0,d1
a3,b2,c2,0,0,d2
a2,b2,c2,0,0,d3
"""


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the logging set-up back after a test that runs ``cli.main`` (which configures logging)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("ctdc_spark").level)
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("ctdc_spark").setLevel(saved[2])
