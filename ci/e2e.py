#!/usr/bin/env python3
"""End-to-end check of the container stack, run by ci/test.sh (`uv run --project ci`).

    uv run --project ci ci/e2e.py                 # build the images, then every phase below
    uv run --project ci ci/e2e.py --skip-build --tag dev --keep   # reuse images, leave the stack up

It starts a throwaway compose project (own name, own host ports, own volumes, a generated env file;
never the user's .env) with the offline `sample` source over two months, and checks through the
webserver's API, Superset's API, a browser and the engine that:
  - every service becomes healthy (`docker compose up --wait`);
  - the code location loaded with every expected asset, asset check, job, schedule and sensor,
    the same set the image's definitions declare, and the pool and run launcher are configured;
  - with no clicks, the daemon fills the configured range (automation conditions);
  - a backfill of the whole pipeline for the two months succeeds while every Superset chart is
    queried in a loop, and none of those queries fails;
  - every run ran in a container of its own, which is gone afterwards;
  - the warehouse volume and the published snapshot hold the expected row counts, identical after
    the fill and after the backfill (idempotent loads);
  - Superset: dashboards listed, every chart's data equal to the same query run directly on the
    snapshot, writes and file access refused, a non-blank screenshot of every dashboard;
  - stdout of a finished run is still readable through the webserver (compute-log volume);
  - a run whose container is killed is marked failed by run monitoring;
  - no run's log says a step yielded an asset check result the run did not select.
Each phase prints its duration; on failure the logs of the services involved are printed. The
stack and its volumes are removed at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_env import render_env

from e2elib import expected
from e2elib.dagster import (
    Dagster,
    not_selected_warnings,
    partitions_by_assets,
    run_failure_messages,
    tags_of,
    unfilled_assets,
)
from e2elib.inspect_image import DEFINITIONS_SCRIPT, WAREHOUSE_SCRIPT, run_in_service
from e2elib.stack import (
    REPO_ROOT,
    EventRecorder,
    PhaseFailure,
    Stack,
    container_lifecycles,
    docker,
    free_port,
    new_project_name,
    remove_stale_projects,
    wait_until,
)

sys.path.insert(0, str(REPO_ROOT / "superset" / "tests" / "e2e"))
import superset_checks

ARTIFACTS = REPO_ROOT / "ci" / "artifacts"


@dataclass
class Context:
    args: argparse.Namespace
    stack: Stack
    env_file: Path
    env: dict[str, str]
    events: EventRecorder
    api: Dagster
    user_code_image: str
    charts: superset_checks.ChartLoop | None = None
    reports: dict = field(default_factory=dict)

    @property
    def months(self) -> list[str]:
        return [f"{m}-01" for m in month_range(self.args.start_month, self.args.end_month)]


def month_range(start: str, end: str) -> list[str]:
    year, month = (int(x) for x in start.split("-"))
    months = []
    while f"{year:04d}-{month:02d}" <= end:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def days_in(months: list[str]) -> int:
    return sum(calendar.monthrange(int(m[:4]), int(m[5:7]))[1] for m in months)


def git_revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        rev = git("rev-parse", "--short=12", "HEAD")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "dev"
    return f"{rev}-dirty" if git("status", "--porcelain", "--untracked-files=no") else rev


def e2e_env(args: argparse.Namespace, example: str) -> dict[str, str]:
    """Overrides for the throwaway env file: sample data, two months, the tag, free host ports."""
    overrides = {
        "TAXI_DATA_SOURCE": "sample",
        "TAXI_SAMPLE_TRIPS_PER_MONTH": str(args.trips_per_month),
        "TAXI_START_MONTH": args.start_month,
        "TAXI_END_MONTH": args.end_month,
        "TAXI_IMAGE_TAG": args.tag,
    }
    for line in example.splitlines():
        key = line.split("=", 1)[0].strip()
        if key.endswith("_PORT") and "=" in line:
            overrides[key] = str(free_port())  # host ports: never the ones a user's stack holds
        elif key.endswith("_BIND") and "=" in line:
            overrides[key] = "127.0.0.1"
    for key in ("PYTHON_BASE_IMAGE", "POSTGRES_IMAGE"):
        if os.environ.get(key):
            overrides[key] = os.environ[key]
    return overrides


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines())
    return {
        p[0].strip(): p[1].strip()
        for p in pairs
        if len(p) == 2 and not p[0].lstrip().startswith("#")
    }


class PhaseTimer:
    def __init__(self, clock=time.monotonic):
        self.clock, self.results = clock, []

    @contextmanager
    def phase(self, name: str):
        print(f"\n=== {name} ===", flush=True)
        start, status = self.clock(), "failed"
        try:
            yield
            status = "ok"
        finally:
            elapsed = self.clock() - start
            self.results.append((name, elapsed, status))
            print(f"=== {name}: {status} in {elapsed:.1f}s ===", flush=True)

    def table(self) -> str:
        width = max([len(name) for name, _, _ in self.results] + [5])
        lines = [f"{'phase'.ljust(width)}  seconds  status"]
        lines += [f"{n.ljust(width)}  {s:7.1f}  {st}" for n, s, st in self.results]
        total = sum(elapsed for _, elapsed, _ in self.results)
        return "\n".join([*lines, f"{'total'.ljust(width)}  {total:7.1f}"])


# --- phases --------------------------------------------------------------------------------------


def phase_build(ctx: Context) -> None:
    if ctx.args.skip_build:
        print(f"  skipped (--skip-build): using tag {ctx.args.tag}")
        return
    result = subprocess.run([str(REPO_ROOT / "ci" / "build-images.sh"), "--tag", ctx.args.tag])
    if result.returncode != 0:
        raise PhaseFailure(f"ci/build-images.sh failed ({result.returncode})")


def phase_up(ctx: Context) -> None:
    ctx.events.start()
    start = time.monotonic()
    ctx.stack.up(timeout=ctx.args.healthy_timeout)
    ctx.reports["healthy_after_seconds"] = round(time.monotonic() - start, 1)
    port = ctx.env["DAGSTER_WEBSERVER_PORT"]
    print(
        f"  every service healthy after {ctx.reports['healthy_after_seconds']}s (webserver :{port})"
    )


def phase_definitions(ctx: Context) -> None:
    locations = ctx.api.locations()
    if list(locations) != ["taxi_pipeline"]:
        raise PhaseFailure(
            f"expected the one code location taxi_pipeline, got {list(locations)}", ["webserver"]
        )
    location = locations["taxi_pipeline"]
    if location.error or location.load_status != "LOADED":
        raise PhaseFailure(
            f"code location not loaded ({location.load_status}):\n{location.error}", ["user_code"]
        )
    declared = run_in_service(ctx.stack, DEFINITIONS_SCRIPT)
    served = {
        "assets": set(location.assets),
        "checks": location.check_keys,
        "jobs": location.jobs,
        "schedules": set(location.schedules),
        "sensors": set(location.sensors),
    }
    problems = []
    for kind, names in served.items():
        if names != set(declared[kind]):
            problems.append(
                f"{kind}: served but not declared {sorted(names - set(declared[kind]))},"
                f" declared but not served {sorted(set(declared[kind]) - names)}"
            )
    for kind, wanted in (
        ("assets", expected.ASSETS),
        ("jobs", expected.JOBS),
        ("schedules", expected.SCHEDULES),
        ("sensors", expected.SENSORS),
    ):
        if not wanted <= served[kind]:
            problems.append(f"{kind} missing: {sorted(wanted - served[kind])}")
    for model in sorted(expected.DBT_MODELS):
        if model in location.assets and not location.assets[model].checks:
            problems.append(f"dbt model {model} has no asset checks (dbt tests)")
    for key in sorted(expected.WAREHOUSE_ASSETS & set(location.assets)):
        if expected.WAREHOUSE_POOL not in location.assets[key].pools:
            problems.append(
                f"{key} is not in pool {expected.WAREHOUSE_POOL} "
                f"(pools: {location.assets[key].pools})"
            )
    monthly = location.assets.get("taxi_trips")
    if monthly and monthly.partition_keys != ctx.months:
        problems.append(f"taxi_trips partitions {monthly.partition_keys} != {ctx.months}")

    instance = ctx.api.instance()
    if instance["runLauncher"]["name"] != "DockerRunLauncher":
        problems.append(f"run launcher is {instance['runLauncher']['name']}")
    pools = instance["poolConfig"]
    if pools["poolGranularity"] != "op" or pools["defaultPoolLimit"] != 1:
        problems.append(f"pool config {pools}, expected op granularity and default limit 1")
    unhealthy = [
        d["daemonType"]
        for d in instance["daemonHealth"]["allDaemonStatuses"]
        if d["required"] and not d["healthy"]
    ]
    if unhealthy:
        problems.append(f"unhealthy daemons: {unhealthy}")
    if problems:
        raise PhaseFailure("definitions:\n  " + "\n  ".join(problems), ["user_code", "webserver"])
    print(
        f"  {len(served['assets'])} assets, {len(served['checks'])} checks, "
        f"{len(served['jobs'])} jobs, {len(served['schedules'])} schedules, "
        f"{len(served['sensors'])} sensors; run launcher {instance['runLauncher']['name']}, "
        f"max {instance['runQueueConfig']['maxConcurrentRuns']} runs"
    )
    ctx.reports["location"] = location


def fail_on_failed_runs(ctx: Context, runs: list[dict], what: str) -> None:
    failed = [run for run in runs if run["status"] in ("FAILURE", "CANCELED")]
    if not failed:
        return
    details = []
    for run in failed[:5]:
        messages = run_failure_messages(ctx.api.run_events(run["runId"]))
        details.append(
            f"run {run['runId']} ({run['jobName']}, {tags_of(run).get('dagster/partition', '-')}):"
            f" {run['status']}\n    " + "\n    ".join(m[:1500] for m in messages[:5])
        )
    raise PhaseFailure(
        f"{what}: {len(failed)} run(s) failed\n" + "\n".join(details), ["daemon", "user_code"]
    )


def phase_autofill(ctx: Context) -> None:
    """No clicks: the daemon's automation must materialize every partition of the range."""
    required = set(ctx.reports["location"].assets) - expected.ON_REQUEST_ASSETS
    start, last = time.monotonic(), [None]

    def filled() -> bool:
        missing = unfilled_assets(ctx.api.asset_nodes(), required)
        fail_on_failed_runs(ctx, ctx.api.runs(statuses=["FAILURE", "CANCELED"]), "automatic fill")
        if missing and time.monotonic() - start > ctx.args.first_run_timeout and not ctx.api.runs():
            raise PhaseFailure(
                f"the daemon launched no run in {ctx.args.first_run_timeout:.0f}s although "
                f"{sorted(missing)} are missing: the automation conditions and schedules requested "
                f"nothing (see the automation_sensor ticks in the UI)",
                ["daemon"],
            )
        if missing != last[0]:
            print(f"  {time.monotonic() - start:5.0f}s missing: {missing or 'nothing'}", flush=True)
            last[0] = missing
        return not missing

    wait_until(filled, ctx.args.fill_timeout, "range fill", ["daemon", "user_code"])
    ctx.api.wait_until_idle(timeout=ctx.args.fill_timeout)
    runs = ctx.api.runs()
    fail_on_failed_runs(ctx, runs, "automatic fill")
    ctx.reports["autofill_seconds"] = time.monotonic() - start
    ctx.reports["autofill_runs"] = len(runs)
    print(f"  filled by {len(runs)} runs in {ctx.reports['autofill_seconds']:.0f}s")
    ctx.reports["counts_after_fill"] = warehouse_report(ctx)


def phase_pause_automation(ctx: Context) -> None:
    """Stop sensors and schedules so that the backfill below is the only activity."""
    for name in ctx.api.stop_instigators(ctx.api.locations()["taxi_pipeline"]):
        print(f"  stopped {name}")


def phase_backfill(ctx: Context) -> None:
    assets = ctx.reports["location"].assets
    selection = partitions_by_assets(assets, exclude=expected.ON_REQUEST_ASSETS)
    start = time.monotonic()
    backfill_id = ctx.api.launch_backfill(selection, title="e2e: whole pipeline, two months")
    print(f"  launched backfill {backfill_id} over {len(selection)} assets")
    backfill = ctx.api.wait_for_backfill(backfill_id, timeout=ctx.args.backfill_timeout)
    fail_on_failed_runs(ctx, backfill["runs"], f"backfill {backfill_id}")
    if backfill["status"] != "COMPLETED_SUCCESS" or not backfill["runs"]:
        raise PhaseFailure(
            f"backfill {backfill_id} ended {backfill['status']} with "
            f"{len(backfill['runs'])} runs: {backfill.get('error')}",
            ["daemon"],
        )
    ctx.api.wait_until_idle(timeout=300)
    ctx.reports["backfill_seconds"] = time.monotonic() - start
    ctx.reports["backfill_runs"] = len(backfill["runs"])
    print(f"  {len(backfill['runs'])} runs succeeded in {ctx.reports['backfill_seconds']:.0f}s")


def phase_run_containers(ctx: Context) -> None:
    """Every run had a container of its own (DockerRunLauncher), and none of them is left."""
    runs = ctx.api.runs()
    lives = container_lifecycles(ctx.events.events())
    problems = []
    seen: dict[str, str] = {}
    for run in runs:
        container_id = tags_of(run).get("docker/container_id")
        if not container_id:
            problems.append(f"run {run['runId']} has no docker/container_id tag")
            continue
        if container_id in seen:
            problems.append(f"runs {seen[container_id]} and {run['runId']} share a container")
        seen[container_id] = run["runId"]
        life = lives.get(container_id)
        if life is None:
            problems.append(f"no engine events for the container of run {run['runId']}")
            continue
        if life.run_id != run["runId"]:
            problems.append(f"container {container_id[:12]} is labelled run {life.run_id}")
        for action in ("create", "start", "die", "destroy"):
            if action not in life.actions:
                problems.append(
                    f"container {container_id[:12]} of run {run['runId']}: no "
                    f"'{action}' event (saw {life.actions})"
                )
        if docker("container", "inspect", container_id, check=False).returncode == 0:
            problems.append(f"container {container_id[:12]} of run {run['runId']} still exists")
    leftovers = ctx.stack.run_containers()
    if leftovers:
        problems.append(f"run containers left behind: {leftovers}")
    if problems:
        raise PhaseFailure("run containers:\n  " + "\n  ".join(problems[:20]), ["daemon"])
    print(
        f"  {len(runs)} runs, {len(seen)} distinct containers, all created, started, exited "
        f"and removed"
    )


def warehouse_report(ctx: Context) -> dict:
    return run_in_service(ctx.stack, WAREHOUSE_SCRIPT)


def phase_warehouse(ctx: Context) -> None:
    report = warehouse_report(ctx)
    ctx.reports["counts_after_backfill"] = report
    print("  " + json.dumps({k: v for k, v in report.items() if "tables" not in k}))
    problems = []
    months = report["trips_by_month"]
    if sorted(months) != ctx.months:
        problems.append(f"months loaded {sorted(months)} != {ctx.months}")
    for month, rows in months.items():
        if not 0 < rows <= ctx.args.trips_per_month:
            problems.append(f"{month}: {rows} rows, expected 1..{ctx.args.trips_per_month}")
    if report["zones"] != expected.ZONES:
        problems.append(f"{report['zones']} zones, expected {expected.ZONES}")
    if report["stg_trips"] <= 0:
        problems.append("stg_trips is empty")
    if report["location_metrics_trips"] != report["stg_trips"]:
        problems.append(
            f"location_metrics sums to {report['location_metrics_trips']} trips, "
            f"stg_trips has {report['stg_trips']}"
        )
    if report["daily_metrics_days"] != days_in(ctx.months):
        problems.append(
            f"daily_metrics has {report['daily_metrics_days']} days, expected {days_in(ctx.months)}"
        )
    if report["daily_metrics_trips"] != report["stg_trips"]:
        problems.append(
            f"daily_metrics sums to {report['daily_metrics_trips']} trips, "
            f"stg_trips has {report['stg_trips']}"
        )
    published = report["published_tables"]
    if not published:
        problems.append("no published snapshot (TAXI_PUBLISHED_DATABASE)")
    else:
        for table in ("location_metrics", "daily_metrics"):
            ours = report["warehouse_tables"].get(f"main.{table}")
            theirs = [count for name, count in published.items() if name.endswith(f".{table}")]
            if theirs != [ours]:
                problems.append(f"published {table}: {theirs}, warehouse: {ours}")
    for name in ("airport_trips.png", "trips_by_week.csv"):
        if not report["outputs"].get(name):
            problems.append(f"output {name} missing or empty: {report['outputs']}")
    before = ctx.reports.get("counts_after_fill")
    if before:
        for key in (
            "trips_by_month",
            "zones",
            "stg_trips",
            "location_metrics_trips",
            "daily_metrics_days",
            "daily_metrics_trips",
        ):
            if before[key] != report[key]:
                problems.append(
                    f"not idempotent: {key} was {before[key]} after the fill, "
                    f"{report[key]} after the backfill"
                )
    if problems:
        raise PhaseFailure("warehouse:\n  " + "\n  ".join(problems), ["user_code"])


def phase_compute_logs(ctx: Context) -> None:
    """A step's stdout/stderr stays readable in the UI after its container is gone."""
    for run in ctx.api.runs(statuses=["SUCCESS"]):
        for event in ctx.api.run_events(run["runId"]):
            if event.get("__typename") == "LogsCapturedEvent":
                logs = ctx.api.captured_logs(run["runId"], event["fileKey"])
                text = (logs.get("stdout") or "") + (logs.get("stderr") or "")
                if not text.strip():
                    raise PhaseFailure(
                        f"captured logs of run {run['runId']} are empty", ["webserver"]
                    )
                print(
                    f"  run {run['runId'][:8]} ({run['jobName']}): {len(text)} characters "
                    f"of captured logs for {event['stepKeys']}"
                )
                return
    raise PhaseFailure("no run with captured logs found", ["webserver"])


def phase_run_monitoring(ctx: Context) -> None:
    """Kill a run's container: run monitoring must mark the run failed (not leave it STARTED)."""
    # A dbt model: the longest single step with nothing upstream to wait for (adapter set-up and
    # a dbt process, several seconds). Since runs execute in one process, a file step can go
    # from STARTED to SUCCESS between two polls, leaving nothing to kill.
    run_id = ctx.api.submit_job_execution(
        "__ASSET_JOB",
        "taxi_pipeline",
        "__repository__",
        asset_selection=["stg_zones"],
        tags={"e2e": "killed"},
    )
    run = ctx.api.wait_for_run(run_id, {"STARTED", "SUCCESS", "FAILURE"}, timeout=300, poll=0.5)
    container_id = tags_of(run).get("docker/container_id")
    if run["status"] != "STARTED" or not container_id:
        raise PhaseFailure(f"run {run_id} is {run['status']} before it could be killed", ["daemon"])
    docker("kill", container_id, check=False)
    killed = time.monotonic()
    timeout = ctx.args.monitoring_timeout
    run = ctx.api.wait_for_run(run_id, {"FAILURE", "SUCCESS", "CANCELED"}, timeout=timeout)
    if run["status"] != "FAILURE":
        raise PhaseFailure(f"killed run {run_id} ended {run['status']}", ["daemon"])
    ctx.reports["monitoring_failed_after_seconds"] = time.monotonic() - killed
    print(
        f"  killed run marked FAILURE {ctx.reports['monitoring_failed_after_seconds']:.0f}s "
        f"after its container died"
    )


def phase_no_unselected_check_results(ctx: Context) -> None:
    """Every step yields only the asset check results its run selected: Dagster lets others
    through with a warning ("... not selected. Letting it through"), read here from every run's
    event log."""
    runs = ctx.api.runs()
    offenders = []
    for run in runs:
        for message in not_selected_warnings(ctx.api.run_events(run["runId"])):
            offenders.append(f"run {run['runId']} ({run['jobName']}): {message}")
    if offenders:
        raise PhaseFailure(
            f"{len(offenders)} 'not selected' warning(s) in the logs of "
            f"{len({o.split()[1] for o in offenders})} of {len(runs)} runs: a step yields check "
            "results its run did not select (yield only those in "
            "context.selected_asset_check_keys):\n  " + "\n  ".join(offenders[:30]),
            ["user_code"],
        )
    print(f"  {len(runs)} runs, none logged a 'not selected' asset check result")


# --- Superset (superset/tests/e2e/superset_checks.py, in-process) --------------------------------


def superset_snapshot(container: str) -> str:
    """The snapshot's path in the superset container, as docker-compose.yml gives it."""
    return docker("exec", container, "printenv", "SUPERSET_DUCKDB_PATH").stdout.strip()


def superset_check(ctx: Context, check: str) -> dict:
    """One check of superset_checks on the stack's Superset; its report in ci/artifacts/superset."""
    container = ctx.stack.compose("ps", "-q", "superset").stdout.strip()
    os.environ["SUPERSET_ADMIN_PASSWORD"] = ctx.env["SUPERSET_ADMIN_PASSWORD"]  # read there
    args = argparse.Namespace(
        url=f"http://127.0.0.1:{ctx.env['SUPERSET_PORT']}",
        user=ctx.env.get("SUPERSET_ADMIN_USERNAME", "admin"),
        bundle=superset_checks.BUNDLE_DIR,
        duckdb=None,
        duckdb_container=container,
        container_duckdb_path=superset_snapshot(container),
        out=ARTIFACTS / "superset" / "screenshots",
        page_timeout=90,
    )
    try:
        report = getattr(superset_checks, check)(args)
    except Exception as exc:
        report = {"failures": [f"{type(exc).__name__}: {exc}"]}
    (ARTIFACTS / "superset").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "superset" / f"{check}.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def phase_superset_load_start(ctx: Context) -> None:
    """Every chart's data queried in a loop from now on (the backfill that follows writes)."""
    container = ctx.stack.compose("ps", "-q", "superset").stdout.strip()
    snapshot = superset_snapshot(container)
    if docker("exec", container, "test", "-s", snapshot, check=False).returncode:
        raise PhaseFailure(
            f"no published snapshot {snapshot} in the superset container after the fill",
            ["daemon", "user_code", "superset"],
        )
    url = f"http://127.0.0.1:{ctx.env['SUPERSET_PORT']}"
    user = ctx.env.get("SUPERSET_ADMIN_USERNAME", "admin")
    ctx.charts = superset_checks.ChartLoop(url, user, ctx.env["SUPERSET_ADMIN_PASSWORD"])
    ctx.charts.start()
    print(f"  snapshot present; querying the data of {len(ctx.charts.charts)} charts in a loop")


def phase_superset_checks(ctx: Context) -> None:
    summary: dict = {"healthy_after_seconds": ctx.reports.get("healthy_after_seconds")}
    ctx.reports["superset"] = summary
    problems: list[str] = []
    if ctx.charts:  # 1. the chart queries made while the backfill wrote the warehouse
        ctx.charts.stop()
        load = ctx.charts.stats()
        (ARTIFACTS / "superset").mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "superset" / "load.json").write_text(json.dumps(load, indent=2))
        summary["chart_queries_during_pipeline"] = load["requests"]
        summary["chart_query_errors_during_pipeline"] = load["errors"]
        summary["chart_query_latency_ms"] = load.get("latency_ms")
        print(
            f"  chart queries while the backfill wrote the warehouse: {load['requests']} "
            f"made, {load['errors']} failed (latency {load.get('latency_ms')})"
        )
        for sample in load["error_samples"][:5]:
            print(f"    {sample}")
        problems += load["failures"]
    else:
        print("  (no chart-query load was running: phase_superset_load_start was skipped)")

    # 2. API: health, login, dashboards, chart data == direct queries, security probes
    verify = superset_check(ctx, "verify")
    charts, probes = verify.get("charts", []), verify.get("security_probes", [])
    summary["charts_compared"] = len(charts)
    summary["dashboards"] = [d.get("title") for d in verify.get("dashboards", [])]
    print(
        f"  /health {verify.get('health')}; dashboards {summary['dashboards']}; "
        f"{sum(1 for c in charts if c.get('equal'))}/{len(charts)} charts equal to the direct "
        f"query; {sum(1 for p in probes if p.get('refused'))}/{len(probes)} write/file probes "
        "refused"
    )
    problems += [f"verify: {f}" for f in verify["failures"]]

    # 3. a headless Chromium screenshot of every dashboard
    shots = superset_check(ctx, "screenshots")
    summary["screenshots"] = [d["screenshot"] for d in shots.get("dashboards", [])]
    for d in shots.get("dashboards", []):
        print(
            f"  screenshot {d['screenshot']}: {len(d['charts'])} charts, "
            f"{d['image']['distinctColours']} colours, ok={d['ok']}"
        )
    problems += [f"screenshots: {f}" for f in shots["failures"]]
    if problems:
        raise PhaseFailure(
            "superset:\n  " + "\n  ".join(str(p)[:1500] for p in problems),
            ["superset", "superset-db-init"],
        )


PHASES = [
    ("build images", phase_build),
    ("compose up -> healthy", phase_up),
    ("definitions via GraphQL", phase_definitions),
    ("automatic fill (no clicks)", phase_autofill),
    ("pause automation", phase_pause_automation),
    ("superset: chart queries start", phase_superset_load_start),
    ("backfill two months", phase_backfill),
    ("run containers", phase_run_containers),
    ("warehouse row counts", phase_warehouse),
    # Superset's checks need the published snapshot checked above.
    ("superset: queries during backfill, API, screenshots", phase_superset_checks),
    ("compute logs after removal", phase_compute_logs),
    ("run monitoring", phase_run_monitoring),
    ("no 'not selected' check results in run logs", phase_no_unselected_check_results),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="End-to-end check of the container stack.")
    parser.add_argument("--tag", default=None, help="image tag (default: the git revision)")
    parser.add_argument("--skip-build", action="store_true", help="use already built images")
    parser.add_argument("--keep", action="store_true", help="leave the stack running at the end")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="run only these phases (by function name, e.g. phase_backfill); "
        "build and up always run",
    )
    parser.add_argument("--start-month", default="2023-01")
    parser.add_argument("--end-month", default="2023-02")
    parser.add_argument("--trips-per-month", type=int, default=5000)
    parser.add_argument("--healthy-timeout", type=float, default=300)
    parser.add_argument("--fill-timeout", type=float, default=1200)
    parser.add_argument(
        "--first-run-timeout",
        type=float,
        default=240,
        help="fail the fill early when no run at all was launched by then",
    )
    parser.add_argument("--backfill-timeout", type=float, default=1200)
    parser.add_argument("--monitoring-timeout", type=float, default=240)
    args = parser.parse_args(argv)
    args.tag = args.tag or git_revision()
    return args


def dump_logs(stack: Stack, services: tuple[str, ...]) -> None:
    print("\n--- service status ---\n" + stack.compose("ps", "--all", check=False).stdout)
    print(f"\n--- logs of {', '.join(services) or 'every service'} (last 300 lines each) ---")
    print(stack.logs(services, tail=300))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "e2e-failure.log").write_text(stack.logs((), tail=5000))


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def throwaway_env(args: argparse.Namespace, workdir: Path, name: str) -> Path:
    """The stack's env file from .env.example: fresh credentials, e2e_env's overrides."""
    env_file = workdir / name
    example = (REPO_ROOT / ".env.example").read_text()
    env_file.write_text(render_env(example, e2e_env(args, example))[0])
    env_file.chmod(0o600)
    return env_file


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # a CI cancellation (SIGTERM) still takes the stack down in the `finally` below
    signal.signal(signal.SIGTERM, _interrupted)
    for name in remove_stale_projects():
        print(f"removed stale end-to-end stack {name}")
    timer = PhaseTimer()
    workdir = Path(tempfile.mkdtemp(prefix="taxi-e2e-"))
    env_file = throwaway_env(args, workdir, "e2e.env")
    env = read_env_file(env_file)
    project = new_project_name()
    stack = Stack.create(project, env_file)
    ctx = Context(
        args,
        stack,
        env_file,
        env,
        EventRecorder(project, workdir / "events.jsonl"),
        Dagster(int(env["DAGSTER_WEBSERVER_PORT"])),
        f"{env['TAXI_USER_CODE_IMAGE']}:{args.tag}",
    )
    print(f"project {project}, images tagged {args.tag}, env file {env_file}")
    status = 0
    try:
        for name, phase in PHASES:
            always = phase in (phase_build, phase_up)
            if args.only is None or phase.__name__ in args.only or always:
                with timer.phase(name):
                    phase(ctx)
    except PhaseFailure as failure:
        status = 1
        print(f"\nFAILED: {failure}", file=sys.stderr)
        dump_logs(stack, failure.services)
    except (Exception, KeyboardInterrupt) as exc:
        status = 1
        traceback.print_exc()
        print(f"\nFAILED: {exc!r}", file=sys.stderr)
        dump_logs(stack, ())
    finally:
        if ctx.charts:
            ctx.charts.stop()
        ctx.events.stop()
        if args.keep:
            print(
                f"\n--keep: stack {project} left running (env file {env_file}); remove it with\n"
                f"  docker compose -p {project} --env-file {env_file} down -v"
            )
        else:
            with timer.phase("compose down -v"):
                stack.down()
            shutil.rmtree(workdir, ignore_errors=True)
        print("\n" + timer.table())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        summary = {
            "project": project,
            "tag": args.tag,
            "status": "ok" if status == 0 else "failed",
            "phases": [
                {"phase": n, "seconds": round(s, 1), "status": st} for n, s, st in timer.results
            ],
            **{k: v for k, v in ctx.reports.items() if k != "location"},
        }
        (ARTIFACTS / "e2e-summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print("\nend-to-end check " + ("passed" if status == 0 else "FAILED"))
    return status


if __name__ == "__main__":
    sys.exit(main())
