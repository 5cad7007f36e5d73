"""superset_config.py, the one check of the secrets inside the image, refuses to load without them.

(tests/test_startup.py shows that this stops the container's start-up too.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import SUPERSET_DIR

GOOD = {
    "SUPERSET_SECRET_KEY": "x" * 48,
    "SUPERSET_DB_PASSWORD": "p@ss:w/rd",
    "SUPERSET_ADMIN_PASSWORD": "admin-password",
}


def load_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Imports superset_config.py in a fresh interpreter with exactly `env` (plus PATH)."""
    config = str(SUPERSET_DIR / "superset_config.py")
    code = (
        "import importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('superset_config', {config!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "duckdb = sorted(m.DISALLOWED_SQL_FUNCTIONS.get('duckdb', []))\n"
        "print(json.dumps({'uri': m.SQLALCHEMY_DATABASE_URI, 'duckdb': duckdb}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_config_refuses_to_load_without(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    proc = load_config(env)
    assert proc.returncode != 0
    # names the variable and the fix, and only the missing one
    assert missing in proc.stderr and "Set them in .env" in proc.stderr
    assert "ci/make_env.py" in proc.stderr
    for other in set(GOOD) - {missing}:
        assert other not in proc.stderr


def test_config_names_every_missing_secret_at_once():
    proc = load_config({})
    assert proc.returncode != 0
    assert all(name in proc.stderr for name in GOOD)


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
