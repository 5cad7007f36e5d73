"""Test session set-up shared by every test module.

The code location reads its settings at import time (partitions come from the month range), so
the environment is set here, before any test imports `taxi_pipeline`: the `sample` source, a
small month size and a throwaway data folder. Tests that need their own folder build their own
`Settings` from a modified environment.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

SESSION_DIR = Path(tempfile.mkdtemp(prefix="taxi-tests-"))
TEST_ENV = {
    "TAXI_DATA_SOURCE": "sample",
    "TAXI_SAMPLE_TRIPS_PER_MONTH": "3000",
    "TAXI_START_MONTH": "2023-01",
    "TAXI_END_MONTH": "2023-03",
    "TAXI_DATA_DIR": str(SESSION_DIR / "data"),
    "DUCKDB_DATABASE": str(SESSION_DIR / "data" / "warehouse" / "taxi.duckdb"),
    "TAXI_PUBLISH_DIR": str(SESSION_DIR / "data" / "published"),
    # dbt's per-invocation target folders go to the session folder, not into analytics/.
    "DBT_TARGET_PATH": str(SESSION_DIR / "dbt-target"),
    "DAGSTER_HOME": str(SESSION_DIR / "dagster-home"),
}
for name in ("TAXI_TLC_BASE_URL",):
    os.environ.pop(name, None)
os.environ.update(TEST_ENV)
# dagster-dbt runs the `dbt` of PATH: use the one installed beside this interpreter, whether or
# not the virtual environment was activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
Path(TEST_ENV["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "taxi_pipeline"


def pytest_configure(config: pytest.Config) -> None:
    # A copy left by `dagster-dbt project prepare-and-package` would shadow analytics/ (DbtProject
    # prefers it outside `dagster dev`): tests must see the dbt project as it is in the tree.
    packaged = PACKAGE_DIR / "dbt_project"
    if packaged.exists():
        shutil.rmtree(packaged)
    from taxi_pipeline.project import dbt_project

    # Parse the dbt project once, as the image build does, so the definitions load from a
    # manifest of the current SQL.
    dbt_project.preparer.prepare(dbt_project)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(SESSION_DIR, ignore_errors=True)
