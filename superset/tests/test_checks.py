"""The e2e helpers: the SQL rebuilt from a chart's saved query, and the row comparison."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest
from conftest import BUNDLE_DIR
from superset_checks import chart_sql, compare_rows, normalise, read_bundle


@pytest.fixture(scope="module")
def bundle():
    return read_bundle(BUNDLE_DIR)


def by_name(bundle, name):
    return next(c for c in bundle["charts"].values() if c["slice_name"] == name)


def test_sql_of_the_airport_chart(bundle):
    chart = by_name(bundle, "Trips from each airport by destination borough")
    sql, names = chart_sql(chart, bundle["datasets"][chart["dataset_uuid"]])
    assert names == ["pickup_zone", "destination_borough", "trips"]
    assert 'WHERE "from_airport" IS TRUE' in sql
    assert 'GROUP BY "pickup_zone", "destination_borough"' in sql
    assert sql.endswith("ORDER BY SUM(trips) DESC LIMIT 10000")


def test_sql_matches_an_independent_query(bundle, snapshot):
    chart = by_name(bundle, "Daily trips")
    sql, _ = chart_sql(chart, bundle["datasets"][chart["dataset_uuid"]])
    con = duckdb.connect(str(snapshot), read_only=True)
    ours = con.execute(sql).fetchall()
    plain = con.execute(
        "SELECT date_of_business, SUM(trip_count) FROM daily_metrics GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert ours == plain


def test_unsupported_parts_are_refused(bundle):
    chart = dict(by_name(bundle, "Daily trips"))
    saved = json.loads(chart["query_context"])  # a JSON string, as Superset stores it
    qc = {
        **saved,
        "queries": [
            {
                **saved["queries"][0],
                "filters": [
                    {"col": "date_of_business", "op": "TEMPORAL_RANGE", "val": "Last week"}
                ],
            }
        ],
    }
    chart["query_context"] = qc
    with pytest.raises(ValueError):
        chart_sql(chart, bundle["datasets"][chart["dataset_uuid"]])


def test_normalise_dates_like_superset():
    # Superset returns temporal columns as epoch milliseconds
    assert normalise(dt.date(2023, 1, 1)) == 1672531200000
    assert normalise(dt.datetime(2023, 1, 1)) == 1672531200000
    assert normalise(1672531200000.0) == normalise(1672531200000)


def test_compare_rows():
    assert compare_rows([["a", 1.0000000001]], [["a", 1.0]], ordered=True) is None
    assert compare_rows([["b", 2], ["a", 1]], [["a", 1], ["b", 2]], ordered=False) is None
    assert "row 0" in compare_rows([["a", 1]], [["a", 2]], ordered=True)
    assert "rows from Superset" in compare_rows([["a", 1]], [], ordered=False)
