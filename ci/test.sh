#!/usr/bin/env bash
# The project's test command (README): lints and unit tests, then the end-to-end check of the
# container stack.
#
#   ci/test.sh              # everything
#   ci/test.sh --unit       # lints (ci/lint.sh), then unit tests (no Docker needed)
#   ci/test.sh --lint       # lints only
#   ci/test.sh --e2e [...]  # end-to-end check only; extra arguments go to ci/e2e.py
#
# Needs uv (https://docs.astral.sh/uv/) and, for the end-to-end check, Docker with Compose v2 and
# Chromium (/usr/bin/chromium, or CHROMIUM_PATH) for the dashboard screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."

lint=1
unit=1
e2e=1
case "${1:-}" in
  --unit) e2e=0; shift ;;
  --lint) unit=0; e2e=0; shift ;;
  --e2e) lint=0; unit=0; shift ;;
esac

if [[ $lint == 1 ]]; then
  echo "--- lints: ruff, sqlfluff, shellcheck, hadolint (the versions in user_code/uv.lock) ---"
  ci/lint.sh
fi

if [[ $unit == 1 ]]; then
  echo "--- unit tests: user_code (pipeline, dbt project) ---"
  uv sync --frozen --project user_code
  (cd user_code && uv run --frozen --no-sync pytest)
  echo "--- benchmark suite, small size: it must run; its figures are reported, never asserted ---"
  (cd user_code && uv run --frozen --no-sync python -m benchmarks.suite \
     --rows 20000 --months 2 --repeat 1 --json ../ci/artifacts/benchmarks-small.json)
  echo "--- unit tests: ci/ (end-to-end harness; its own locked environment) ---"
  uv sync --frozen --project ci
  uv run --frozen --no-sync --project ci pytest -q ci/tests
  echo "--- unit tests: superset/ (bundle, config, security; its own locked environment) ---"
  uv sync --frozen --project superset
  (cd superset && uv run --frozen --no-sync pytest)
fi

if [[ $e2e == 1 ]]; then
  echo "--- end-to-end check (builds the images, runs the stack) ---"
  uv sync --frozen --project ci
  uv run --frozen --no-sync --project ci python ci/e2e.py "$@"
fi
