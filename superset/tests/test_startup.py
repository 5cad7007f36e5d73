"""docker/init.sh, the container's start-up, run for real: Superset's own CLI against a SQLite
metadata database (tests/superset_sqlite_config.py wraps the image's superset_config.py).

Two starts on one metadata database, the way a container restart goes: the first creates the
admin and imports the bundle; the second, with a new admin password and an edited chart YAML,
applies both and duplicates nothing. The warehouse connection reads $SUPERSET_DUCKDB_PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from conftest import BUNDLE_DIR, SUPERSET_DIR, WAREHOUSE_URI
from superset_checks import dashboard_chart_uuids, read_bundle
from werkzeug.security import check_password_hash

INIT = SUPERSET_DIR / "docker" / "init.sh"
BIN = Path(sys.executable).parent  # the environment running the tests holds the superset CLI
SECRETS = {
    "SUPERSET_SECRET_KEY": "startup-test-only-not-a-secret-0123456789abcdef",
    "SUPERSET_DB_PASSWORD": "unused-with-sqlite",
}
EDITED_CHART = "charts/daily_trips.yaml"
EDITED_NAME = "Daily trips (edited in the YAML)"


def run_init(
    workdir: Path, snapshot: Path, password: str, drop: str | None = None
) -> subprocess.CompletedProcess:
    assert (BIN / "superset").exists(), f"no superset CLI in {BIN}: run `uv sync --frozen` first"
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(workdir),
        "SUPERSET_HOME": str(workdir / "superset_home"),
        "SUPERSET_CONFIG_PATH": str(SUPERSET_DIR / "tests" / "superset_sqlite_config.py"),
        "SUPERSET__SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'metadata.db'}",
        "SUPERSET_DASHBOARDS_DIR": str(workdir / "dashboards"),
        "SUPERSET_DUCKDB_PATH": str(snapshot),
        "SUPERSET_ADMIN_PASSWORD": password,
        **SECRETS,
    }
    if drop:
        env.pop(drop)
    return subprocess.run(
        [str(INIT)], env=env, capture_output=True, text=True, timeout=900, check=False
    )


def as_uuid(value) -> str:
    return str(uuid.UUID(bytes=value) if isinstance(value, bytes) else uuid.UUID(str(value)))


def metadata_state(db_file: Path) -> dict:
    """What the start-up left in the metadata database, read with plain SQL."""
    engine = sa.create_engine(f"sqlite:///{db_file}")
    with engine.connect() as conn:

        def rows(sql: str) -> list:
            return list(conn.execute(sa.text(sql)))

        state = {
            "databases": sorted(as_uuid(r[0]) for r in rows("SELECT uuid FROM dbs")),
            "datasets": sorted(as_uuid(r[0]) for r in rows("SELECT uuid FROM tables")),
            "charts": sorted(as_uuid(r[0]) for r in rows("SELECT uuid FROM slices")),
            "dashboards": sorted(as_uuid(r[0]) for r in rows("SELECT uuid FROM dashboards")),
            "chart_names": {as_uuid(u): n for u, n in rows("SELECT uuid, slice_name FROM slices")},
            "links": sorted(
                (as_uuid(d), as_uuid(s))
                for d, s in rows(
                    "SELECT d.uuid, s.uuid FROM dashboard_slices ds"
                    " JOIN dashboards d ON d.id = ds.dashboard_id"
                    " JOIN slices s ON s.id = ds.slice_id"
                )
            ),
            "warehouse": rows("SELECT sqlalchemy_uri, extra FROM dbs"),
            "admins": rows(
                "SELECT u.password FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id"
                " JOIN ab_role r ON r.id = ur.role_id WHERE u.username = 'admin'"
                " AND r.name = 'Admin' AND u.active"
            ),
        }
    engine.dispose()
    return state


@pytest.fixture(scope="module")
def bundle():
    return read_bundle(BUNDLE_DIR)


@pytest.fixture(scope="module")
def starts(tmp_path_factory, snapshot) -> dict:
    """The metadata after a first start, and after a restart with edits."""
    workdir = tmp_path_factory.mktemp("superset-start")
    shutil.copytree(BUNDLE_DIR, workdir / "dashboards")
    first = run_init(workdir, snapshot, "first-password")
    assert first.returncode == 0, first.stdout + first.stderr
    after_first = metadata_state(workdir / "metadata.db")

    chart = workdir / "dashboards" / EDITED_CHART
    doc = yaml.safe_load(chart.read_text())
    chart.write_text(
        chart.read_text().replace(
            f"slice_name: {doc['slice_name']}\n", f"slice_name: {EDITED_NAME}\n"
        )
    )
    second = run_init(workdir, snapshot, "second-password")
    assert second.returncode == 0, second.stdout + second.stderr
    return {
        "workdir": workdir,
        "first": after_first,
        "second": metadata_state(workdir / "metadata.db"),
        "edited_uuid": str(doc["uuid"]),
        "log": first.stderr + second.stderr,
    }


@pytest.mark.parametrize("start", ["first", "second"])
def test_every_object_exists_exactly_once(starts, bundle, start):
    state = starts[start]
    for kind in ("databases", "datasets", "charts", "dashboards"):
        assert state[kind] == sorted(bundle[kind]), f"{kind} after the {start} start"
    expected_links = sorted(
        (dash_uuid, chart_uuid)
        for dash_uuid, dash in bundle["dashboards"].items()
        for chart_uuid in set(dashboard_chart_uuids(dash))
    )
    assert state["links"] == expected_links


def test_restart_applies_an_edited_yaml(starts):
    edited = starts["edited_uuid"]
    assert starts["first"]["chart_names"][edited] != EDITED_NAME
    assert starts["second"]["chart_names"][edited] == EDITED_NAME


def test_restart_applies_a_changed_admin_password(starts):
    ((first_hash,),) = starts["first"]["admins"]
    ((second_hash,),) = starts["second"]["admins"]
    assert check_password_hash(first_hash, "first-password")
    assert check_password_hash(second_hash, "second-password")
    assert not check_password_hash(second_hash, "first-password")
    assert "first-password" not in starts["log"] and "second-password" not in starts["log"]


@pytest.mark.parametrize("start", ["first", "second"])
def test_warehouse_reads_the_snapshot_from_SUPERSET_DUCKDB_PATH(starts, snapshot, start):
    ((uri, extra),) = starts[start]["warehouse"]
    assert uri == WAREHOUSE_URI.format(path=snapshot)
    # the stored connection, as Superset opens it, reads the snapshot
    engine = sa.create_engine(uri, **json.loads(extra)["engine_params"])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM main.daily_metrics")).scalar() > 0
    engine.dispose()


def test_a_bundle_superset_rejects_stops_the_start(starts, snapshot):
    workdir = starts["workdir"]
    chart = workdir / "dashboards" / EDITED_CHART
    chart.write_text(chart.read_text().replace("\nviz_type: ", "\nviz_typo: ", 1))
    proc = run_init(workdir, snapshot, "second-password")
    assert proc.returncode != 0
    assert "CommandInvalidError" in proc.stderr, proc.stderr[-3000:]
    assert "set-database-uri" not in proc.stderr, "the start must stop at the import"


@pytest.mark.parametrize(
    "missing", ["SUPERSET_SECRET_KEY", "SUPERSET_DB_PASSWORD", "SUPERSET_ADMIN_PASSWORD"]
)
def test_a_missing_secret_stops_the_start_naming_it(tmp_path, snapshot, missing):
    shutil.copytree(BUNDLE_DIR, tmp_path / "dashboards")
    proc = run_init(tmp_path, snapshot, "a-password", drop=missing)
    assert proc.returncode != 0
    assert missing in proc.stderr and ".env" in proc.stderr
    assert not (tmp_path / "metadata.db").exists(), "nothing may be touched before the check"


def test_a_relative_duckdb_path_stops_the_start(tmp_path):
    proc = run_init(tmp_path, Path("published/taxi.duckdb"), "a-password")
    assert proc.returncode != 0 and "SUPERSET_DUCKDB_PATH" in proc.stderr
    assert not (tmp_path / "metadata.db").exists()
