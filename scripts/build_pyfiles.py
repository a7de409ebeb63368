"""Build the ``--py-files`` archive that ships ``ctdc_spark`` to Spark executors.

A plain zip of the pure-Python ``ctdc_spark`` package (no wheel build, so no build backend or network is
needed). Python imports packages straight from a zip on ``sys.path``, which is what ``--py-files`` puts
there on the driver and on every executor. Native dependencies (numpy, pandas, pyarrow, pyyaml) are *not*
in the zip: they come from the cluster's Python (the venv on the local cluster, the image in
docker-compose, the runtime on Databricks).

The archive is reproducible: entries are sorted, timestamps fixed to 1980-01-01 and ``__pycache__``/``*.pyc``
are left out, so the same source tree always gives the same bytes (and the same SHA-256).

Usage (stdlib only; runs on any Python >= 3.10)::

    python scripts/build_pyfiles.py --output dist/ctdc_spark.zip
    spark-submit --py-files dist/ctdc_spark.zip jobs/run_pipeline.py --config conf/cluster.yaml
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ctdc_spark"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_EXCLUDED_DIRS = {"__pycache__"}
_EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


def package_files(repo_root: Path = REPO_ROOT) -> list[Path]:
    """Return the files of the package, relative to ``repo_root``, in a stable order."""
    pkg = repo_root / PACKAGE
    if not (pkg / "__init__.py").is_file():
        raise FileNotFoundError(f"{pkg} is not a Python package (no __init__.py); run from a checkout.")
    files = [
        p.relative_to(repo_root)
        for p in pkg.rglob("*")
        if p.is_file()
        and not _EXCLUDED_DIRS.intersection(p.relative_to(repo_root).parts)
        and p.suffix not in _EXCLUDED_SUFFIXES
    ]
    return sorted(files, key=lambda p: p.as_posix())


def build_pyfiles_zip(output: Path, repo_root: Path = REPO_ROOT) -> Path:
    """Write ``output`` (a zip with ``ctdc_spark/...`` at its root) and return its absolute path.

    The file is written to a temporary name and renamed, so a concurrent reader never sees half a zip.
    """
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in package_files(repo_root):
            info = zipfile.ZipInfo(rel.as_posix(), date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, (repo_root / rel).read_bytes())
    tmp.replace(output)
    return output


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the archive path and its SHA-256."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "dist" / "ctdc_spark.zip")
    parser.add_argument("--repo-root", type=Path, default=REPO_ROOT)
    args = parser.parse_args(argv)
    path = build_pyfiles_zip(args.output, args.repo_root.resolve())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path} sha256={digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
