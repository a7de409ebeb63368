"""Developer tools, typed and checked like the package: the quality gates run over the source tree
(``scripts/dev.sh check``) and the generator of CTDC-shaped records behind the shipped sample."""
