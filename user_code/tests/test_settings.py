"""Settings: one reader of the environment, defaults in one place, errors that name the fix."""

import pytest

from taxi_pipeline.settings import (
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
)


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
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(env, named):
    with pytest.raises(SettingsError, match=named.replace("(", r"\(")):
        load_settings(env)
