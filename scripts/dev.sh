#!/usr/bin/env bash
# One entry point for the README's two commands.
#   ./scripts/dev.sh run   set up .venv and run the whole pipeline on the embedded default (sample data)
#   ./scripts/dev.sh test  set up .venv (with test extras) and run the whole test suite
#   ./scripts/dev.sh check the quality gates: ruff, ruff format, mypy --strict, the import contract, doctests
#                          (CI runs it first)
# Extra arguments are passed on (to `ctdc-spark run` or to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  # Install only when the project's requirements changed since the last install.
  local stamp="$VENV/.ctdc-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    # The attack evaluation's library, without its stale numpy/pyarrow caps (pyproject.toml, privacy-eval).
    "$VENV/bin/python" -m pip install --quiet --no-deps "anonymeter==1.1.0"
    touch "$stamp"
  fi
  if [ "${1:-}" = test ] && command -v npm >/dev/null 2>&1; then
    # Test-only JavaScript: axe-core for the browser tests, esbuild and the map packages for tests/unit/test_frontend.py.
    local prefix
    for prefix in tests/browser frontend; do
      if [ -f "$prefix/package.json" ] && { [ ! -d "$prefix/node_modules" ] || [ "$prefix/package-lock.json" -nt "$prefix/node_modules" ]; }; then
        npm ci --silent --prefix "$prefix"
      fi
    done
  fi
}

command="${1:-}"
shift || true
case "$command" in
  run)
    setup
    exec "$VENV/bin/ctdc-spark" run "$@"
    ;;
  test)
    setup test
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  check)
    # The quality gates CI runs before the tests: lint, format, strict types, the import contract
    # (no package imports another's private modules or names, tools/check_imports.py), the docstring examples.
    setup
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy" ctdc_spark tools benchmarks scripts
    # The reference implementation the tests check the library against is held to the same bar.
    "$VENV/bin/mypy" --explicit-package-bases tests/oracle
    "$VENV/bin/python" -m tools.check_imports ctdc_spark
    exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider --doctest-modules ctdc_spark tests/oracle
    ;;
  *)
    echo "usage: scripts/dev.sh run|test|check [args...]" >&2
    exit 2
    ;;
esac
