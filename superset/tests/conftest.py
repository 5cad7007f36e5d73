"""Shared fixtures of the Superset tests (run from superset/: `uv run --frozen pytest`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SUPERSET_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = SUPERSET_DIR.parent
BUNDLE_DIR = SUPERSET_DIR / "dashboards"

# the warehouse connection docker/init.sh stores (`superset set-database-uri`) for
# path=$SUPERSET_DUCKDB_PATH; test_startup.py checks that it does, test_security.py opens it
WAREHOUSE_URI = "duckdb:///{path}?access_mode=read_only"

# the e2e helpers and make_snapshot.py are plain scripts: import them
for path in (SUPERSET_DIR / "tests", SUPERSET_DIR / "tests" / "e2e"):
    sys.path.insert(0, str(path))

# Tests that import Superset's modules load this minimal config rather than superset_config.py
# (which, by design, refuses to load without the real secrets).
os.environ["SUPERSET_CONFIG_PATH"] = str(
    Path(__file__).resolve().parent / "superset_test_config.py"
)


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory) -> Path:
    """A DuckDB file with the contract's mart tables, like the published snapshot."""
    import make_snapshot

    return make_snapshot.build(tmp_path_factory.mktemp("published") / "taxi.duckdb")
