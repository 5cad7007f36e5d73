"""The dashboards bundle (superset/dashboards/) is valid and matches the marts.

Columns come from the dbt models' schema YAML (analytics/models/**.yml) when it declares the mart,
else from the team contract's column list below.
"""

from __future__ import annotations

import json
import re

import duckdb
import pytest
import yaml
from conftest import BUNDLE_DIR, REPO_ROOT
from superset_checks import chart_sql, dashboard_chart_uuids, read_bundle

# the contract (/work/contract.md, "dbt models"): used when the dbt schema YAML is not there
CONTRACT_MART_COLUMNS = {
    "location_metrics": {
        "pickup_zone_id",
        "pickup_zone",
        "pickup_borough",
        "destination_borough",
        "from_airport",
        "trips",
        "total_distance",
        "total_duration_minutes",
        "total_fare",
        "trips_over_30_min",
    },
    "daily_metrics": {
        "date_of_business",
        "trip_count",
        "avg_trip_duration_minutes",
        "avg_fare_per_trip",
        "trips_over_30_min",
        "share_over_30_min",
    },
}
SQL_WORDS = {
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "nullif",
    "coalesce",
    "case",
    "when",
    "then",
    "else",
    "end",
    "and",
    "or",
    "not",
    "null",
    "is",
    "true",
    "false",
    "as",
    "cast",
    "double",
    "bigint",
    "distinct",
}


def dbt_mart_columns() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for file in sorted((REPO_ROOT / "analytics" / "models").rglob("*.yml")):
        doc = yaml.safe_load(file.read_text()) or {}
        for model in doc.get("models", []) or []:
            cols = {c["name"] for c in model.get("columns", []) or []}
            if model.get("name") in CONTRACT_MART_COLUMNS and cols:
                found[model["name"]] = cols
    return found


@pytest.fixture(scope="module")
def bundle():
    return read_bundle(BUNDLE_DIR)


@pytest.fixture(scope="module")
def mart_columns() -> dict[str, set[str]]:
    return {**CONTRACT_MART_COLUMNS, **dbt_mart_columns()}


def test_dbt_schema_agrees_with_the_contract():
    dbt = dbt_mart_columns()
    if not dbt:
        pytest.skip("analytics/models declares no mart columns yet")
    for model, cols in dbt.items():
        assert CONTRACT_MART_COLUMNS[model] <= cols, (
            f"{model}: dbt lacks {CONTRACT_MART_COLUMNS[model] - cols}"
        )


def test_uuids_unique_and_kinds_present(bundle):
    uuids = [u for kind in bundle.values() for u in kind]
    assert len(uuids) == len(set(uuids))
    assert len(bundle["databases"]) == 1
    assert {d["table_name"] for d in bundle["datasets"].values()} == {
        "location_metrics",
        "daily_metrics",
    }
    assert len(bundle["dashboards"]) >= 1 and len(bundle["charts"]) >= 5


def test_datasets_point_at_the_database_and_mart_columns(bundle, mart_columns):
    (db_uuid,) = bundle["databases"]
    for ds in bundle["datasets"].values():
        assert str(ds["database_uuid"]) == db_uuid, ds["_file"]
        assert ds["schema"] == "main"
        columns = {c["column_name"] for c in ds["columns"]}
        assert columns == mart_columns[ds["table_name"]], (
            f"{ds['_file']}: columns differ from the mart"
        )
        if ds.get("main_dttm_col"):
            assert ds["main_dttm_col"] in columns
        for metric in ds["metrics"]:
            words = {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", metric["expression"])}
            unknown = words - SQL_WORDS - columns
            assert not unknown, f"{ds['_file']} metric {metric['metric_name']}: unknown {unknown}"


def test_every_chart_dataset_and_field_exists(bundle):
    for chart in bundle["charts"].values():
        ds = bundle["datasets"].get(str(chart["dataset_uuid"]))
        assert ds is not None, (
            f"{chart['_file']}: dataset {chart['dataset_uuid']} not in the bundle"
        )
        columns = {c["column_name"] for c in ds["columns"]}
        metrics = {m["metric_name"] for m in ds["metrics"]}
        params = chart["params"]
        assert params["viz_type"] == chart["viz_type"]
        used_metrics = list(params.get("metrics") or []) + (
            [params["metric"]] if params.get("metric") else []
        )
        if params.get("timeseries_limit_metric"):
            used_metrics.append(params["timeseries_limit_metric"])
        assert used_metrics, chart["_file"]
        for m in used_metrics:
            assert isinstance(m, str) and m in metrics, f"{chart['_file']}: metric {m!r}"
        used_columns = list(params.get("groupby") or [])
        used_columns += [params["x_axis"]] if params.get("x_axis") else []
        used_columns += [f["subject"] for f in params.get("adhoc_filters") or []]
        for c in used_columns:
            assert c in columns, f"{chart['_file']}: column {c!r}"
        # the saved query behind /api/v1/chart/{id}/data/ uses the same fields
        # a JSON document in a string, as Superset exports it and as its importer requires
        assert isinstance(chart["query_context"], str), chart["_file"]
        qc = json.loads(chart["query_context"])
        assert len(qc["queries"]) == 1, chart["_file"]
        query = qc["queries"][0]
        assert set(query["metrics"]) <= metrics and set(query["columns"]) <= columns, chart["_file"]
        assert set(query["metrics"]) == set(
            m for m in used_metrics if m != params.get("timeseries_limit_metric")
        ) or set(query["metrics"]) == set(used_metrics), chart["_file"]


def test_every_dashboard_chart_exists(bundle):
    on_dashboards = set()
    for dash in bundle["dashboards"].values():
        uuids = dashboard_chart_uuids(dash)
        assert uuids, dash["_file"]
        for uuid in uuids:
            assert uuid in bundle["charts"], f"{dash['_file']}: chart {uuid} not in the bundle"
        on_dashboards |= set(uuids)
        position = dash["position"]
        for node_id, node in position.items():
            if isinstance(node, dict):
                for child in node.get("children", []):
                    assert child in position, f"{dash['_file']}: {node_id} -> missing {child}"
        for flt in dash["metadata"].get("native_filter_configuration", []):
            for target in flt["targets"]:
                if "datasetUuid" in target:
                    assert target["datasetUuid"] in bundle["datasets"]
    assert on_dashboards == set(bundle["charts"]), "every chart is on a dashboard"


def test_daily_dashboard_has_a_date_filter(bundle):
    daily_ds = next(u for u, d in bundle["datasets"].items() if d["table_name"] == "daily_metrics")
    dash = next(
        d
        for d in bundle["dashboards"].values()
        if any(bundle["charts"][c]["dataset_uuid"] == daily_ds for c in dashboard_chart_uuids(d))
    )
    kinds = [f["filterType"] for f in dash["metadata"]["native_filter_configuration"]]
    assert "filter_time" in kinds
    for c in dashboard_chart_uuids(dash):  # the time filter reaches the charts through this
        subjects = [
            (f["subject"], f["operator"]) for f in bundle["charts"][c]["params"]["adhoc_filters"]
        ]
        assert ("date_of_business", "TEMPORAL_RANGE") in subjects


def test_required_charts_exist(bundle):
    names = {c["slice_name"].lower() for c in bundle["charts"].values()}
    for words in (
        ["daily", "trips"],
        ["duration", "fare"],
        ["over 30"],
        ["airport", "borough"],
        ["busiest", "pickup"],
    ):
        assert any(all(w in n for w in words) for n in names), words


def test_every_chart_query_runs_on_the_mart_schema(bundle, snapshot):
    con = duckdb.connect(str(snapshot), read_only=True)
    for chart in bundle["charts"].values():
        sql, names = chart_sql(chart, bundle["datasets"][str(chart["dataset_uuid"])])
        rows = con.execute(sql).fetchall()
        assert rows and len(rows[0]) == len(names), chart["_file"]


def test_bundle_is_in_superset_export_format():
    """What docker/import_dashboards.py hands to Superset as is (test_startup.py imports it)."""
    meta = yaml.safe_load((BUNDLE_DIR / "metadata.yaml").read_text())
    assert meta["version"] == "1.0.0" and meta["type"] == "assets"
    for kind in ("databases", "datasets", "charts", "dashboards"):
        assert any((BUNDLE_DIR / kind).rglob("*.yaml")), kind
    (db_file,) = (BUNDLE_DIR / "databases").glob("*.yaml")
    assert yaml.safe_load(db_file.read_text())["extra"] is not None  # the importer needs it


def test_the_bundle_does_not_name_the_snapshot_path():
    """Its one home is SUPERSET_DUCKDB_PATH (docker/init.sh sets the URI from it)."""
    (db_file,) = (BUNDLE_DIR / "databases").glob("*.yaml")
    database = yaml.safe_load(db_file.read_text())
    assert database["sqlalchemy_uri"] == "duckdb:///:memory:"
    assert not any(".duckdb" in file.read_text() for file in BUNDLE_DIR.rglob("*.yaml"))
    # what docker/init.sh's set-database-uri matches on
    init = (BUNDLE_DIR.parent / "docker" / "init.sh").read_text()
    assert f'warehouse="{database["database_name"]}"' in init
