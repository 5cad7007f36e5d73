"""The image's superset_config.py with the metadata database in SQLite, for tests/test_startup.py.

Everything, the secret checks included, is the real file's; the URI comes from Superset's own
SUPERSET__SQLALCHEMY_DATABASE_URI override. Only the engine options change: psycopg2's
connect_timeout is not an argument sqlite3 knows.
"""

import runpy
from pathlib import Path

globals().update(
    (name, value)
    for name, value in runpy.run_path(
        str(Path(__file__).resolve().parent.parent / "superset_config.py")
    ).items()
    if name.isupper()
)
SQLALCHEMY_ENGINE_OPTIONS: dict = {}
