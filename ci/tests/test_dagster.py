import pytest

from e2elib import dagster as api


def workspace(location):
    return {
        "workspaceOrError": {
            "__typename": "Workspace",
            "locationEntries": [
                {"name": "taxi_pipeline", "loadStatus": "LOADED", "locationOrLoadError": location}
            ],
        }
    }


LOADED = {
    "__typename": "RepositoryLocation",
    "repositories": [
        {
            "name": "__repository__",
            "jobs": [{"name": "__ASSET_JOB"}, {"name": "trip_update_job"}],
            "schedules": [{"name": "s", "scheduleState": {"id": "s1", "status": "RUNNING"}}],
            "sensors": [{"name": "auto", "sensorState": {"id": "x1", "status": "STOPPED"}}],
            "assetNodes": [
                {
                    "assetKey": {"path": ["taxi_trips"]},
                    "isPartitioned": True,
                    "partitionKeys": ["2023-01-01", "2023-02-01"],
                    "pools": ["duckdb_warehouse"],
                    "assetChecksOrError": {
                        "__typename": "AssetChecks",
                        "checks": [{"name": "unique_id"}],
                    },
                },
                {
                    "assetKey": {"path": ["published_warehouse"]},
                    "isPartitioned": False,
                    "partitionKeys": [],
                    "pools": [],
                    "assetChecksOrError": {"__typename": "AssetCheckNeedsMigrationError"},
                },
            ],
        }
    ],
}


def test_parse_workspace_collects_assets_checks_jobs_and_instigators():
    location = api.parse_workspace(workspace(LOADED))["taxi_pipeline"]
    assert location.error is None
    assert set(location.assets) == {"taxi_trips", "published_warehouse"}
    assert location.check_keys == {"taxi_trips:unique_id"}
    assert location.jobs == {"__ASSET_JOB", "trip_update_job"}
    assert location.schedules["s"]["status"] == "RUNNING"
    assert location.sensors["auto"]["id"] == "x1"
    assert location.assets["taxi_trips"]["pools"] == ["duckdb_warehouse"]
    assert location.assets["published_warehouse"]["checks"] == []


def test_parse_workspace_reports_a_load_error():
    error = {"__typename": "PythonError", "message": "boom", "stack": ["line 1\n"]}
    location = api.parse_workspace(workspace(error))["taxi_pipeline"]
    assert "boom" in location.error and not location.assets


def test_parse_workspace_raises_on_a_workspace_error():
    with pytest.raises(api.PhaseFailure):
        api.parse_workspace({"workspaceOrError": {"__typename": "PythonError", "message": "x"}})


def test_backfill_selection_covers_every_partition_and_skips_excluded_assets():
    assets = api.parse_workspace(workspace(LOADED))["taxi_pipeline"].assets
    selection = api.partitions_by_assets(assets, exclude={"nothing"})
    assert selection == [
        {"assetKey": {"path": ["published_warehouse"]}},
        {
            "assetKey": {"path": ["taxi_trips"]},
            "partitions": {"range": {"start": "2023-01-01", "end": "2023-02-01"}},
        },
    ]
    assert len(api.partitions_by_assets(assets, exclude={"published_warehouse"})) == 1


def test_partitioned_asset_without_partitions_is_an_error():
    with pytest.raises(ValueError):
        api.partitions_by_assets({"x": {"isPartitioned": True, "partitionKeys": []}})


def test_unfilled_assets():
    nodes = [
        {
            "assetKey": {"path": ["a"]},
            "isPartitioned": True,
            "partitionStats": {"numMaterialized": 2, "numPartitions": 2},
        },
        {
            "assetKey": {"path": ["b"]},
            "isPartitioned": True,
            "partitionStats": {"numMaterialized": 1, "numPartitions": 59},
        },
        {"assetKey": {"path": ["c"]}, "isPartitioned": False, "assetMaterializations": []},
        {
            "assetKey": {"path": ["d"]},
            "isPartitioned": False,
            "assetMaterializations": [{"timestamp": "1"}],
        },
        {"assetKey": {"path": ["ignored"]}, "isPartitioned": False, "assetMaterializations": []},
    ]
    missing = api.unfilled_assets(nodes, {"a", "b", "c", "d", "gone"})
    assert missing == {
        "b": "1/59 partitions",
        "c": "never materialized",
        "gone": "not in the asset graph",
    }


def test_failure_messages_name_the_step():
    events = [
        {
            "__typename": "ExecutionStepFailureEvent",
            "stepKey": "taxi_trips",
            "level": "ERROR",
            "message": "step failed",
            "error": {
                "message": "step failed: op taxi_trips",
                "errorChain": [{"error": {"message": "HTTP 404"}}],
            },
        },
        {"__typename": "MessageEvent", "level": "INFO", "message": "fine"},
        {"__typename": "RunFailureEvent", "level": "ERROR", "message": "run failed", "error": None},
    ]
    assert api.run_failure_messages(events) == [
        "[taxi_trips] step failed: op taxi_trips\n    caused by: HTTP 404",
        "run failed",
    ]


def test_tags_of():
    assert api.tags_of({"tags": [{"key": "a", "value": "1"}]}) == {"a": "1"}


def test_not_selected_warnings_are_found_among_the_messages():
    warning = (
        "AssetCheckResult for check 'positive_fares' for asset 'taxi_trips' was yielded which "
        "is not selected. Letting it through."
    )
    events = [
        {"__typename": "MessageEvent", "level": "WARNING", "message": warning},
        {"__typename": "MessageEvent", "level": "INFO", "message": "check selected: fine"},
        {"__typename": "LogsCapturedEvent", "fileKey": "k"},
    ]
    assert api.not_selected_warnings(events) == [warning]
    assert api.not_selected_warnings(events[1:]) == []


def test_the_warning_is_dagsters_own_text():
    import inspect

    from dagster._core.execution.plan import execute_step

    assert api.NOT_SELECTED.pattern.replace("\\", "") in inspect.getsource(execute_step)


def test_run_events_follow_the_cursor(monkeypatch):
    client = api.Dagster(1)
    pages = {
        None: {"events": [{"message": "a"}], "cursor": "c1", "hasMore": True},
        "c1": {"events": [{"message": "b"}], "cursor": "c2", "hasMore": False},
    }
    monkeypatch.setattr(client, "query", lambda q, v: {"logsForRun": pages[v["cursor"]]})
    assert client.run_events("r") == [{"message": "a"}, {"message": "b"}]


def test_stop_instigators_stops_only_running_ones(monkeypatch):
    client = api.Dagster(1)
    sent = []
    monkeypatch.setattr(client, "query", lambda q, v: sent.append((q, v)))
    location = api.parse_workspace(workspace(LOADED))["taxi_pipeline"]
    assert client.stop_instigators(location) == ["s"]
    assert sent == [(api.STOP_SCHEDULE, {"id": "s1"})]
