"""What every stage receives (:class:`RunContext`) and returns (:class:`StageResult`)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ctdc_spark.config import JobConfig
from ctdc_spark.dp import PRODUCTION_NOISE, NoiseSource
from ctdc_spark.io.files import write_json
from ctdc_spark.io.paths import local_path

if TYPE_CHECKING:
    from ctdc_spark.io.delta import RunTables


@dataclass(frozen=True)
class RunContext:
    """Everything a stage needs to know about the run it belongs to."""

    cfg: JobConfig
    run_id: str
    input_fingerprint: str
    noise_source: NoiseSource = PRODUCTION_NOISE
    """Where DP noise comes from: OpenDP's samplers; only tests construct a context with another."""

    @functools.cached_property
    def signature(self) -> str:
        """Short hash of what this run's results depend on: the input and the config."""
        text = f"{self.input_fingerprint}:{self.cfg.config_hash()}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @functools.cached_property
    def tables(self) -> RunTables:
        """This run's rows of the Delta tables, e.g. ``ctx.tables.read(spark, RECORDS)``."""
        # Imported on use: this module imports without pyspark, as tests/unit/test_pure_imports.py checks.
        from ctdc_spark.io.delta import RunTables

        return RunTables(self.root, self.run_id, self.signature)

    @property
    def root(self) -> str:
        """``output.root``."""
        return self.cfg.output.root

    @property
    def private_dir(self) -> Path:
        """``<root>/private/<run_id>``: never released."""
        return local_path(self.root) / "private" / self.run_id

    @property
    def pending_dir(self) -> Path:
        """``<root>/private/<run_id>/pending``: synthetic exports until the evaluate stage verifies them."""
        return self.private_dir / "pending"

    @property
    def staging_dir(self) -> Path:
        """``<root>/staging/<run_id>``: public artefacts before they are published as a bundle."""
        return local_path(self.root) / "staging" / self.run_id

    def synthesis_seed(self) -> int:
        """The sampling seed: explicit in config, or a secret drawn once per run and kept private.

        The secret seed is stored only under ``private/<run_id>/`` (created on first use, so a run
        that fails before synthesis leaves nothing behind); a rerun after a failure reproduces the
        same sample, while nobody without access to private files can.
        """
        if self.cfg.synthesis.seed is not None:
            return self.cfg.synthesis.seed
        path = self.private_dir / "run_secrets.json"
        if path.exists():
            return int(json.loads(path.read_text(encoding="utf-8"))["synthesis_seed"])
        seed = secrets.randbits(63)
        write_json(path, {"synthesis_seed": seed})
        os.chmod(path, 0o600)
        return seed

    @property
    def release_root(self) -> Path:
        """``<root>/release``."""
        return local_path(self.root) / "release"


@dataclass
class StageResult:
    """What a stage reports to the manifest and to the user (counts, versions, paths; no values)."""

    row_counts: dict[str, int] = field(default_factory=dict)
    delta_versions: dict[str, int] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    privacy: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    """Wall seconds of a stage's phases (for logs and benchmarks; not part of the manifest)."""

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the wall time of the ``with`` block to ``timings[phase]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - start


@dataclass(frozen=True)
class ReleaseFacts:
    """What the aggregate stage fixed about the release, which later stages restate (public numbers).

    The aggregate stage records it in its manifest row (:meth:`row_counts`); the later stages read it
    back with :meth:`ctdc_spark.io.delta.RunTables.release_facts`, never from an exported file.
    """

    published_record_count: int
    """The record count the reportable aggregates publish: floor(n/k)k, or the DP-protected count."""

    MANIFEST_KEY: ClassVar[str] = "published_records"

    def row_counts(self) -> dict[str, int]:
        """The entries this adds to the aggregate stage's manifest ``row_counts``."""
        return {self.MANIFEST_KEY: self.published_record_count}
