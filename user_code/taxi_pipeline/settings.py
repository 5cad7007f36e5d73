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
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

# The repository root when running from a checkout (user_code/taxi_pipeline/settings.py -> ../..).
REPO_ROOT = Path(__file__).resolve().parents[2]

DATA_SOURCES = ("nyc-tlc", "sample")
DEFAULT_TLC_BASE_URL = "https://d37ci6vzurychx.cloudfront.net"
DEFAULT_SAMPLE_TRIPS_PER_MONTH = 20000
# Superset as the user's browser reaches it (docker-compose.yml derives it from SUPERSET_PORT).
DEFAULT_SUPERSET_URL = "http://127.0.0.1:8088"
# The Dagster UI as the user's browser reaches it: the links in alerts (docker-compose.yml derives
# it from DAGSTER_WEBSERVER_PORT).
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"
# Freshness (taxi_pipeline/freshness.py says why these values): the snapshot and the unpartitioned
# marts are rebuilt every morning (dbt_models_job_schedule, 05:00 UTC) and after each month lands;
# the daily and weekly marts only when a month lands, which the TLC does about once a month.
DEFAULT_SNAPSHOT_MAX_AGE = "26h"
DEFAULT_MONTHLY_MAX_AGE = "45d"
# How long the TLC's site may stay unobservable before tlc_site_sensor's tick fails (and alerts):
# brief outages of a CDN are common and harmless, the sensor asks again every 15 minutes.
DEFAULT_SOURCE_DOWN_AFTER = "6h"
DEFAULT_SMTP_PORT = 587
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
class SmtpSettings:
    host: str
    port: int
    starttls: bool
    user: str | None
    # a secret: never shown in the UI (alerts are built from Settings, not as a resource)
    password: str | None = field(repr=False)
    sender: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class AlertSettings:
    """Where notifications go (taxi_pipeline/alerts/): none, either or both channels."""

    # a Slack-compatible incoming webhook (Slack, Mattermost, ...); a secret like a password
    webhook_url: str | None = field(repr=False)
    smtp: SmtpSettings | None
    # how long the TLC's site may stay unobservable before tlc_site_sensor's tick fails
    source_down_after: timedelta

    @property
    def channels(self) -> list[str]:
        return [name for name, on in (("webhook", self.webhook_url), ("email", self.smtp)) if on]


@dataclass(frozen=True)
class FreshnessSettings:
    snapshot_max_age: timedelta
    monthly_max_age: timedelta


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
    # where the user opens the Dagster UI: the links in alerts
    dagster_url: str
    alerts: AlertSettings
    freshness: FreshnessSettings

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


_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# Dagster's freshness policies refuse windows under a minute; more than a year means "never".
MIN_DURATION, MAX_DURATION = timedelta(minutes=1), timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """'90m', '26h', '45d' (a whole number and one unit: s, m, h, d)."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(text)
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _duration(env: Mapping[str, str], name: str, default: str) -> timedelta:
    value = env.get(name, "").strip() or default
    try:
        parsed = parse_duration(value)
    except ValueError:
        parsed = None
    if parsed is None or not MIN_DURATION <= parsed <= MAX_DURATION:
        raise SettingsError(
            f"{name}={value!r} is not a duration between 1m and 366d: use a whole number and a "
            f"unit (s, m, h or d), e.g. {default} (the default)."
        )
    return parsed


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip() or str(default)
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise SettingsError(
            f"{name}={value!r} is not a port number: use a whole number from 1 to 65535, e.g. "
            f"{default} (SMTP submission with STARTTLS), 465 (TLS from the start) or 25."
        )
    return int(value)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={value!r} is not a yes/no value: use true or false.")


_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+$")


def _addresses(env: Mapping[str, str], name: str, several: bool) -> tuple[str, ...]:
    addresses = tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())
    form = "name@example.com" + (", several separated by commas" if several else "")
    if not addresses:
        raise SettingsError(
            f"{name} is empty while TAXI_ALERT_SMTP_HOST is set: give {form}, or unset "
            "TAXI_ALERT_SMTP_HOST to turn email off."
        )
    if bad := [a for a in addresses if not _EMAIL.match(a)]:
        raise SettingsError(
            f"{name} holds {', '.join(map(repr, bad))}, which is not an email address: use {form}."
        )
    if len(addresses) > 1 and not several:
        raise SettingsError(f"{name} must be one address, the alerts' sender: use {form}.")
    return addresses


def _smtp(env: Mapping[str, str]) -> SmtpSettings | None:
    host = env.get("TAXI_ALERT_SMTP_HOST", "").strip()
    if not host:
        return None
    if not re.match(r"^[A-Za-z0-9.\-\[\]:]+$", host):
        raise SettingsError(
            f"TAXI_ALERT_SMTP_HOST={host!r} is not a host name: give the name or address of the "
            "mail server alone (no scheme, no port: TAXI_ALERT_SMTP_PORT holds the port)."
        )
    [sender] = _addresses(env, "TAXI_ALERT_EMAIL_FROM", several=False)
    user = env.get("TAXI_ALERT_SMTP_USER", "").strip() or None
    password = env.get("TAXI_ALERT_SMTP_PASSWORD", "") or None
    if bool(user) != bool(password):
        raise SettingsError(
            "TAXI_ALERT_SMTP_USER and TAXI_ALERT_SMTP_PASSWORD go together: set both to log in "
            "to the mail server, or neither for a server that takes mail without a login."
        )
    return SmtpSettings(
        host=host,
        port=_port(env, "TAXI_ALERT_SMTP_PORT", DEFAULT_SMTP_PORT),
        starttls=_flag(env, "TAXI_ALERT_SMTP_STARTTLS", True),
        user=user,
        password=password,
        sender=sender,
        recipients=_addresses(env, "TAXI_ALERT_EMAIL_TO", several=True),
    )


def _alerts(env: Mapping[str, str]) -> AlertSettings:
    webhook = env.get("TAXI_ALERT_WEBHOOK_URL", "").strip() or None
    if webhook is not None and not re.match(r"^https?://[^/\s]+", webhook):
        # not echoed: a webhook URL holds its token
        raise SettingsError(
            "TAXI_ALERT_WEBHOOK_URL is not an http(s) URL: use the incoming-webhook URL your chat "
            "gives (Slack: https://hooks.slack.com/services/..., Mattermost: "
            "https://<server>/hooks/...), or leave it empty to turn the webhook off."
        )
    return AlertSettings(
        webhook_url=webhook,
        smtp=_smtp(env),
        source_down_after=_duration(env, "TAXI_ALERT_SOURCE_DOWN_AFTER", DEFAULT_SOURCE_DOWN_AFTER),
    )


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
    dagster_url = _http_url(
        env, "TAXI_DAGSTER_URL", DEFAULT_DAGSTER_URL, "or the address your browser opens it at"
    )
    freshness = FreshnessSettings(
        snapshot_max_age=_duration(env, "TAXI_SNAPSHOT_MAX_AGE", DEFAULT_SNAPSHOT_MAX_AGE),
        monthly_max_age=_duration(env, "TAXI_MONTHLY_MAX_AGE", DEFAULT_MONTHLY_MAX_AGE),
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
        dagster_url=dagster_url,
        alerts=_alerts(env),
        freshness=freshness,
    )
