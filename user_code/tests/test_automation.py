"""The automation conditions fill a brand-new deployment and cascade downstream, with no clicks,
from what the TLC site is observed to hold (test_tlc_site.py plays it against a live site)."""

from datetime import UTC, datetime

import dagster as dg
from conftest import TEST_ENV
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from tlc_server import unreachable_base_url

from taxi_pipeline.assets.tlc_site import TRIP_FILES, ZONE_LOOKUP
from taxi_pipeline.definitions import build_defs
from taxi_pipeline.settings import load_settings
from taxi_pipeline.sources import tlc

MONTHS = ("2023-01-01", "2023-02-01", "2023-03-01")


def _requested(result) -> dict[str, int]:
    return {
        r.key.to_user_string(): r.true_subset.size
        for r in result.results
        if isinstance(r.key, dg.AssetKey) and r.true_subset.size
    }


def _materialized(instance, key: str, partitions=(None,)):
    for partition in partitions:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def _observed(instance, key: dg.AssetKey, partitions=(None,), version="v1"):
    for partition in partitions:
        instance.report_runless_asset_event(
            dg.AssetObservation(key, partition=partition, tags={DATA_VERSION_TAG: version})
        )


def test_nothing_is_requested_before_the_site_was_observed(defs):
    with dg.instance_for_test() as instance:
        assert _requested(dg.evaluate_automation_conditions(defs=defs, instance=instance)) == {}


def test_every_published_month_is_requested_and_an_unpublished_one_waits(defs):
    with dg.instance_for_test() as instance:
        _observed(instance, ZONE_LOOKUP)
        _observed(instance, TRIP_FILES, MONTHS[:2])
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        # files and loads of the published months, and the zones as far as dbt's stg_zones
        # (inputs requested in the same tick for the same run count as present); not March
        assert _requested(result) == {
            "taxi_zones_file": 1,
            "taxi_zones": 1,
            "stg_zones": 1,
            "taxi_trips_file": 2,
            "taxi_trips": 2,
        }
        assert result.get_requested_partitions(dg.AssetKey("taxi_trips_file")) == set(MONTHS[:2])


def test_each_stage_follows_once_its_inputs_landed_until_the_snapshot_is_published(defs):
    daily = defs.resolve_asset_graph().get(dg.AssetKey("daily_metrics")).partitions_def
    weekly = defs.resolve_asset_graph().get(dg.AssetKey("trips_by_week")).partitions_def
    stages = [
        (
            {
                "taxi_trips_file": MONTHS,
                "taxi_trips": MONTHS,
                "taxi_zones_file": None,
                "taxi_zones": None,
                "stg_zones": None,
            },
            {"stg_trips": 1, "location_metrics": 1, "airport_trips": 1},
        ),
        (
            {"stg_trips": None, "location_metrics": None, "airport_trips": None},
            {"daily_metrics": 90, "trips_by_week": 12},
        ),
        (
            {
                "daily_metrics": daily.get_partition_keys(),
                "trips_by_week": weekly.get_partition_keys(),
            },
            {},  # the snapshot waits one quiet tick (automation.inputs_settled)
        ),
        ({}, {"published_warehouse": 1}),
        ({"published_warehouse": None}, {}),
    ]
    with dg.instance_for_test() as instance:
        _observed(instance, ZONE_LOOKUP)
        _observed(instance, TRIP_FILES, MONTHS)
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
        for landed, expected in stages:
            for key, partitions in landed.items():
                _materialized(instance, key, partitions or (None,))
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
            assert _requested(result) == expected
            cursor = result.cursor


def test_a_new_data_version_of_one_month_requests_that_month_only(defs):
    with dg.instance_for_test() as instance:
        _observed(instance, ZONE_LOOKUP)
        _observed(instance, TRIP_FILES, MONTHS)
        for key in ("taxi_trips_file", "taxi_trips"):
            _materialized(instance, key, MONTHS)
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
        # the same version observed again is not a change
        _observed(instance, TRIP_FILES, MONTHS[1:2], version="v1")
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert "taxi_trips_file" not in _requested(result)
        _observed(instance, TRIP_FILES, MONTHS[1:2], version="v2")
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        assert result.get_requested_partitions(dg.AssetKey("taxi_trips_file")) == {MONTHS[1]}


def test_a_month_whose_download_failed_is_tried_again_once_a_day(tmp_path, monkeypatch):
    """The site answered the observation, then failed every attempt of the download."""
    monkeypatch.setattr(tlc, "MAX_BACKOFF_SECONDS", 0)
    settings = load_settings(
        {
            **TEST_ENV,
            "TAXI_DATA_SOURCE": "nyc-tlc",
            "TAXI_TLC_BASE_URL": unreachable_base_url(),
            "TAXI_DATA_DIR": str(tmp_path / "data"),
        }
    )
    defs = build_defs(settings)
    trips_file = dg.AssetKey("taxi_trips_file")
    with dg.instance_for_test() as instance:
        _observed(instance, ZONE_LOOKUP)
        _observed(instance, TRIP_FILES, MONTHS)
        failed = dg.materialize(
            [defs.get_assets_def(trips_file)],
            partition_key=MONTHS[0],
            instance=instance,
            resources=defs.resources,
            raise_on_error=False,
        )
        assert not failed.success

        def january_requested_at(hour: int, minute: int, cursor) -> tuple[bool, object]:
            result = dg.evaluate_automation_conditions(
                defs=defs,
                instance=instance,
                cursor=cursor,
                evaluation_time=datetime(2030, 1, 1, hour, minute, tzinfo=UTC),
            )
            return MONTHS[0] in result.get_requested_partitions(trips_file), result.cursor

        requested, cursor = january_requested_at(3, 0, None)
        assert not requested  # the other months are requested; the failed one waits
        requested, cursor = january_requested_at(3, 30, cursor)
        assert not requested
        requested, cursor = january_requested_at(4, 1, cursor)
        assert requested  # the daily retry
        requested, cursor = january_requested_at(4, 30, cursor)
        assert not requested
