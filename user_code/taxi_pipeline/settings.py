"""Every setting of the code location, read from the environment in this one place.

The README's "Settings" table documents the same variables; `.env.example` gives their values for
the container stack. Everything else in the package receives a `Settings` (or a resource built
from one) instead of reading `os.environ` itself, so tests can point the whole pipeline at a
temporary folder by building their own `Settings`.
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
    publish_dir: Path

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
    def published_database(self) -> Path:
        """The snapshot Superset reads; replaced atomically after every audited build."""
        return self.publish_dir / "taxi.duckdb"


def _month(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name, "").strip() or default
    if value is not None and not _MONTH.match(value):
        raise SettingsError(f"{name}={value!r} is not a month: use the form YYYY-MM, e.g. 2023-01.")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise `SettingsError` naming the variable at fault."""
    env = os.environ if env is None else env

    source = env.get("TAXI_DATA_SOURCE", "").strip() or "nyc-tlc"
    if source not in DATA_SOURCES:
        raise SettingsError(
            f"TAXI_DATA_SOURCE={source!r} is not a data source: use one of {', '.join(DATA_SOURCES)}."
        )

    raw_rows = env.get("TAXI_SAMPLE_TRIPS_PER_MONTH", "").strip() or "20000"
    try:
        rows = int(raw_rows)
    except ValueError:
        rows = 0
    if rows < 100:
        raise SettingsError(
            f"TAXI_SAMPLE_TRIPS_PER_MONTH={raw_rows!r} must be a whole number of at least 100 "
            "(the real files hold about 3000000)."
        )

    start = _month(env, "TAXI_START_MONTH", "2023-01")
    # An explicitly empty TAXI_END_MONTH means open-ended; unset means the course's range.
    end = _month(env, "TAXI_END_MONTH", None) if "TAXI_END_MONTH" in env else "2023-03"
    if end is not None and end < start:
        raise SettingsError(f"TAXI_END_MONTH={end} is before TAXI_START_MONTH={start}.")

    data_dir = Path(env.get("TAXI_DATA_DIR", "").strip() or REPO_ROOT / "data").resolve()
    database = Path(
        env.get("DUCKDB_DATABASE", "").strip() or data_dir / "warehouse" / "taxi.duckdb"
    ).resolve()
    publish_dir = Path(env.get("TAXI_PUBLISH_DIR", "").strip() or data_dir / "published").resolve()
    if publish_dir == database.parent:
        # Superset must never open the file the pipeline writes (DuckDB: one writer or many readers).
        raise SettingsError(
            "TAXI_PUBLISH_DIR must not be the folder of DUCKDB_DATABASE: "
            "Superset reads the published folder while the pipeline writes the warehouse."
        )

    return Settings(
        data_source=source,
        tlc_base_url=(env.get("TAXI_TLC_BASE_URL", "").strip() or DEFAULT_TLC_BASE_URL).rstrip("/"),
        sample_trips_per_month=rows,
        start_month=start,
        end_month=end,
        data_dir=data_dir,
        duckdb_database=database,
        publish_dir=publish_dir,
    )


def export_for_dbt(settings: Settings) -> None:
    """Give the dbt CLI the warehouse path.

    dbt reads it from its profile (analytics/profiles.yml: `env_var('DUCKDB_DATABASE')`) and runs
    as a subprocess inheriting this environment, so exporting the resolved value makes dbt and
    the Python assets open the same file, defaults included.
    """
    os.environ["DUCKDB_DATABASE"] = str(settings.duckdb_database)
