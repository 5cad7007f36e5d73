"""Settings: one reader of the environment, defaults in one place, errors that name the fix."""

from datetime import timedelta

import pytest

from taxi_pipeline.settings import (
    DEFAULT_DAGSTER_URL,
    DEFAULT_END_MONTH,
    DEFAULT_START_MONTH,
    DEFAULT_SUPERSET_URL,
    DEFAULT_TLC_BASE_URL,
    SettingsError,
    load_settings,
)

SETTINGS = (
    "TAXI_DATA_SOURCE",
    "TAXI_TLC_BASE_URL",
    "TAXI_SAMPLE_TRIPS_PER_MONTH",
    "TAXI_START_MONTH",
    "TAXI_END_MONTH",
    "TAXI_DATA_DIR",
    "DUCKDB_DATABASE",
    "TAXI_PUBLISHED_DATABASE",
    "TAXI_SUPERSET_URL",
    "TAXI_DAGSTER_URL",
    "TAXI_SNAPSHOT_MAX_AGE",
    "TAXI_MONTHLY_MAX_AGE",
    "TAXI_ALERT_WEBHOOK_URL",
    "TAXI_ALERT_SMTP_HOST",
    "TAXI_ALERT_SMTP_PORT",
    "TAXI_ALERT_SMTP_STARTTLS",
    "TAXI_ALERT_SMTP_USER",
    "TAXI_ALERT_SMTP_PASSWORD",
    "TAXI_ALERT_EMAIL_FROM",
    "TAXI_ALERT_EMAIL_TO",
    "TAXI_ALERT_SOURCE_DOWN_AFTER",
)
SMTP = {
    "TAXI_ALERT_SMTP_HOST": "mail.example.com",
    "TAXI_ALERT_EMAIL_FROM": "taxi@example.com",
    "TAXI_ALERT_EMAIL_TO": "oncall@example.com",
}


def test_unset_and_empty_mean_the_same_default(tmp_path):
    # docker-compose.yml hands every setting over, empty when .env does not set it
    unset = load_settings({"TAXI_DATA_DIR": str(tmp_path)})
    empty = load_settings({**dict.fromkeys(SETTINGS, ""), "TAXI_DATA_DIR": str(tmp_path)})
    assert unset == empty
    assert (unset.start_month, unset.end_month) == (DEFAULT_START_MONTH, DEFAULT_END_MONTH)
    assert unset.tlc_base_url == DEFAULT_TLC_BASE_URL
    assert unset.superset_url == DEFAULT_SUPERSET_URL
    assert unset.duckdb_database == tmp_path / "warehouse" / "taxi.duckdb"
    assert unset.published_database == tmp_path / "published" / "taxi.duckdb"
    assert unset.dagster_url == DEFAULT_DAGSTER_URL
    assert unset.alerts.channels == []
    assert unset.alerts.source_down_after == timedelta(hours=6)
    assert unset.freshness.snapshot_max_age == timedelta(hours=26)
    assert unset.freshness.monthly_max_age == timedelta(days=45)


def test_alert_channels_any_combination():
    webhook = {"TAXI_ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X"}
    assert load_settings(webhook).alerts.channels == ["webhook"]
    assert load_settings(SMTP).alerts.channels == ["email"]
    both = load_settings({**webhook, **SMTP, "TAXI_ALERT_EMAIL_TO": "a@example.com, b@x.org"})
    assert both.alerts.channels == ["webhook", "email"]
    smtp = both.alerts.smtp
    assert (smtp.port, smtp.starttls, smtp.user, smtp.password) == (587, True, None, None)
    assert smtp.recipients == ("a@example.com", "b@x.org")
    login = load_settings(
        {
            **SMTP,
            "TAXI_ALERT_SMTP_PORT": "465",
            "TAXI_ALERT_SMTP_STARTTLS": "false",
            "TAXI_ALERT_SMTP_USER": "taxi",
            "TAXI_ALERT_SMTP_PASSWORD": "s3cret",
        }
    )
    assert (login.alerts.smtp.port, login.alerts.smtp.starttls) == (465, False)
    # secrets never show in a repr (logs, tracebacks)
    assert "s3cret" not in repr(login) and "hooks.slack.com" not in repr(both)


def test_durations():
    durations = load_settings(
        {
            "TAXI_SNAPSHOT_MAX_AGE": "90m",
            "TAXI_MONTHLY_MAX_AGE": "60d",
            "TAXI_ALERT_SOURCE_DOWN_AFTER": "1h",
        }
    )
    assert durations.freshness.snapshot_max_age == timedelta(minutes=90)
    assert durations.freshness.monthly_max_age == timedelta(days=60)
    assert durations.alerts.source_down_after == timedelta(hours=1)


def test_latest_means_no_end_month():
    assert load_settings({"TAXI_END_MONTH": "latest"}).end_month is None
    assert load_settings({"TAXI_END_MONTH": "2024-06"}).end_month == "2024-06"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TAXI_DATA_SOURCE": "ftp"}, "TAXI_DATA_SOURCE='ftp'"),
        ({"TAXI_TLC_BASE_URL": "d37ci6vzurychx.cloudfront.net"}, "is not an http"),
        ({"TAXI_TLC_BASE_URL": "ftp://mirror/tlc"}, "TAXI_TLC_BASE_URL='ftp://mirror/tlc'"),
        ({"TAXI_SUPERSET_URL": "localhost:8088"}, "TAXI_SUPERSET_URL='localhost:8088' is not"),
        ({"TAXI_START_MONTH": "2023-13"}, "TAXI_START_MONTH='2023-13'"),
        ({"TAXI_END_MONTH": "soon"}, "or latest"),
        ({"TAXI_START_MONTH": "2023-05", "TAXI_END_MONTH": "2023-04"}, "is before"),
        ({"TAXI_SAMPLE_TRIPS_PER_MONTH": "ten"}, "TAXI_SAMPLE_TRIPS_PER_MONTH='ten'"),
        ({"TAXI_SAMPLE_TRIPS_PER_MONTH": "50"}, "TAXI_SAMPLE_TRIPS_PER_MONTH='50' must be"),
        ({"TAXI_SAMPLE_TRIPS_PER_MONTH": "1e6"}, "must be a whole number"),
        ({"TAXI_END_MONTH": "2023-04-30"}, "TAXI_END_MONTH='2023-04-30' is not a month"),
        (
            {"DUCKDB_DATABASE": "/x/w.duckdb", "TAXI_PUBLISHED_DATABASE": "/x/p.duckdb"},
            "must not be in the folder of DUCKDB_DATABASE",
        ),
        ({"TAXI_DAGSTER_URL": "dagster:3000"}, "TAXI_DAGSTER_URL='dagster:3000' is not an http"),
        ({"TAXI_ALERT_WEBHOOK_URL": "hooks.slack.com/x"}, "TAXI_ALERT_WEBHOOK_URL is not an http"),
        ({**SMTP, "TAXI_ALERT_SMTP_PORT": "smtp"}, "TAXI_ALERT_SMTP_PORT='smtp' is not a port"),
        ({**SMTP, "TAXI_ALERT_SMTP_PORT": "70000"}, "use a whole number from 1 to 65535"),
        ({**SMTP, "TAXI_ALERT_EMAIL_TO": " , "}, "TAXI_ALERT_EMAIL_TO is empty while"),
        ({**SMTP, "TAXI_ALERT_EMAIL_TO": "oncall"}, "'oncall', which is not an email address"),
        ({**SMTP, "TAXI_ALERT_EMAIL_FROM": ""}, "TAXI_ALERT_EMAIL_FROM is empty"),
        ({**SMTP, "TAXI_ALERT_EMAIL_FROM": "a@x.org,b@x.org"}, "must be one address"),
        ({**SMTP, "TAXI_ALERT_SMTP_HOST": "smtp://mail:25"}, "is not a host name"),
        ({**SMTP, "TAXI_ALERT_SMTP_STARTTLS": "maybe"}, "is not a yes/no value"),
        ({**SMTP, "TAXI_ALERT_SMTP_USER": "taxi"}, "go together"),
        ({"TAXI_SNAPSHOT_MAX_AGE": "a day"}, "TAXI_SNAPSHOT_MAX_AGE='a day' is not a duration"),
        ({"TAXI_MONTHLY_MAX_AGE": "30s"}, "between 1m and 366d"),
        ({"TAXI_MONTHLY_MAX_AGE": "400d"}, "e.g. 45d"),
        ({"TAXI_ALERT_SOURCE_DOWN_AFTER": "-1h"}, "TAXI_ALERT_SOURCE_DOWN_AFTER='-1h'"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(env, named):
    with pytest.raises(SettingsError, match=named.replace("(", r"\(")):
        load_settings(env)
