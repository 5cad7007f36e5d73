"""Unattended on a TLC site that changes under the test: a month absent, then published, then
re-published; a server error while observing; a corrected zone lookup; a site that stops
answering HEAD and then stops sending validators. The deployment is played the way the daemon plays
it: the observation sensor's tick, then the automation's ticks, each requested run executed, until
nothing more is requested. After each step: which asset partitions ran (each at most once), that
no run failed, the row counts in the warehouse and in the published snapshot."""

from __future__ import annotations

from collections import Counter, defaultdict

import dagster as dg
import duckdb
import pytest
from conftest import TEST_ENV
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from tlc_site import TLCSite

from taxi_pipeline.assets.tlc_site import TRIP_FILES
from taxi_pipeline.definitions import build_defs
from taxi_pipeline.settings import load_settings
from taxi_pipeline.sources.sample import write_sample_trips, write_sample_zones

JAN, FEB = "2023-01-01", "2023-02-01"
ZONES_PATH = "/misc/taxi_zone_lookup.csv"


def _trips_path(partition: str) -> str:
    return f"/trip-data/yellow_tripdata_{partition[:7]}.parquet"


class Deployment:
    """A code location, its instance, and the two daemons' ticks played in-process."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs, self.instance = defs, instance
        self.graph = defs.resolve_asset_graph()
        self.order = {key: i for i, key in enumerate(self.graph.toposorted_asset_keys)}
        self.sensor = defs.get_sensor_def("tlc_site_sensor")
        self.cursor = None

    def observe(self) -> str:
        """One tick of tlc_site_sensor; its events are stored as the sensor daemon stores them."""
        context = dg.build_sensor_context(
            instance=self.instance, resources=self.defs.resources, definitions=self.defs
        )
        result = self.sensor(context)
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        return result.skip_reason.skip_message

    def settle(self, max_ticks: int = 12) -> Counter:
        """Automation ticks until nothing is requested; (asset, partition) -> times materialized."""
        materialized: Counter = Counter()
        quiet = 0
        for _ in range(max_ticks):
            result = dg.evaluate_automation_conditions(
                defs=self.defs, instance=self.instance, cursor=self.cursor
            )
            self.cursor = result.cursor
            requested = {
                r.key: result.get_requested_partitions(r.key)
                for r in result.results
                if isinstance(r.key, dg.AssetKey) and r.true_subset.size
            }
            # The snapshot waits for one tick without updates (automation.inputs_settled).
            quiet = 0 if requested else quiet + 1
            if quiet == 2:
                return materialized
            for run in self._runs(requested):
                materialized.update(self._execute(*run))
        raise AssertionError(f"still requesting after {max_ticks} ticks")

    def _runs(self, requested: dict) -> list[tuple[list, str | None, dict]]:
        """The runs the daemon would launch: one per partition, or one per range for assets
        with a single-run backfill policy; assets requested for the same partitions together."""
        groups = defaultdict(list)
        for key, partitions in requested.items():
            groups[frozenset(partitions)].append(key)
        runs = []
        for partitions, keys in groups.items():
            keys.sort(key=self.order.get)
            policy = self.defs.get_assets_def(keys[0]).backfill_policy
            if partitions == {None}:
                runs.append((keys, None, {}))
            elif policy is not None and policy.max_partitions_per_run is None:
                first, last = min(partitions), max(partitions)
                tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
                runs.append((keys, None, tags))
            else:
                runs.extend((keys, partition, {}) for partition in sorted(partitions))
        return sorted(runs, key=lambda run: self.order[run[0][0]])

    def _execute(self, keys, partition, tags) -> Counter:
        job = self.defs.resolve_implicit_job_def_def_for_assets(keys)
        result = job.execute_in_process(
            instance=self.instance,
            asset_selection=keys,
            partition_key=partition,
            tags=tags,
            raise_on_error=False,
        )
        assert result.success, f"run of {keys} {partition or tags} failed"
        return Counter(
            (event.asset_key.to_user_string(), event.partition)
            for event in result.get_asset_materialization_events()
        )


def _count(database, sql: str) -> int:
    with duckdb.connect(str(database), read_only=True) as conn:
        return conn.execute(sql).fetchone()[0]


def _trips_by_month(database) -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as conn:
        rows = conn.execute(
            "select partition_date, count(*) from raw_taxis.trips group by all order by 1"
        ).fetchall()
    return dict(rows)


def _stage(materialized: Counter) -> dict[str, set]:
    """asset -> partitions materialized, after checking none ran twice."""
    twice = [item for item, times in materialized.items() if times > 1]
    assert not twice, f"materialized more than once: {twice}"
    by_asset = defaultdict(set)
    for asset, partition in materialized:
        by_asset[asset].add(partition)
    return dict(by_asset)


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()

    def trips(partition: str, rows: int) -> bytes:
        return write_sample_trips(partition[:7], folder, rows=rows).read_bytes()

    return {
        "zones": write_sample_zones(folder).read_bytes(),
        "jan": trips(JAN, 2000),
        "feb": trips(FEB, 1500),
        "jan corrected": trips(JAN, 1200),
        "feb corrected": trips(FEB, 1000),
    }


def test_a_month_is_waited_for_loaded_when_published_and_reloaded_alone_when_republished(
    tmp_path, files
):
    site = TLCSite()
    settings = load_settings(
        {
            **TEST_ENV,
            "TAXI_DATA_SOURCE": "nyc-tlc",
            "TAXI_TLC_BASE_URL": site.base_url,
            "TAXI_END_MONTH": "2023-02",
            "TAXI_DATA_DIR": str(tmp_path / "data"),
        }
    )
    warehouse, snapshot = settings.duckdb_database, settings.published_database
    try:
        with dg.instance_for_test() as instance:
            deployment = Deployment(build_defs(settings), instance)

            # 1. The zones and January are out, February is not.
            site.publish(ZONES_PATH, files["zones"])
            site.publish(_trips_path(JAN), files["jan"])
            tick = deployment.observe()
            assert "1 of 2 months published" in tick
            assert "waiting for 2023-02 (not published yet" in tick
            first = _stage(deployment.settle())
            assert first["taxi_trips_file"] == first["taxi_trips"] == {JAN}
            assert {p[:7] for p in first["daily_metrics"]} == {"2023-01"}
            assert len(first["daily_metrics"]) == 31
            # the week reaching into February is built from January's days so far
            assert max(first["trips_by_week"]) == "2023-01-29"
            assert first["published_warehouse"] == {None}
            january = _trips_by_month(warehouse)[JAN]
            assert set(_trips_by_month(warehouse)) == {JAN}
            assert _count(snapshot, "select sum(trip_count) from daily_metrics") == january
            # the waiting month shows as missing on the source, not as a failed run
            assert not instance.get_materialized_partitions(dg.AssetKey("taxi_trips_file")) - {JAN}
            assert (
                instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
                == []
            )

            # 2. Nothing changed on the site: nothing runs.
            assert "nothing new or changed" in deployment.observe()
            assert deployment.settle() == Counter()

            # 3. February appears: it alone is downloaded and loaded, January is not touched.
            site.publish(_trips_path(FEB), files["feb"])
            tick = deployment.observe()
            assert "2 of 2 months published; new or changed: 2023-02" in tick
            second = _stage(deployment.settle())
            assert second["taxi_trips_file"] == second["taxi_trips"] == {FEB}
            assert {p[:7] for p in second["daily_metrics"]} == {"2023-02"}
            # January's weeks are not rebuilt, except the one February completes
            assert min(second["trips_by_week"]) == "2023-01-29"
            assert "taxi_zones" not in second
            assert second["published_warehouse"] == {None}
            counts = _trips_by_month(warehouse)
            assert counts[JAN] == january and counts[FEB] > 0
            assert _count(snapshot, "select sum(trip_count) from daily_metrics") == sum(
                counts.values()
            )

            # 4. January is re-published with other trips: exactly January is reloaded, and only
            # what depends on it is rebuilt.
            site.publish(_trips_path(JAN), files["jan corrected"])
            assert "new or changed: 2023-01" in deployment.observe()
            third = _stage(deployment.settle())
            assert third["taxi_trips_file"] == third["taxi_trips"] == {JAN}
            assert {p[:7] for p in third["daily_metrics"]} == {"2023-01"}
            assert "taxi_zones_file" not in third
            corrected = _trips_by_month(warehouse)
            assert corrected[FEB] == counts[FEB]
            assert 0 < corrected[JAN] < january
            assert _count(snapshot, "select sum(trip_count) from daily_metrics") == sum(
                corrected.values()
            )

            # 5. A server error while observing: the tick says so, nothing is recorded or run.
            site.failures_left = 1000
            tick = deployment.observe()
            assert "could not observe" in tick and "HTTP 503" in tick
            assert deployment.settle() == Counter()
            site.failures_left = 0

            # 6. A corrected zone lookup is reloaded, and the trips are not.
            site.publish(ZONES_PATH, files["zones"].replace(b"Newark Airport", b"Newark Liberty"))
            assert "new or changed: zone lookup" in deployment.observe()
            fourth = _stage(deployment.settle())
            assert fourth["taxi_zones_file"] == fourth["taxi_zones"] == {None}
            assert "taxi_trips" not in fourth and "daily_metrics" not in fourth
            assert (
                _count(
                    warehouse, "select count(*) from raw_taxis.zones where zone = 'Newark Liberty'"
                )
                == 1
            )

            # 7. The site starts refusing HEAD: the one-byte GET gives the same validators, so
            # the same versions, and nothing runs.
            site.head_allowed = False
            assert "nothing new or changed" in deployment.observe()
            assert deployment.settle() == Counter()

            # 8. ... and stops sending ETag and Last-Modified: the files are fingerprinted
            # instead, which the tick says; the new versions reload each file once, with the
            # same rows. (The lookup and the months change in the same tick here, so the
            # unpartitioned marts are built after each: the one case where they run twice.)
            site.validators = False
            tick = deployment.observe()
            assert "note: the site sends neither ETag nor Last-Modified" in tick
            fifth = deployment.settle()
            files_loaded = {"taxi_trips_file", "taxi_trips", "taxi_zones_file", "taxi_zones"}
            assert {item: n for item, n in fifth.items() if item[0] in files_loaded} == {
                ("taxi_trips_file", JAN): 1,
                ("taxi_trips_file", FEB): 1,
                ("taxi_trips", JAN): 1,
                ("taxi_trips", FEB): 1,
                ("taxi_zones_file", None): 1,
                ("taxi_zones", None): 1,
            }
            assert _trips_by_month(warehouse) == corrected

            # 9. Without validators, a corrected February is still noticed, and alone.
            site.publish(_trips_path(FEB), files["feb corrected"])
            assert "new or changed: 2023-02" in deployment.observe()
            sixth = _stage(deployment.settle())
            assert sixth["taxi_trips_file"] == sixth["taxi_trips"] == {FEB}
            final = _trips_by_month(warehouse)
            assert final[JAN] == corrected[JAN] and 0 < final[FEB] < corrected[FEB]
            assert _count(snapshot, "select sum(trip_count) from daily_metrics") == sum(
                final.values()
            )

            failed = instance.get_runs(
                filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])
            )
            assert failed == []
            observed = instance.get_materialized_partitions(TRIP_FILES)
            assert observed == set()  # a source is observed, never materialized
    finally:
        site.close()
