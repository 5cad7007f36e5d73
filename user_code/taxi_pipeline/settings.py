"""Every setting of the code location, and the one place that reads them from the environment.

`load_settings()` is called once, by `taxi_pipeline.definitions` when Dagster loads the code
location (never at import); everything else receives the `Settings` (or a resource built from it)
and never reads `os.environ` itself. Tests build their own with `load_settings({...})`.

The defaults below are the only copy: docker-compose.yml passes a variable through only when
`.env` sets it, and the README's "Settings" table documents these names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# The repository root when running from a checkout (user_code/taxi_pipeline/settings.py -> ../..).
REPO_ROOT = Path(__file__).resolve().parents[2]

DATA_SOURCES = ("nyc-tlc", "sample")
DEFAULT_TLC_BASE_URL = "https://d37ci6vzurychx.cloudfront.net"
DEFAULT_SAMPLE_TRIPS_PER_MONTH = 20000
# Superset as the user's browser reaches it (docker-compose.yml derives it from SUPERSET_PORT).
DEFAULT_SUPERSET_URL = "http://127.0.0.1:8088"
# The course's range: three months a fresh deployment fills by itself.
DEFAULT_START_MONTH = "2023-01"
DEFAULT_END_MONTH = "2023-03"
# TAXI_END_MONTH=latest: no end, the partitions grow up to the current month.
OPEN_END = "latest"
# The file Superset reads is named after the warehouse: DuckDB names a database after its file,
# and dbt's relation names carry that name ("taxi"."main"."stg_trips").
WAREHOUSE_FILE_NAME = "taxi.duckdb"
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and how to fix it."""


@dataclass(frozen=True)
class Settings:
    data_source: str
    tlc_base_url: str
    sample_trips_per_month: int
    start_month: str
    # None: partitions run open-ended up to the current month.
    end_month: str | None
    data_dir: Path
    duckdb_database: Path
    published_database: Path
    # where the user opens Superset; only said to them (fill_progress_sensor), never requested
    superset_url: str

    @property
    def raw_dir(self) -> Path:
        """Downloaded (or generated) source files, one per month plus the zone lookup."""
        return self.data_dir / "raw"

    @property
    def outputs_dir(self) -> Path:
        """Files the Python assets produce: charts and CSV extracts."""
        return self.data_dir / "outputs"

    @property
    def requests_dir(self) -> Path:
        """Where users drop ad-hoc request JSON files for the `adhoc_request` sensor."""
        return self.data_dir / "requests"

    @property
    def publish_dir(self) -> Path:
        """The folder of the snapshot Superset reads, where a new one is staged before the swap."""
        return self.published_database.parent


def _month(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name, "").strip() or default
    if value is not None and not _MONTH.match(value):
        also = f" or {OPEN_END}" if name == "TAXI_END_MONTH" else ""
        raise SettingsError(
            f"{name}={value!r} is not a month: use the form YYYY-MM, e.g. 2023-01{also}."
        )
    return value


def _http_url(env: Mapping[str, str], name: str, default: str, alternative: str) -> str:
    value = (env.get(name, "").strip() or default).rstrip("/")
    if not re.match(r"^https?://[^/\s]+", value):
        raise SettingsError(
            f"{name}={value!r} is not an http(s) URL: use one such as {default} (the default) "
            f"{alternative}."
        )
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise `SettingsError` naming the variable at fault."""
    env = os.environ if env is None else env

    source = env.get("TAXI_DATA_SOURCE", "").strip() or "nyc-tlc"
    if source not in DATA_SOURCES:
        raise SettingsError(
            f"TAXI_DATA_SOURCE={source!r} is not a data source: "
            f"use one of {', '.join(DATA_SOURCES)}."
        )

    raw_rows = env.get("TAXI_SAMPLE_TRIPS_PER_MONTH", "").strip() or str(
        DEFAULT_SAMPLE_TRIPS_PER_MONTH
    )
    try:
        rows = int(raw_rows)
    except ValueError:
        rows = 0
    if rows < 100:
        raise SettingsError(
            f"TAXI_SAMPLE_TRIPS_PER_MONTH={raw_rows!r} must be a whole number of at least 100 "
            "(the real files hold about 3000000)."
        )

    base_url = _http_url(
        env, "TAXI_TLC_BASE_URL", DEFAULT_TLC_BASE_URL, "or a mirror with the same paths"
    )

    start = _month(env, "TAXI_START_MONTH", DEFAULT_START_MONTH)
    # Empty counts as unset everywhere: compose hands every variable over, set in .env or not.
    if env.get("TAXI_END_MONTH", "").strip().lower() == OPEN_END:
        end = None
    else:
        end = _month(env, "TAXI_END_MONTH", DEFAULT_END_MONTH)
    if end is not None and end < start:
        raise SettingsError(f"TAXI_END_MONTH={end} is before TAXI_START_MONTH={start}.")

    data_dir = Path(env.get("TAXI_DATA_DIR", "").strip() or REPO_ROOT / "data").resolve()
    database = Path(
        env.get("DUCKDB_DATABASE", "").strip() or data_dir / "warehouse" / WAREHOUSE_FILE_NAME
    ).resolve()
    published = Path(
        env.get("TAXI_PUBLISHED_DATABASE", "").strip()
        or data_dir / "published" / WAREHOUSE_FILE_NAME
    ).resolve()
    if published.parent == database.parent:
        # Superset must never open the file the pipeline writes (DuckDB: one writer or many
        # readers).
        raise SettingsError(
            "TAXI_PUBLISHED_DATABASE must not be in the folder of DUCKDB_DATABASE: "
            "Superset reads the published folder while the pipeline writes the warehouse."
        )

    superset_url = _http_url(
        env, "TAXI_SUPERSET_URL", DEFAULT_SUPERSET_URL, "or the address your browser opens it at"
    )

    return Settings(
        data_source=source,
        tlc_base_url=base_url,
        sample_trips_per_month=rows,
        start_month=start,
        end_month=end,
        data_dir=data_dir,
        duckdb_database=database,
        published_database=published,
        superset_url=superset_url,
    )
