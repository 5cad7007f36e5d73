#!/usr/bin/env python3
"""The whole stack at real size (issue 7): figures, not assertions.

    ci/build-images.sh --tag benchstack
    uv run --project ci ci/bench_stack.py --skip-build --tag benchstack       # 3 M trips/month
    uv run --project ci ci/bench_stack.py --skip-build --tag benchstack --trips-per-month 20000

On already built images, in a throwaway compose project (the end-to-end check's harness: own
name, own host ports, a generated env file, never the user's .env) with the offline `sample`
source at --trips-per-month rows a month, it measures:
  1. `docker compose up` -> every service healthy;
  2. `up` -> 2023-01..2023-03 loaded, built, audited and published by the automation sensor alone
     (no clicks) and visible in Superset: the "Trips in period" chart, queried through Superset's
     chart data API, equals the rows the loader reported for the three months;
  3. per run: job, assets/partitions, queue wait, start -> first step, duration, and its
     container's peak memory (read from the container's memory cgroup each second while it lives,
     see e2elib/bench.py), the container's memory limit, and OOM kills (cgroup counter and the
     engine's `oom` events);
  4. chart latency (p50/p95/max, queries, failures) over every chart, queried in a loop while
     backfills write: automation is paused, the range is extended to 2023-12 (services recreated
     with TAXI_END_MONTH=2023-12, volumes kept), then, through GraphQL, "backfill 1": the whole
     pipeline with the monthly assets over the 9 new months (the snapshot goes from 3 to 12
     months), and "backfill 2": daily_metrics over all 365 days (one run, dbt over 12 months of
     trips) and the snapshot published again, while the charts read 12 published months.
     --no-second-backfill skips the second one.
Targets (reported, not asserted): healthy <= 60 s, 3 real-size months visible <= 5 min, chart
p95 <= 300 ms with 0 failures, no run OOM-killed. The exit status is 1 only when something failed
(a run, a chart query, a timeout). Prints a table and writes JSON (--json). The stack, its volumes
and its run containers are removed at the end, also on Ctrl-C (unless --keep). At real size it
takes about 20 minutes on 2 cores; the run-container memory bound it reports is dagster.yaml's.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from argparse import Namespace
from pathlib import Path

from e2e import (
    ARTIFACTS,
    _interrupted,
    dump_logs,
    fail_on_failed_runs,
    git_revision,
    phase_build,
    phase_pause_automation,
    read_env_file,
    throwaway_env,
)
from superset_checks import ChartLoop

from e2elib import expected
from e2elib.bench import MemorySampler, chart_value
from e2elib.dagster import Dagster, partitions_by_assets, tags_of, unfilled_assets
from e2elib.stack import EventRecorder, PhaseFailure, Stack, new_project_name, wait_until

MONTHLY = {"taxi_trips_file", "taxi_trips"}
# backfill 2 rewrites the heaviest warehouse model (one run over every day) and publishes it again
REWRITE = ("daily_metrics", "published_warehouse")
TOTAL_CHART = "Trips in period"  # big number: sum of daily_metrics.trips over the whole range
RUNS_QUERY = """
query Runs($limit: Int) {
  runsOrError(limit: $limit) {
    ... on Runs { results {
      runId jobName status creationTime startTime endTime tags { key value }
      assetSelection { path }
      stepStats { stepKey status startTime endTime }
    } }
  }
}
"""
ROWS_QUERY = """
query Rows($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(limit: 1000) {
      partition timestamp metadataEntries { label ... on IntMetadataEntry { intValue } } } }
  }
}
"""


def loaded_trips(api: Dagster, months: list[str]) -> int | None:
    """Rows the loader reported (taxi_trips' dagster/row_count) summed over `months`, latest
    materialization of each; None until every month was loaded."""
    mats = api.query(ROWS_QUERY, {"key": {"path": ["taxi_trips"]}})["assetOrError"]
    latest: dict[str, tuple[float, int]] = {}
    for mat in mats.get("assetMaterializations", []):
        rows = [
            e.get("intValue") for e in mat["metadataEntries"] if e["label"] == "dagster/row_count"
        ]
        if mat["partition"] in months and rows and rows[0] is not None:
            ts = float(mat["timestamp"])
            if mat["partition"] not in latest or ts > latest[mat["partition"]][0]:
                latest[mat["partition"]] = (ts, rows[0])
    return sum(r for _, r in latest.values()) if len(latest) == len(months) else None


def extend_selection(assets: dict, first_new_month: str) -> list[dict]:
    """The whole pipeline (but ad-hoc requests), monthly assets only from `first_new_month` on."""
    selection = partitions_by_assets(assets, exclude=expected.NOT_FILLED)
    for item in selection:
        key = "/".join(item["assetKey"]["path"])
        if key in MONTHLY:
            item["partitions"]["range"]["start"] = first_new_month
    return selection


def months_between(start: str, end: str) -> list[str]:
    year, month = int(start[:4]), int(start[5:7])
    out = []
    while f"{year:04d}-{month:02d}" <= end:
        out.append(f"{year:04d}-{month:02d}-01")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


class Bench:
    def __init__(self, args: Namespace, workdir: Path):
        self.args = args
        months = Namespace(start_month="2023-01", end_month="2023-03")
        self.env_file = throwaway_env(
            Namespace(trips_per_month=args.trips_per_month, tag=args.tag, **vars(months)),
            workdir,
            "bench.env",
        )
        self.env = read_env_file(self.env_file)
        self.project = new_project_name()
        self.stack = Stack.create(self.project, self.env_file)
        self.api = Dagster(int(self.env["DAGSTER_WEBSERVER_PORT"]))
        self.superset = (
            f"http://127.0.0.1:{self.env['SUPERSET_PORT']}",
            self.env.get("SUPERSET_ADMIN_USERNAME", "admin"),
            self.env["SUPERSET_ADMIN_PASSWORD"],
        )
        self.events = EventRecorder(self.project, workdir / "events.jsonl")
        self.memory = MemorySampler(self.project)
        self.charts: ChartLoop | None = None
        self.runs: dict[str, dict] = {}  # run id -> the API's run, with step stats
        self.t0 = self.t0_wall = 0.0
        self.marks: dict[str, float] = {}  # seconds since `up`
        self.windows: dict[str, tuple[float, float]] = {}  # chart-latency windows (monotonic)
        self.backfills: dict[str, str] = {}  # window name -> backfill id
        self.result: dict = {
            "project": self.project,
            "tag": args.tag,
            "trips_per_month": args.trips_per_month,
        }

    def since_up(self) -> float:
        return time.monotonic() - self.t0

    def mark(self, name: str) -> float:
        self.marks[name] = round(self.since_up(), 1)
        print(f"  [{self.marks[name]:7.1f}s] {name}", flush=True)
        return self.marks[name]

    # 1. up -> healthy
    def up(self) -> None:
        self.events.start()
        self.memory.start()
        self.t0, self.t0_wall = time.monotonic(), time.time()
        self.stack.up(timeout=self.args.healthy_timeout)
        self.result["healthy_after_seconds"] = self.mark("all services healthy")

    # 2. up -> three months published and visible in Superset
    def wait_visible(self, months: list[str], label: str, timeout: float) -> None:
        location = self.api.locations()["taxi_pipeline"]
        required = set(location.assets) - expected.NOT_FILLED
        state = {"filled": False, "visible": False, "trips": None, "last": None}

        def done() -> bool:
            fail_on_failed_runs(self, self.api.runs(statuses=["FAILURE", "CANCELED"]), label)
            missing = {} if state["filled"] else unfilled_assets(self.api.asset_nodes(), required)
            if missing != state["last"]:
                text = ", ".join(f"{k} {v}" for k, v in sorted(missing.items())) or "nothing"
                print(f"  [{self.since_up():7.1f}s] missing: {text}", flush=True)
                state["last"] = missing
            if not state["filled"] and not missing:
                state["filled"] = True
                self.mark(f"{label}: every asset materialized")
            if state["trips"] is None:
                state["trips"] = loaded_trips(self.api, months)
            if state["trips"] is not None and not state["visible"]:
                shown = chart_value(*self.superset, TOTAL_CHART)
                if shown is not None and int(shown) == state["trips"]:
                    state["visible"] = True
                    self.mark(f"{label}: Superset shows all {state['trips']} trips")
                    self.result[f"{label}: trips shown"] = state["trips"]
            return state["filled"] and state["visible"]

        wait_until(
            done,
            timeout,
            f"{label}: every asset materialized and the trips the loader reported shown in "
            f"Superset's '{TOTAL_CHART}' chart",
            ["daemon", "user_code", "superset"],
        )

    # 4. backfills through GraphQL while every chart is queried in a loop
    def extend_range(self, end_month: str) -> None:
        phase_pause_automation(self)  # the backfill is then the only writer
        text = re.sub(
            r"(?m)^TAXI_END_MONTH=.*$", f"TAXI_END_MONTH={end_month}", self.env_file.read_text()
        )
        self.env_file.write_text(text)
        start = time.monotonic()
        self.stack.up(timeout=self.args.healthy_timeout)  # recreates the changed services
        self.result["recreate_with_12_months_seconds"] = round(time.monotonic() - start, 1)
        self.mark(f"services recreated with TAXI_END_MONTH={end_month}")

    def fetch_runs(self) -> None:
        """Keep what the API says about every run so far (the report may come after a crash)."""
        try:
            result = self.api.query(RUNS_QUERY, {"limit": 1000})["runsOrError"]
            self.runs.update({run["runId"]: run for run in result.get("results", [])})
        except Exception as exc:  # e.g. the webserver is down: report the runs known so far
            self.result["runs_error"] = str(exc)

    def backfill(self, name: str, selection: list[dict]) -> None:
        start = time.monotonic()
        backfill_id = self.api.launch_backfill(selection, title=f"bench_stack: {name}")
        self.backfills[name] = backfill_id
        self.windows[name] = (start, float("inf"))  # closed below; left open if interrupted
        self.mark(f"{name}: launched {backfill_id} over {len(selection)} assets")
        backfill = self.api.wait_for_backfill(
            backfill_id, timeout=self.args.backfill_timeout, poll=10
        )
        fail_on_failed_runs(self, backfill["runs"], f"{name} {backfill_id}")
        if backfill["status"] != "COMPLETED_SUCCESS":
            raise PhaseFailure(
                f"{name} ended {backfill['status']}: {backfill.get('error')}", ["daemon"]
            )
        self.api.wait_until_idle(timeout=600)
        self.windows[name] = (start, time.monotonic())
        self.mark(f"{name}: {len(backfill['runs'])} runs succeeded")

    def run(self) -> None:
        self.up()
        self.wait_visible(months_between("2023-01", "2023-03"), "3 months", self.args.fill_timeout)
        self.api.wait_until_idle(timeout=self.args.fill_timeout)
        self.mark("3 months: no run active any more")
        self.fetch_runs()
        self.extend_range("2023-12")
        self.charts = ChartLoop(*self.superset)
        self.charts.start()
        assets = self.api.locations()["taxi_pipeline"].assets
        self.backfill("backfill 1 (the 9 new months)", extend_selection(assets, "2023-04-01"))
        self.wait_visible(months_between("2023-01", "2023-12"), "12 months", 600)
        if not self.args.no_second_backfill:
            self.backfill(
                "backfill 2 (daily_metrics over 12 months, publish)",
                partitions_by_assets({k: assets[k] for k in REWRITE}),
            )

    # --- report --------------------------------------------------------------------------------
    def report(self) -> dict:
        result = self.result
        result["seconds_since_up"] = self.marks
        self.fetch_runs()
        runs = list(self.runs.values())
        memory = {c.run_id: c for c in self.memory.containers.values()}
        by_backfill = {v: k for k, v in self.backfills.items()}
        rows = []
        for run in sorted(runs, key=lambda r: r["creationTime"]):
            tags = tags_of(run)
            steps = [s for s in run.get("stepStats") or [] if s.get("startTime")]
            first_step = min((s["startTime"] for s in steps), default=None)
            mem = memory.get(run["runId"])
            partition = tags.get("dagster/partition") or "..".join(
                filter(
                    None,
                    [
                        tags.get("dagster/asset_partition_range_start"),
                        tags.get("dagster/asset_partition_range_end"),
                    ],
                )
            )
            rows.append(
                {
                    "run": run["runId"][:8],
                    "job": run["jobName"],
                    "status": run["status"],
                    "phase": by_backfill.get(tags.get("dagster/backfill"), "automation"),
                    "assets": ",".join(
                        "/".join(a["path"]) for a in run.get("assetSelection") or []
                    ),
                    "partition": partition,
                    "created_s": round(run["creationTime"] - self.t0_wall, 1),
                    "queued_s": _diff(run.get("startTime"), run["creationTime"]),
                    "to_first_step_s": _diff(first_step, run.get("startTime")),
                    "duration_s": _diff(run.get("endTime"), run.get("startTime")),
                    "peak_mb": mem and round(mem.peak_bytes / 2**20),
                    "max_rss_mb": mem and round(mem.max_rss_bytes / 2**20),
                    "limit_mb": mem and round(mem.limit_bytes / 2**20),
                    "oom_kills": mem and mem.oom_kills,
                }
            )
        result["runs"] = rows
        result["memory_source"] = sorted({c.source for c in self.memory.containers.values()})
        result["duckdb_in_run_container"] = self.memory.duckdb_probe
        result["oom_events"] = [
            e for e in self.events.events() if (e.get("Action") or e.get("status")) == "oom"
        ]
        if self.charts:
            result["chart_latency"] = {
                name: self.charts.stats(*window) for name, window in self.windows.items()
            }
            result["chart_latency"]["all"] = self.charts.stats()
        result["load_average"] = [
            {"at": time.strftime("%H:%M:%S", time.localtime(t)), "1m_5m_15m": list(load)}
            for t, load in self.memory.load
        ]
        return result


def _diff(end, start):
    return round(end - start, 1) if end and start else None


def print_table(result: dict) -> None:
    marks = result.get("seconds_since_up", {})
    print(
        "\n== the stack at real size: "
        f"{result['trips_per_month']} trips/month, tag {result['tag']} =="
    )
    for name, seconds in marks.items():
        print(f"  {seconds:8.1f}s after up  {name}")
    runs = result.get("runs", [])
    if runs:
        cols = [
            "run",
            "phase",
            "assets",
            "partition",
            "status",
            "queued_s",
            "to_first_step_s",
            "duration_s",
            "peak_mb",
            "max_rss_mb",
            "limit_mb",
            "oom_kills",
        ]
        widths = {c: max(len(c), *(len(str(r.get(c))) for r in runs)) for c in cols}
        widths["phase"] = min(widths["phase"], 12)
        widths["assets"] = min(widths["assets"], 34)
        print("\n" + "  ".join(c.ljust(widths[c]) for c in cols))
        for r in runs:
            print("  ".join(str(r.get(c))[: widths[c]].ljust(widths[c]) for c in cols))
    for name, stats in (result.get("chart_latency") or {}).items():
        print(
            f"\n  charts, {name}: {stats['requests']} queries over {stats['charts']} charts, "
            f"{stats['errors']} failed; latency (ms) {stats.get('latency_ms')}"
        )
    print(
        f"\n  memory read from {result.get('memory_source')}; OOM events: "
        f"{len(result.get('oom_events', []))}; DuckDB in a run container: "
        f"{result.get('duckdb_in_run_container')}"
    )
    if result.get("load_average"):
        peak = max(result["load_average"], key=lambda x: x["1m_5m_15m"][0])
        print(f"  load average (1 min) peaked at {peak['1m_5m_15m'][0]:.2f} ({peak['at']})")
    print(f"  status: {result.get('status')}")


def parse_args(argv=None) -> Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default=None, help="image tag (default: the git revision)")
    parser.add_argument("--skip-build", action="store_true", help="use already built images")
    parser.add_argument("--trips-per-month", type=int, default=3_000_000)
    parser.add_argument("--keep", action="store_true", help="leave the stack running at the end")
    parser.add_argument("--json", type=Path, default=ARTIFACTS / "bench_stack.json")
    parser.add_argument("--no-second-backfill", action="store_true")
    parser.add_argument("--healthy-timeout", type=float, default=600)
    parser.add_argument("--fill-timeout", type=float, default=3600)
    parser.add_argument("--backfill-timeout", type=float, default=5400)
    args = parser.parse_args(argv)
    args.tag = args.tag or git_revision()
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="taxi-bench-"))
    bench = Bench(args, workdir)
    print(f"project {bench.project}, images tagged {args.tag}, {args.trips_per_month} trips/month")
    status = 0
    try:
        phase_build(Namespace(args=args))
        bench.run()
    except PhaseFailure as failure:
        status = 1
        bench.result["error"] = str(failure)
        print(f"\nFAILED: {failure}", file=sys.stderr)
        dump_logs(bench.stack, failure.services)
    except (Exception, KeyboardInterrupt) as exc:
        status = 1
        bench.result["error"] = repr(exc)
        traceback.print_exc()
    finally:
        if bench.charts:
            bench.charts.stop()
        bench.memory.stop()
        bench.events.stop()
        result = bench.report()
        if result.get("chart_latency", {}).get("all", {}).get("errors"):
            status = 1
        result["status"] = "ok" if status == 0 else "failed"
        if args.keep:
            print(
                f"\n--keep: stack {bench.project} left running; remove it with\n  docker compose "
                f"-p {bench.project} --env-file {bench.env_file} down -v"
            )
        else:
            bench.stack.down()
            shutil.rmtree(workdir, ignore_errors=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
        print_table(result)
        print(f"\nJSON: {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
