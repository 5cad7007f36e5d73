#!/usr/bin/env bash
# Every lint of the repository, with the versions locked in user_code/uv.lock (its `lint` group):
#
#   - ruff check, ruff format --check: Python, everywhere (/ruff.toml)
#   - sqlfluff lint analytics: the dbt project's SQL (analytics/.sqlfluff)
#   - shellcheck: every tracked *.sh, and .ci/run
#   - hadolint: every tracked Dockerfile*
#
# All of them run, so one pass shows every finding; the exit status is 1 when any failed.
# `ci/test.sh --lint` runs this; .pre-commit-config.yaml runs the same tools on staged files.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "ci/lint.sh lists the shell scripts and Dockerfiles to lint with git: run it in a git checkout" >&2
  exit 1
fi
mapfile -t shell_scripts < <(git ls-files -- '*.sh' .ci/run)
mapfile -t dockerfiles < <(git ls-files -- '*Dockerfile*')
if [[ ${#shell_scripts[@]} == 0 || ${#dockerfiles[@]} == 0 ]]; then
  echo "ci/lint.sh found no tracked shell script or Dockerfile: is this the taxi-platform checkout?" >&2
  exit 1
fi

# Install the locked linters once; each tool then runs without re-checking the environment.
uv sync --frozen --project user_code --group lint --quiet
tool() { uv run --frozen --no-sync --project user_code "$@"; }

failed=()
check() {
  local name=$1
  shift
  echo "--- lint: $name ---"
  if "$@"; then echo "ok"; else failed+=("$name"); fi
}
check "ruff check" tool ruff check .
check "ruff format --check" tool ruff format --check .
check "sqlfluff lint analytics" tool sqlfluff lint analytics
check "shellcheck" tool shellcheck "${shell_scripts[@]}"
check "hadolint" tool hadolint "${dockerfiles[@]}"

if ((${#failed[@]})); then
  printf 'lint failed: %s\n' "$(IFS=,; echo "${failed[*]}")" >&2
  exit 1
fi
echo "lint: all clean"
