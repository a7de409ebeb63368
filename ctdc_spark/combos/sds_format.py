"""How SDS writes numbers in its TSV reports (pure Python): shared by the risk analysis and the evaluation."""

from __future__ import annotations


def fmt_number(x: float) -> str:
    """At most four decimals, without trailing zeros; ``0`` for zero.

    Example:
        >>> fmt_number(0.125), fmt_number(12.0), fmt_number(0.0), fmt_number(1 / 3)
        ('0.125', '12', '0', '0.3333')
    """
    return f"{x:.4f}".rstrip("0").rstrip(".") if x else "0"
