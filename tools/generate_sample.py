"""Write the shipped CTDC-shaped sample: ``data/sample/ctdc_sample.csv`` (no real records).

Run from the repository root::

    python -m tools.generate_sample                       # the committed sample
    python -m tools.generate_sample --rows 1000000 --seed 7 --out /tmp/ctdc_1m.csv

The defaults reproduce the committed file byte for byte (``tests/unit/test_sample_model.py`` checks
this), so change them only together with a regenerated sample.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from tools.ctdc_model import generate_ctdc_like

DEFAULT_ROWS = 15_000
DEFAULT_SEED = 20_200_401  # the April 2020 CTDC global release this layout follows
DEFAULT_OUT = Path("data/sample/ctdc_sample.csv")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as RFC 4180 CSV: UTF-8, header row, CRLF line ends, minimal quoting.

    The file is written next to ``path`` and renamed into place, so an interrupted run never
    leaves a truncated sample behind.

    Args:
        frame: All-string cells, as returned by ``generate_ctdc_like``.
        path: Destination; parent folders are created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    frame.to_csv(partial, index=False, encoding="utf-8", lineterminator="\r\n")
    os.replace(partial, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, generate the records and write them.

    Args:
        argv: Command-line arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The process exit code: 0 on success (argparse exits with 2 on bad arguments).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="records (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV file (default %(default)s)")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1.")

    started = time.perf_counter()
    frame = generate_ctdc_like(args.rows, args.seed)
    write_csv(frame, args.out)
    elapsed = time.perf_counter() - started
    print(f"wrote {len(frame):,} records to {args.out} in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
