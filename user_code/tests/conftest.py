"""Test session set-up shared by every test module.

The settings of the tests are a plain mapping handed to `load_settings`, never written to
`os.environ`: the `sample` source, a small month size and a throwaway data folder. Tests that need
their own folder build their own `Settings` the same way.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import dagster as dg
import pytest

from taxi_pipeline.definitions import build_defs
from taxi_pipeline.project import build_dbt_project
from taxi_pipeline.settings import Settings, load_settings

SESSION_DIR = Path(tempfile.mkdtemp(prefix="taxi-tests-"))
TEST_ENV = {
    "TAXI_DATA_SOURCE": "sample",
    "TAXI_SAMPLE_TRIPS_PER_MONTH": "3000",
    "TAXI_START_MONTH": "2023-01",
    "TAXI_END_MONTH": "2023-03",
    "TAXI_DATA_DIR": str(SESSION_DIR / "data"),
}
# dbt's per-invocation target folders go to the session folder, not into analytics/ (dbt's own
# variable, read by dagster-dbt; not a setting of the pipeline).
DBT_TARGET_PATH = SESSION_DIR / "dbt-target"
os.environ["DBT_TARGET_PATH"] = str(DBT_TARGET_PATH)
# dagster-dbt runs the `dbt` of PATH: use the one installed beside this interpreter, whether or
# not the virtual environment was activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "taxi_pipeline"


def pytest_configure(config: pytest.Config) -> None:
    # A copy left by `python -m taxi_pipeline.project` (the image build) would shadow analytics/
    # (DbtProject prefers it outside `dagster dev`): tests must see the dbt project as it is in
    # the tree.
    packaged = PACKAGE_DIR / "dbt_project"
    if packaged.exists():
        shutil.rmtree(packaged)
    # Parse the dbt project once, as the image build does, so the definitions load from a
    # manifest of the current SQL.
    project = build_dbt_project(load_settings(TEST_ENV))
    project.preparer.prepare(project)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(TEST_ENV)


@pytest.fixture(scope="session")
def defs(settings: Settings) -> dg.Definitions:
    return build_defs(settings)
