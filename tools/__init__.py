"""Checks the quality gates run over the source tree (``scripts/dev.sh check``)."""
