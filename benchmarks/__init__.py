"""The benchmarks (scripts and their results side by side); not part of the wheel.

A regular package, so ``python -m benchmarks.<name>`` from the repository root cannot pick up an
unrelated ``benchmarks`` package installed in site-packages.
"""
