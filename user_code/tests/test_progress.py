"""fill_progress_sensor: what is done and left of the range fill, read from the instance."""

from contextlib import contextmanager
from datetime import timedelta

import dagster as dg
import pytest
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.test_utils import create_run_for_test

from taxi_pipeline.assets.tlc_site import TRIP_FILES
from taxi_pipeline.progress import FILLED, SENSOR_NAME, fill_progress

URL = "http://127.0.0.1:8088"
MONTHS = ("2023-01-01", "2023-02-01", "2023-03-01")
INGESTION = ("taxi_zones_file", "taxi_zones", "stg_zones", "taxi_trips_file", "taxi_trips")
# what the automation fills over the test range (2023-01..03): every asset but the on-demand one
EXPECTED = {
    "taxi_zones_file": 1,
    "taxi_zones": 1,
    "stg_zones": 1,
    "taxi_trips_file": 3,
    "taxi_trips": 3,
    "stg_trips": 1,
    "location_metrics": 1,
    "airport_trips": 1,
    "daily_metrics": 90,
    "trips_by_week": 12,
    "published_warehouse": 1,
}


@contextmanager
def _published(months=MONTHS):
    """An instance where tlc_site_sensor has observed `months` on the TLC site."""
    with dg.instance_for_test() as instance:
        for month in months:
            instance.report_runless_asset_event(
                dg.AssetObservation(TRIP_FILES, partition=month, tags={DATA_VERSION_TAG: "v1"})
            )
        yield instance


@pytest.fixture(scope="module")
def graph(defs):
    return defs.resolve_asset_graph()


def _land(instance, graph, names):
    for name in names:
        partitions_def = graph.get(dg.AssetKey(name)).partitions_def
        for partition in partitions_def.get_partition_keys() if partitions_def else [None]:
            instance.report_runless_asset_event(dg.AssetMaterialization(name, partition=partition))


def _run(instance, status, assets=(), tags=None):
    # a queued run must say where it comes from (the daemon dequeues it from there)
    location = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("taxi_pipeline"), "__repo__")
    return create_run_for_test(
        instance,
        status=status,
        asset_selection={dg.AssetKey(name) for name in assets} or None,
        tags=tags or {},
        remote_job_origin=location.get_job_origin("__ASSET_JOB"),
    )


def test_an_empty_instance_expects_every_partition_the_automation_fills(graph):
    with _published() as instance:
        progress = fill_progress(instance, graph, URL)
        assert {a.key: (a.done, a.expected) for a in progress.assets} == {
            key: (0, expected) for key, expected in EXPECTED.items()
        }
        assert not progress.filled and progress.elapsed is None
        message = progress.message()
        assert message.startswith("filling: 0/11 assets, 0/115 partitions done; left: ")
        assert "no run yet" in message


def test_a_fill_under_way_says_what_runs_and_extrapolates_the_time_left(graph):
    with _published() as instance:
        _land(instance, graph, INGESTION)
        first = _run(instance, dg.DagsterRunStatus.SUCCESS, ["taxi_trips"])
        _run(
            instance,
            dg.DagsterRunStatus.STARTED,
            ["daily_metrics"],
            {
                "dagster/asset_partition_range_start": "2023-01-01",
                "dagster/asset_partition_range_end": "2023-03-31",
            },
        )
        _run(instance, dg.DagsterRunStatus.QUEUED, ["trips_by_week"])
        _run(instance, dg.DagsterRunStatus.FAILURE, ["airport_trips"])
        started = instance.get_run_record_by_id(first.run_id).create_timestamp
        progress = fill_progress(instance, graph, URL, now=started + timedelta(seconds=120))

        # 5 of 11 assets done in 120 s: 6 left at the same pace, 144 s
        assert progress.share_done == pytest.approx(5 / 11)
        assert progress.seconds_left == pytest.approx(144, abs=1)
        message = progress.message()
        assert message.startswith("filling: 5/11 assets, 9/115 partitions done; left: ")
        assert "running: daily_metrics (2023-01-01...2023-03-31)" in message
        assert "1 run(s) queued" in message
        assert "1 run(s) FAILED" in message
        assert "4 run(s) in 2m00s, about 2m24s left" in message


def test_partial_partitions_count_as_a_share_of_their_asset(graph):
    with _published() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization("taxi_trips", partition=MONTHS[0])
        )
        progress = fill_progress(instance, graph, URL)
        trips = next(a for a in progress.assets if a.key == "taxi_trips")
        assert (trips.done, trips.expected) == (1, 3)
        assert progress.share_done == pytest.approx((1 / 3) / 11)
        assert "taxi_trips 1/3" in progress.message()


def test_a_filled_range_points_at_the_dashboards(graph):
    with _published() as instance:
        _run(instance, dg.DagsterRunStatus.SUCCESS)
        _land(instance, graph, EXPECTED)
        progress = fill_progress(instance, graph, URL)
        assert progress.filled and progress.seconds_left is None
        message = progress.message()
        assert message.startswith(f"{FILLED} in Superset, {URL} (11/11 assets, 115/115 ")
        assert "by 1 runs" in message


def _tick(defs, instance, cursor):
    sensor = defs.get_sensor_def(SENSOR_NAME)
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, repository_def=defs.get_repository_def()
    )
    result = sensor(context)
    return result.skip_message, context.cursor


def test_the_sensor_reports_in_its_ticks_and_times_a_later_fill_from_the_last_one(defs, graph):
    with _published() as instance:
        message, cursor = _tick(defs, instance, None)
        assert message.startswith("filling: 0/11 assets")

        _run(instance, dg.DagsterRunStatus.SUCCESS)
        _land(instance, graph, EXPECTED)
        filled, cursor = _tick(defs, instance, cursor)
        assert filled.startswith(FILLED) and "by 1 runs" in filled

        # filled stays filled, with the figures of that fill, whatever runs later
        _run(instance, dg.DagsterRunStatus.SUCCESS)
        assert _tick(defs, instance, cursor)[0] == filled

        # a gap opens (here: an asset wiped): a new fill, whose runs count from the end of the
        # last one (the run above, not the one before the fill completed)
        instance.wipe_assets([dg.AssetKey("published_warehouse")])
        message, cursor = _tick(defs, instance, cursor)
        assert message.startswith("filling: 10/11 assets, 114/115 partitions done; left: ")
        assert "; 1 run(s) in " in message
        _run(instance, dg.DagsterRunStatus.STARTED, ["published_warehouse"])
        message, cursor = _tick(defs, instance, cursor)
        assert "running: published_warehouse; 2 run(s) in " in message


def test_the_sensor_runs_by_default_and_requests_nothing(defs):
    sensor = defs.get_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert not sensor.targets


def test_a_month_the_tlc_has_not_published_is_left_out_and_named(graph):
    with _published(MONTHS[:2]) as instance:
        progress = fill_progress(instance, graph, URL)
        counts = {a.key: a.expected for a in progress.assets}
        # March's file, load and days are not part of the fill; the week that starts in
        # February and reaches into March is
        assert counts["taxi_trips"] == 2 and counts["daily_metrics"] == 59
        assert counts["trips_by_week"] == 9
        assert "waiting for the TLC to publish 2023-03 (loaded when it appears)" in (
            progress.message()
        )
        _land(instance, graph, EXPECTED)
        filled = fill_progress(instance, graph, URL)
        assert filled.filled and filled.message().startswith(FILLED)
        assert filled.message().endswith(
            "waiting for the TLC to publish 2023-03 (loaded when it appears)"
        )


def test_before_the_site_was_observed_every_month_waits_and_the_line_still_reads(graph):
    with _published(()) as instance:
        progress = fill_progress(instance, graph, URL)
        assert {a.key: a.expected for a in progress.assets}["taxi_trips"] == 0
        # the trip file and load, the days and the weeks: nothing of theirs is expected yet
        assert progress.share_done == pytest.approx(4 / 11)
        assert "waiting for the TLC to publish 2023-01, 2023-02, 2023-03" in progress.message()
