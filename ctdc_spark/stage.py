"""What every stage receives (:class:`RunContext`) and returns (:class:`StageResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ctdc_spark.config import JobConfig
from ctdc_spark.io.paths import local_path


@dataclass(frozen=True)
class RunContext:
    """Everything a stage needs to know about the run it belongs to."""

    cfg: JobConfig
    run_id: str
    seed: int
    input_fingerprint: str

    @property
    def root(self) -> str:
        """``output.root``."""
        return self.cfg.output.root

    @property
    def private_dir(self) -> Path:
        """``<root>/private/<run_id>``: never released."""
        return local_path(self.root) / "private" / self.run_id

    @property
    def staging_dir(self) -> Path:
        """``<root>/staging/<run_id>``: public artefacts before they are published as a bundle."""
        return local_path(self.root) / "staging" / self.run_id

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
