"""The automation conditions fill a brand-new deployment and cascade downstream, with no clicks."""

import dagster as dg

MONTHS = ("2023-01-01", "2023-02-01", "2023-03-01")


def _requested(result) -> dict[str, int]:
    return {
        r.key.to_user_string(): r.true_subset.size for r in result.results if r.true_subset.size
    }


def _materialized(instance, key: str, partitions=(None,)):
    for partition in partitions:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def test_an_empty_instance_requests_ingestion_of_every_month(defs):
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        # files and loads of every month, and the zones as far as dbt's stg_zones (inputs that
        # will be requested in the same tick count as present); nothing else yet
        assert _requested(result) == {
            "taxi_zones_file": 1,
            "taxi_zones": 1,
            "stg_zones": 1,
            "taxi_trips_file": 3,
            "taxi_trips": 3,
        }


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
            {"published_warehouse": 1},
        ),
        ({"published_warehouse": None}, {}),
    ]
    with dg.instance_for_test() as instance:
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
        for landed, expected in stages:
            for key, partitions in landed.items():
                _materialized(instance, key, partitions or (None,))
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
            assert _requested(result) == expected
            cursor = result.cursor
