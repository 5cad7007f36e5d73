"""The warehouse connection cannot write, attach or read files.

Opens the snapshot exactly as Superset does: SQLAlchemy + duckdb-engine with the URI
docker/init.sh stores and the bundle's engine_params (connect_args.config). Superset's own guard
(allow_dml: false) relies on its SQL parser, which does not see COPY ... TO or ATTACH as
mutations (checked below): DuckDB's enable_external_access=false is the guard that stops them.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import yaml
from conftest import BUNDLE_DIR, WAREHOUSE_URI


@pytest.fixture(scope="module")
def database_doc() -> dict:
    (file,) = (BUNDLE_DIR / "databases").glob("*.yaml")
    return yaml.safe_load(file.read_text())


@pytest.fixture()
def engine(database_doc, snapshot):
    uri = WAREHOUSE_URI.format(path=snapshot)  # the URI docker/init.sh stores
    params = database_doc["extra"]["engine_params"]
    eng = sa.create_engine(uri, poolclass=sa.pool.NullPool, **params)
    yield eng
    eng.dispose()


def test_superset_flags(database_doc):
    assert database_doc["allow_dml"] is False
    assert database_doc["allow_file_upload"] is False
    assert database_doc["allow_ctas"] is False and database_doc["allow_cvas"] is False
    assert "access_mode=read_only" in WAREHOUSE_URI
    config = database_doc["extra"]["engine_params"]["connect_args"]["config"]
    assert config["enable_external_access"] is False
    assert config["lock_configuration"] is True
    assert config["access_mode"] == "read_only"


def test_reads_work(engine):
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM main.daily_metrics")).scalar() > 0


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 1 AS a) TO '{tmp}/out.csv'",
        "COPY main.daily_metrics TO '{tmp}/out.parquet' (FORMAT parquet)",
        "EXPORT DATABASE '{tmp}/export'",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM '/etc/passwd'",
        "INSERT INTO main.daily_metrics (trip_count) VALUES (1)",
        "DELETE FROM main.daily_metrics",
        "CREATE TABLE main.x AS SELECT 1 AS a",
        "DROP TABLE main.daily_metrics",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET access_mode = 'read_write'",
    ],
)
def test_refused(engine, tmp_path, statement):
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError):
        conn.execute(sa.text(statement.format(tmp=tmp_path)))
    assert not any(tmp_path.iterdir()), "nothing may be written"


def test_superset_blocks_dml_and_file_functions_itself():
    """What Superset's own checks catch (and what they do not: COPY / ATTACH)."""
    pytest.importorskip("superset")
    from superset.sql.parse import SQLScript

    assert SQLScript("INSERT INTO t VALUES (1)", "duckdb").has_mutation()
    assert SQLScript("CREATE TABLE a AS SELECT 1", "duckdb").has_mutation()
    assert SQLScript("SELECT * FROM read_csv('/etc/passwd')", "duckdb").check_functions_present(
        {"read_csv"}
    )
    # not seen as mutations by Superset 6.1's parser: DuckDB's settings must refuse them (above)
    assert not SQLScript("COPY (SELECT 1) TO '/tmp/x.csv'", "duckdb").has_mutation()
    assert not SQLScript("ATTACH '/tmp/x.duckdb' AS x", "duckdb").has_mutation()
