"""The pipeline (writer) and Superset (reader) of the DuckDB file must run the same duckdb."""

from __future__ import annotations

import tomllib

import pytest
from conftest import REPO_ROOT, SUPERSET_DIR


def locked_versions(lock_file) -> dict[str, str]:
    data = tomllib.loads(lock_file.read_text())
    return {pkg["name"]: pkg["version"] for pkg in data["package"] if "version" in pkg}


@pytest.fixture(scope="module")
def superset_lock() -> dict[str, str]:
    return locked_versions(SUPERSET_DIR / "uv.lock")


def test_duckdb_same_version_as_the_pipeline(superset_lock):
    pipeline_lock = REPO_ROOT / "user_code" / "uv.lock"
    if not pipeline_lock.exists():
        pytest.fail(f"{pipeline_lock} is missing: cannot compare the duckdb versions")
    pipeline = locked_versions(pipeline_lock)
    assert superset_lock["duckdb"] == pipeline["duckdb"], (
        "superset/uv.lock and user_code/uv.lock lock different duckdb versions: the reader and "
        "the writer of the warehouse file must agree (pin the same version in both pyproject.toml)"
    )
    assert superset_lock["duckdb"] == "1.5.6"


def test_superset_pins(superset_lock):
    assert superset_lock["apache-superset"] == "6.1.0"
    # 2.5 crashes SupersetMetastoreCache (shared NOTES)
    assert superset_lock["flask-caching"] == "2.3.1"
    for name in ("rich", "cachetools", "duckdb-engine", "psycopg2-binary", "gunicorn"):
        assert name in superset_lock, f"{name} missing from superset/uv.lock"
    assert superset_lock["sqlalchemy"].startswith("1.4."), "Superset 6.1 needs SQLAlchemy 1.4"
