"""superset_config.py and the start-up script refuse to run without their secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import bootstrap
import pytest
from conftest import SUPERSET_DIR

GOOD = {
    "SUPERSET_SECRET_KEY": "x" * 48,
    "SUPERSET_DB_PASSWORD": "p@ss:w/rd",
    "SUPERSET_ADMIN_PASSWORD": "admin-password",
}


def load_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Imports superset_config.py in a fresh interpreter with exactly `env` (plus PATH)."""
    code = (
        "import importlib.util, json\n"
        "spec = importlib.util.spec_from_file_location("
        f"'superset_config', {str(SUPERSET_DIR / 'superset_config.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(json.dumps({'uri': m.SQLALCHEMY_DATABASE_URI,"
        " 'duckdb': sorted(m.DISALLOWED_SQL_FUNCTIONS.get('duckdb', []))}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", ["SUPERSET_SECRET_KEY", "SUPERSET_DB_PASSWORD"])
def test_config_refuses_to_load_without(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    proc = load_config(env)
    assert proc.returncode != 0
    assert missing in proc.stderr


def test_config_refuses_empty_and_short_secret_key():
    assert load_config({**GOOD, "SUPERSET_SECRET_KEY": "  "}).returncode != 0
    proc = load_config({**GOOD, "SUPERSET_SECRET_KEY": "short"})
    assert proc.returncode != 0 and "SUPERSET_SECRET_KEY" in proc.stderr


def test_config_builds_the_metadata_uri():
    proc = load_config({**GOOD, "SUPERSET_DB_HOST": "pg", "SUPERSET_DB_USER": "ss"})
    assert proc.returncode == 0, proc.stderr
    import json

    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # the password is URL-escaped
    assert out["uri"] == "postgresql+psycopg2://ss:p%40ss%3Aw%2Frd@pg:5432/superset"
    assert {"read_csv", "read_parquet", "read_text", "glob"} <= set(out["duckdb"])


@pytest.mark.parametrize("missing", sorted(bootstrap.REQUIRED))
def test_startup_refuses_to_run_without(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(SystemExit) as exc:
        bootstrap.check_required_env(env)
    assert missing in str(exc.value)
    for other in set(GOOD) - {missing}:
        assert other not in str(exc.value)


def test_startup_accepts_complete_env():
    bootstrap.check_required_env(GOOD)


def test_startup_script_exits_naming_the_variable():
    """The real entry point (python bootstrap.py) stops before touching anything."""
    env = {
        "PATH": os.environ["PATH"],
        "SUPERSET_DASHBOARDS_DIR": str(SUPERSET_DIR / "dashboards"),
        **{k: v for k, v in GOOD.items() if k != "SUPERSET_ADMIN_PASSWORD"},
    }
    proc = subprocess.run(
        [sys.executable, str(SUPERSET_DIR / "docker" / "bootstrap.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "SUPERSET_ADMIN_PASSWORD" in proc.stderr
