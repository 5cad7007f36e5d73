#!/usr/bin/env python3
"""End-to-end check of the container stack, run by ci/test.sh (`uv run --project ci`).

    uv run --project ci ci/e2e.py                 # build the images, then every phase below
    uv run --project ci ci/e2e.py --skip-build --tag dev --keep   # reuse images, leave the stack up

A throwaway compose project (own name, own host ports, own volumes, a generated env file; never
the user's .env) with the offline `sample` source over two months, checked through the
webserver's API, Superset's API, a browser and the engine, one phase after the other (PHASES; the
README lists what they check). Each phase prints its duration, also written with the figures to
ci/artifacts/e2e-summary.json; on failure the logs of the services involved are printed. The
stack and its volumes are removed at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_env import render_env

from e2elib import alerts, dagster, expected, faults, stack
from e2elib.in_user_code import DEFINITIONS_SCRIPT, WAREHOUSE_SCRIPT, run_in_service
from e2elib.stack import REPO_ROOT, PhaseFailure, docker, fail_if

sys.path.insert(0, str(REPO_ROOT / "superset" / "tests" / "e2e"))
import superset_checks

sys.path.insert(0, str(REPO_ROOT / "docker"))
from daemon_drain import REASON as DRAIN_REASON  # what a run stopped by `compose down` logs

ARTIFACTS = REPO_ROOT / "ci" / "artifacts"
MONTHS = ["2023-01-01", "2023-02-01"]  # the monthly partitions of the range
DAYS = 31 + 28  # daily partitions in MONTHS
TRIPS_PER_MONTH = 5000
# seconds
HEALTHY_TIMEOUT, FILL_TIMEOUT, BACKFILL_TIMEOUT, MONITORING_TIMEOUT = 300, 1200, 1200, 240
FIRST_RUN_TIMEOUT = 240  # fail the fill early when the daemon launched no run at all by then
# the alert sensor ticks every 30 s: a notification within 3 ticks, then 2 quiet ticks
ALERT_TIMEOUT, ALERT_QUIET = 180, 65
FAILED = ["FAILURE", "CANCELED"]
PROGRESS_SENSOR = "fill_progress_sensor"  # taxi_pipeline.progress


class Context:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.env_file = throwaway_env(args, workdir, "e2e.env")
        self.env = read_env_file(self.env_file)
        self.project = stack.new_project_name()
        self.stack = stack.Stack.create(
            self.project, self.env_file, extra_files=(REPO_ROOT / alerts.COMPOSE_FILE,)
        )
        self.events = stack.EventRecorder(self.project, workdir / "events.jsonl")
        self.api = dagster.Dagster(int(self.env["DAGSTER_WEBSERVER_PORT"]))
        url = f"http://127.0.0.1:{self.env['SUPERSET_PORT']}"
        user, password = self.env["SUPERSET_ADMIN_USERNAME"], self.env["SUPERSET_ADMIN_PASSWORD"]
        self.superset = (url, user, password)  # superset_checks' arguments
        self.charts: superset_checks.ChartLoop | None = None
        self.location = None  # the code location as the webserver serves it
        self.reports: dict = {}
        self.failed_runs: dict[str, str] = {}  # runs the check made fail -> a phrase of their alert


def git_revision() -> str:
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return run.stdout.strip() if run.returncode == 0 else ""

    rev = git("rev-parse", "--short=12", "HEAD") or "dev"
    return f"{rev}-dirty" if git("status", "--porcelain", "--untracked-files=no") else rev


def e2e_env(args: argparse.Namespace, example: str) -> dict[str, str]:
    """Overrides for the throwaway env file: sample data, the range, the tag, free host ports."""
    overrides = {
        "TAXI_DATA_SOURCE": "sample",
        "TAXI_SAMPLE_TRIPS_PER_MONTH": str(args.trips_per_month),
        "TAXI_START_MONTH": args.start_month,
        "TAXI_END_MONTH": args.end_month,
        "TAXI_IMAGE_TAG": args.tag,
        # the receiver of ci/e2e-alerts.yml, on the stack's network
        "TAXI_ALERT_WEBHOOK_URL": alerts.WEBHOOK_URL,
    }
    assigned = (line for line in example.splitlines() if not line.lstrip().startswith("#"))
    for key in (line.split("=", 1)[0].strip() for line in assigned if "=" in line):
        if key.endswith("_PORT"):
            overrides[key] = str(stack.free_port())  # never the host ports a user's stack holds
        elif key.endswith("_BIND"):
            overrides[key] = "127.0.0.1"
    for key in ("PYTHON_BASE_IMAGE", "POSTGRES_IMAGE"):
        if os.environ.get(key):
            overrides[key] = os.environ[key]
    return overrides


def read_env_file(path: Path) -> dict[str, str]:
    lines = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in lines if not k.lstrip().startswith("#")}


def throwaway_env(args: argparse.Namespace, workdir: Path, name: str) -> Path:
    """The stack's env file from .env.example: fresh credentials, e2e_env's overrides."""
    env_file = workdir / name
    example = (REPO_ROOT / ".env.example").read_text()
    env_file.write_text(render_env(example, e2e_env(args, example))[0])
    env_file.chmod(0o600)
    return env_file


# --- phases --------------------------------------------------------------------------------------


def phase_build(ctx: Context) -> None:
    build = [REPO_ROOT / "ci" / "build-images.sh", "--tag", ctx.args.tag]
    if ctx.args.skip_build:
        print(f"  skipped (--skip-build): using tag {ctx.args.tag}")
    elif code := subprocess.run(build).returncode:
        raise PhaseFailure(f"ci/build-images.sh failed ({code})")


def phase_up(ctx: Context) -> None:
    ctx.events.start()
    start = time.monotonic()
    ctx.stack.up(timeout=HEALTHY_TIMEOUT)
    ctx.reports["healthy_after_seconds"] = round(time.monotonic() - start, 1)
    print(f"  every service healthy after {ctx.reports['healthy_after_seconds']}s")


def phase_definitions(ctx: Context) -> None:
    locations = ctx.api.locations()
    if list(locations) != ["taxi_pipeline"]:
        raise PhaseFailure(f"code locations {list(locations)}, expected taxi_pipeline alone")
    location = ctx.location = locations["taxi_pipeline"]
    if location.error or location.load_status != "LOADED":
        raise PhaseFailure(f"location {location.load_status}:\n{location.error}", ["user_code"])
    declared = run_in_service(ctx.stack, DEFINITIONS_SCRIPT)
    served = {
        "assets": set(location.assets),
        "checks": location.check_keys,
        "jobs": location.jobs,
        "schedules": set(location.schedules),
        "sensors": set(location.sensors),
    }
    problems = [
        f"{kind}: served but not declared {sorted(names - set(declared[kind]))},"
        f" declared but not served {sorted(set(declared[kind]) - names)}"
        for kind, names in served.items()
        if names != set(declared[kind])
    ]
    for kind in ("assets", "jobs", "schedules", "sensors"):
        if missing := getattr(expected, kind.upper()) - served[kind]:
            problems.append(f"{kind} missing: {sorted(missing)}")
    for key, node in sorted(location.assets.items()):
        if key in expected.DBT_MODELS and not node["checks"]:
            problems.append(f"dbt model {key} has no asset checks (dbt tests)")
        if key in expected.WAREHOUSE_ASSETS and expected.WAREHOUSE_POOL not in node["pools"]:
            problems.append(f"{key} not in pool {expected.WAREHOUSE_POOL} ({node['pools']})")
    if (trips := location.assets.get("taxi_trips")) and trips["partitionKeys"] != MONTHS:
        problems.append(f"taxi_trips partitions {trips['partitionKeys']}, expected {MONTHS}")
    instance = ctx.api.instance()
    if instance["runLauncher"]["name"] != "DockerRunLauncher":
        problems.append(f"run launcher is {instance['runLauncher']['name']}")
    if instance["poolConfig"] != {"poolGranularity": "op", "defaultPoolLimit": 1}:
        problems.append(f"pool config {instance['poolConfig']}, expected op granularity, limit 1")
    daemons = instance["daemonHealth"]["allDaemonStatuses"]
    if unhealthy := [d["daemonType"] for d in daemons if d["required"] and not d["healthy"]]:
        problems.append(f"unhealthy daemons: {unhealthy}")
    fail_if(problems, "definitions", ["user_code", "webserver"])
    counts = ", ".join(f"{len(names)} {kind}" for kind, names in served.items())
    print(f"  {counts}; max {instance['runQueueConfig']['maxConcurrentRuns']} runs at a time")


def fail_on_failed_runs(ctx, runs: list[dict], what: str) -> None:
    """PhaseFailure with the error messages of the first failed runs, if any run failed."""
    failed = [run for run in runs if run["status"] in FAILED]
    details = []
    for run in failed[:5]:
        messages = dagster.run_failure_messages(ctx.api.run_events(run["runId"]))
        partition = dagster.tags_of(run).get("dagster/partition", "-")
        details.append(f"run {run['runId']} ({run['jobName']}, {partition}): {run['status']}")
        details += [f"  {m[:1500]}" for m in messages[:5]]
    fail_if(details, f"{what}: {len(failed)} run(s) failed", ["daemon", "user_code"])


def phase_autofill(ctx: Context) -> None:
    """No clicks: the daemon's automation must materialize every partition of the range."""
    required = set(ctx.location.assets) - expected.NOT_FILLED
    start, last, seen = time.monotonic(), [None], [None]

    def filled() -> bool:
        missing = dagster.unfilled_assets(ctx.api.asset_nodes(), required)
        fail_on_failed_runs(ctx, ctx.api.runs(statuses=FAILED), "automatic fill")
        if missing and time.monotonic() - start > FIRST_RUN_TIMEOUT and not ctx.api.runs():
            raise PhaseFailure(
                f"the daemon launched no run in {FIRST_RUN_TIMEOUT}s although {sorted(missing)} "
                "are missing: the automation requested nothing (see the ticks of tlc_site_sensor, "
                "which must observe the months first, and of automation_sensor in the UI)",
                ["daemon"],
            )
        if missing != last[0]:
            print(f"  {time.monotonic() - start:5.0f}s missing: {missing or 'nothing'}", flush=True)
            last[0] = missing
        # what the user sees on the Automation page meanwhile (the e2e log keeps it, to compare
        # its time-left estimates with the real end of the fill)
        if (line := ctx.api.last_tick_message("taxi_pipeline", PROGRESS_SENSOR)) != seen[0]:
            print(f"  {time.monotonic() - start:5.0f}s {PROGRESS_SENSOR}: {line}", flush=True)
            seen[0] = line
        return not missing

    stack.wait_until(filled, FILL_TIMEOUT, "range fill", ["daemon", "user_code"])
    ctx.api.wait_until_idle(timeout=FILL_TIMEOUT)
    runs = ctx.api.runs()
    fail_on_failed_runs(ctx, runs, "automatic fill")
    ctx.reports |= {"autofill_seconds": round(time.monotonic() - start), "autofill_runs": len(runs)}
    print(f"  filled by {len(runs)} runs in {ctx.reports['autofill_seconds']}s")

    def progress_says_filled() -> bool:
        seen[0] = ctx.api.last_tick_message("taxi_pipeline", PROGRESS_SENSOR) or ""
        return seen[0].startswith("filled: the dashboards show data")

    # the sensor ticks every 15 s: its next tick must say so, with the Superset URL
    stack.wait_until(progress_says_filled, 90, f"{PROGRESS_SENSOR} saying filled", ["user_code"])
    line = ctx.reports["progress_when_filled"] = seen[0]
    if f"http://127.0.0.1:{ctx.env['SUPERSET_PORT']}" not in line:
        raise PhaseFailure(f"{PROGRESS_SENSOR} names no URL of this Superset: {line!r}")
    print(f"  {PROGRESS_SENSOR}: {line}")
    ctx.reports["counts_after_fill"] = run_in_service(ctx.stack, WAREHOUSE_SCRIPT)


def phase_pause_automation(ctx) -> None:
    """Stop sensors and schedules so that the backfill below is the only activity (the alert
    sensor goes on: the failures below must each produce one notification)."""
    location = ctx.api.locations()["taxi_pipeline"]
    for name in ctx.api.stop_instigators(location, keep={expected.ALERT_SENSOR}):
        print(f"  stopped {name}")


def superset_snapshot(ctx: Context) -> tuple[str, str]:
    """The superset container, and the snapshot path it serves (from its own environment)."""
    container = ctx.stack.service_container("superset")
    return container, docker("exec", container, "printenv", "SUPERSET_DUCKDB_PATH").stdout.strip()


def phase_superset_load_start(ctx: Context) -> None:
    """Every chart's data queried in a loop from now on (the backfill that follows writes)."""
    container, snapshot = superset_snapshot(ctx)
    if docker("exec", container, "test", "-s", snapshot, check=False).returncode:
        raise PhaseFailure(
            f"no published snapshot {snapshot} in the superset container after the fill",
            ["daemon", "user_code", "superset"],
        )
    ctx.charts = superset_checks.ChartLoop(*ctx.superset)
    ctx.charts.start()
    print(f"  snapshot present; querying the data of {len(ctx.charts.charts)} charts in a loop")


def phase_backfill(ctx: Context) -> None:
    selection = dagster.partitions_by_assets(ctx.location.assets, expected.NOT_FILLED)
    start = time.monotonic()
    backfill_id = ctx.api.launch_backfill(selection, title="e2e: whole pipeline, two months")
    print(f"  launched backfill {backfill_id} over {len(selection)} assets")
    backfill = ctx.api.wait_for_backfill(backfill_id, timeout=BACKFILL_TIMEOUT)
    fail_on_failed_runs(ctx, backfill["runs"], f"backfill {backfill_id}")
    if backfill["status"] != "COMPLETED_SUCCESS" or not backfill["runs"]:
        raise PhaseFailure(
            f"backfill {backfill_id} ended {backfill['status']} with {len(backfill['runs'])} "
            f"runs: {backfill.get('error')}",
            ["daemon"],
        )
    ctx.api.wait_until_idle(timeout=300)
    ctx.reports["backfill_seconds"] = round(time.monotonic() - start)
    ctx.reports["backfill_runs"] = len(backfill["runs"])
    print(f"  {len(backfill['runs'])} runs succeeded in {ctx.reports['backfill_seconds']}s")


def phase_run_containers(ctx: Context) -> None:
    """Every run had a container of its own (DockerRunLauncher), and none of them is left."""
    runs = ctx.api.runs()
    lives = stack.container_lifecycles(ctx.events.events())
    problems, seen = [], {}
    for run in runs:
        run_id, container = run["runId"], dagster.tags_of(run).get("docker/container_id")
        life = lives.get(container, {})
        if not container:
            problems.append(f"run {run_id} has no docker/container_id tag")
        elif container in seen:
            problems.append(f"runs {seen[container]} and {run_id} share a container")
        elif life.get("run_id") != run_id:
            problems.append(f"container {container[:12]} of run {run_id}: engine events {life}")
        elif missing := {"create", "start", "die", "destroy"} - set(life["actions"]):
            problems.append(f"container {container[:12]} of run {run_id}: no {sorted(missing)}")
        elif docker("container", "inspect", container, check=False).returncode == 0:
            problems.append(f"container {container[:12]} of run {run_id} still exists")
        seen[container or run_id] = run_id
    if leftovers := stack.run_containers(ctx.project):
        problems.append(f"run containers left behind: {leftovers}")
    fail_if(problems, "run containers", ["daemon"])
    print(f"  {len(runs)} runs, {len(seen)} containers, all created, started, exited and removed")


def phase_warehouse(ctx: Context) -> None:
    r = ctx.reports["counts_after_backfill"] = run_in_service(ctx.stack, WAREHOUSE_SCRIPT)
    print("  " + json.dumps({k: v for k, v in r.items() if "tables" not in k}))
    months, stg, published = r["trips_by_month"], r["stg_trips"], r["published_tables"] or {}
    in_range = [m for m, n in months.items() if 0 < n <= TRIPS_PER_MONTH]
    checks = [  # (what, found, expected)
        ("months loaded", sorted(months), MONTHS),
        (f"months of 1..{TRIPS_PER_MONTH} rows", sorted(in_range), MONTHS),
        ("zones", r["zones"], expected.ZONES),
        ("stg_trips not empty", stg > 0, True),
        ("trips in location_metrics", r["location_metrics_trips"], stg),
        ("days in daily_metrics", r["daily_metrics_days"], DAYS),
        ("trips in daily_metrics", r["daily_metrics_trips"], stg),
        ("a published snapshot (TAXI_PUBLISHED_DATABASE)", bool(published), True),
    ]
    for table in ("location_metrics", "daily_metrics"):
        theirs = [n for name, n in published.items() if name.endswith(f".{table}")]
        checks.append(
            (f"published {table} rows", theirs, [r["warehouse_tables"].get(f"main.{table}")])
        )
    for name in ("airport_trips.png", "trips_by_week.csv"):
        checks.append((f"output {name} not empty", bool(r["outputs"].get(name)), True))
    # idempotent loads: the backfill reloaded the range the fill had loaded
    for key, before in ctx.reports["counts_after_fill"].items():
        if "tables" not in key and key != "outputs":
            checks.append((f"{key} as after the fill", r[key], before))
    problems = [
        f"{what}: {found}, expected {wanted}" for what, found, wanted in checks if found != wanted
    ]
    fail_if(problems, "warehouse", ["user_code"])


def superset_report(name: str, check) -> dict:
    """A check of superset_checks; its report in ci/artifacts/superset/<name>.json."""
    try:
        report = check()
    except Exception as exc:
        report = {"failures": [f"{type(exc).__name__}: {exc}"]}
    (ARTIFACTS / "superset").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "superset" / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def phase_superset_checks(ctx: Context) -> None:
    """The chart queries made while the backfill wrote; the API checks; the screenshots."""
    ctx.charts.stop()
    load = superset_report("load", ctx.charts.stats)
    print(
        f"  chart queries while the backfill wrote the warehouse: {load['requests']} made, "
        f"{load['errors']} failed (latency {load.get('latency_ms')}) {load['error_samples'][:5]}"
    )
    container, snapshot = superset_snapshot(ctx)
    direct = superset_checks.direct_queries(snapshot, container)
    verify = superset_report("verify", lambda: superset_checks.verify(*ctx.superset, direct))
    charts, probes = verify.get("charts", []), verify.get("security_probes", [])
    equal = f"{sum(bool(c.get('equal')) for c in charts)}/{len(charts)} charts equal"
    refused = f"{sum(p['refused'] for p in probes)}/{len(probes)} write/file probes refused"
    titles = [d["title"] for d in verify.get("dashboards", [])]
    print(f"  /health {verify.get('health')}; dashboards {titles}")
    print(f"  {equal} to the direct query on the snapshot; {refused}")
    out = ARTIFACTS / "superset" / "screenshots"
    shots = superset_report("screenshots", lambda: superset_checks.screenshots(*ctx.superset, out))
    for d in shots.get("dashboards", []):
        print(f"  {d['screenshot']}: {len(d['charts'])} charts, {d['image']}, ok={d['ok']}")
    ctx.reports["superset"] = {
        "chart_queries_during_backfill": load["requests"],
        "chart_query_errors_during_backfill": load["errors"],
        "chart_query_latency_ms": load.get("latency_ms"),
        "charts_compared": len(charts),
        "screenshots": [d["screenshot"] for d in shots.get("dashboards", [])],
    }
    reports = {"chart queries during the backfill": load, "verify": verify, "screenshots": shots}
    problems = [f"{name}: {str(f)[:1500]}" for name, r in reports.items() for f in r["failures"]]
    fail_if(problems, "superset", ["superset", "superset-db-init"])


def phase_compute_logs(ctx: Context) -> None:
    """A step's stdout/stderr stays readable in the UI after its container is gone."""
    for run in ctx.api.runs(statuses=["SUCCESS"]):
        for event in ctx.api.run_events(run["runId"]):
            if event.get("__typename") == "LogsCapturedEvent":
                logs = ctx.api.captured_logs(run["runId"], event["fileKey"])
                text = (logs.get("stdout") or "") + (logs.get("stderr") or "")
                if not text.strip():
                    raise PhaseFailure(f"captured logs of run {run['runId']} are empty")
                print(f"  run {run['runId']}: {len(text)} characters for {event['stepKeys']}")
                return
    raise PhaseFailure("no run with captured logs found", ["webserver"])


def started_run(ctx: Context, assets: list[str], tag: str) -> tuple[str, str]:
    """A run of `assets` launched and seen STARTED in its container: (run id, container id)."""
    run_id = ctx.api.submit_job_execution(
        "__ASSET_JOB", "taxi_pipeline", "__repository__", asset_selection=assets, tags={"e2e": tag}
    )
    run = ctx.api.wait_for_run(run_id, {"STARTED", "SUCCESS", "FAILURE"}, timeout=300, poll=0.5)
    container = dagster.tags_of(run).get("docker/container_id")
    if run["status"] != "STARTED" or not container:
        raise PhaseFailure(f"run {run_id} is {run['status']} before the fault", ["daemon"])
    return run_id, container


def phase_run_monitoring(ctx: Context) -> None:
    """Kill a run's container: run monitoring must mark the run failed (not leave it STARTED)."""
    # A dbt model: the longest single step with nothing upstream to wait for (adapter set-up and
    # a dbt process, several seconds). Since runs execute in one process, a file step can go
    # from STARTED to SUCCESS between two polls, leaving nothing to kill.
    run_id, container = started_run(ctx, ["stg_zones"], "killed")
    docker("kill", container, check=False)
    killed = time.monotonic()
    run = ctx.api.wait_for_run(run_id, {"FAILURE", "SUCCESS", "CANCELED"}, MONITORING_TIMEOUT)
    if run["status"] != "FAILURE":
        raise PhaseFailure(f"killed run {run_id} ended {run['status']}", ["daemon"])
    ctx.reports["monitoring_failed_after_seconds"] = round(time.monotonic() - killed)
    ctx.failed_runs[run_id] = "Run failed: stg_zones"
    print(f"  killed run marked FAILURE {ctx.reports['monitoring_failed_after_seconds']}s later")


def phase_no_alerts_from_a_clean_fill(ctx: Context) -> None:
    """The fill and the backfill failed nothing, so nothing was sent (the receiver has been up
    since `up`, and the alert sensor ticked many times since)."""
    if sent := alerts.received(ctx.stack):
        raise PhaseFailure(
            f"{len(sent)} notification(s) after a clean fill and backfill: "
            + "; ".join(repr(n["body"].get("text", ""))[:300] for n in sent),
            ["user_code"],
        )
    line = ctx.api.last_tick_message("taxi_pipeline", expected.ALERT_SENSOR) or ""
    print(f"  no notification; {expected.ALERT_SENSOR}'s last tick: {line!r}")


def phase_forced_failure(ctx: Context) -> None:
    """A run that fails in its step (a request for a borough that does not exist)."""
    # alert_sensor sends the failures of one tick (30 s) as one message: the killed run's own
    # notification first, so that each failure gets its own, as the next phase checks
    earlier = list(ctx.failed_runs)
    stack.wait_until(
        lambda: all(alerts.per_run(alerts.received(ctx.stack), earlier).values()),
        ALERT_TIMEOUT,
        "the notification of the run failed before",
        ["user_code"],
    )
    config = {
        "filename": "e2e-atlantis.json",
        "borough": "Atlantis",
        "start_date": MONTHS[0],
        "end_date": MONTHS[0],
    }
    run_id = ctx.api.submit_job_execution(
        "adhoc_request_job",
        "taxi_pipeline",
        "__repository__",
        run_config={"ops": {"adhoc_request": {"config": config}}},
        tags={"e2e": "forced-failure"},
    )
    run = ctx.api.wait_for_run(run_id, {"FAILURE", "SUCCESS", "CANCELED"}, timeout=300)
    if run["status"] != "FAILURE":
        raise PhaseFailure(f"run {run_id} with an unknown borough ended {run['status']}")
    ctx.failed_runs[run_id] = "unknown borough 'Atlantis'"
    print(f"  run {run_id} failed as it should")


def phase_one_alert_per_failure(ctx: Context) -> None:
    """The killed run and the forced failure each produced exactly one notification, with the
    run's link; the time from each run's end to its notification is reported (goal < 60 s)."""
    expected_runs = ctx.failed_runs

    def all_arrived() -> list[dict] | None:
        sent = alerts.received(ctx.stack)
        found = alerts.per_run(sent, list(expected_runs))
        return sent if all(found.values()) else None

    stack.wait_until(
        all_arrived, ALERT_TIMEOUT, "a notification for each failed run", ["user_code"]
    )
    time.sleep(ALERT_QUIET)  # two more ticks of the alert sensor: no duplicate may follow
    sent = alerts.received(ctx.stack)
    fail_if(alerts.problems(sent, expected_runs), "notifications", ["user_code"])
    ends = {run["runId"]: run["endTime"] for run in ctx.api.runs(run_ids=list(expected_runs))}
    latency = {
        run_id: round(notes[0]["at"] - ends[run_id], 1)
        for run_id, notes in alerts.per_run(sent, list(expected_runs)).items()
    }
    ctx.reports["alert_latency_seconds"] = latency
    for run_id, seconds in latency.items():
        print(f"  run {run_id}: one notification, {seconds}s after the run ended")


def phase_postgres_restart(ctx: Context) -> None:
    """PostgreSQL restarts under the running stack: the webserver's next API calls, each touching
    another storage, must all answer the first time (its pooled connections died with the server:
    docker/webserver_pre_ping.py)."""
    run_id = ctx.api.runs(statuses=["SUCCESS"])[0]["runId"]  # the pools hold live connections
    seconds = faults.restart_healthy(ctx.stack, "postgres", HEALTHY_TIMEOUT)
    calls = {
        "logsForRun (event log storage)": lambda: ctx.api.run_events(run_id),
        "runsOrError (run storage)": ctx.api.runs,
        "instance daemonHealth (daemon heartbeats)": ctx.api.instance,
        "workspace with schedule and sensor states (schedule storage)": ctx.api.locations,
    }
    fail_if(
        faults.first_attempts(calls),
        "API calls right after the PostgreSQL restart failed (each was made once)",
        ["webserver", "postgres"],
    )
    ctx.reports["postgres_restart_seconds"] = round(seconds, 1)
    print(f"  restarted and healthy in {seconds:.1f}s; {len(calls)} API calls answered at once")


def instigator_states(location) -> dict[str, str]:
    return {name: s["status"] for name, s in {**location.schedules, **location.sensors}.items()}


def phase_down_with_run_in_flight(ctx: Context) -> None:
    """`docker compose down` while a run writes the warehouse, then `up`: down leaves nothing on
    the engine, the run has ended (CANCELED, or SUCCESS if it finished meanwhile) saying why, and
    runs, schedule states, the warehouse and the dashboards are as before."""
    states, runs = instigator_states(ctx.api.locations()["taxi_pipeline"]), len(ctx.api.runs())
    # a load into the warehouse, then a dbt model: a run that writes for several seconds
    run_id, container = started_run(ctx, ["taxi_zones", "stg_zones"], "compose-down")
    daemon_log = faults.follow_logs(ctx.stack.service_container("daemon"))
    start = time.monotonic()
    ctx.stack.compose("down", timeout=300)  # PhaseFailure if it does not exit 0
    ctx.reports["down_with_run_seconds"] = round(time.monotonic() - start, 1)
    print(
        f"  compose down exited 0 after {ctx.reports['down_with_run_seconds']}s; the daemon said:"
    )
    drained = daemon_log.communicate(timeout=60)[0].splitlines()
    print("\n".join(f"    {line}" for line in drained if "daemon-drain:" in line))
    fail_if(
        faults.leftovers(ctx.project, f"{ctx.project}_dagster"),
        "left on the engine after `docker compose down` with a run in flight",
    )
    lives = stack.container_lifecycles(ctx.events.events())
    print(f"  run container {container[:12]}: {lives.get(container, {}).get('actions')}")
    start = time.monotonic()
    ctx.stack.up(timeout=HEALTHY_TIMEOUT)
    ctx.reports["up_again_seconds"] = round(time.monotonic() - start, 1)
    ctx.api.wait_until_idle(timeout=300)  # nothing stuck
    run = ctx.api.runs(run_ids=[run_id])[0]
    messages = [e.get("message") or "" for e in ctx.api.run_events(run_id)]
    problems = []
    # CANCELED, or SUCCESS when the worker finished its last step within stop_timeout (seen when
    # the signal came during it); never FAILURE, never still in progress
    if run["status"] not in ("CANCELED", "SUCCESS") or DRAIN_REASON not in messages:
        problems.append(f"run {run_id} is {run['status']}; its log says {messages[-3:]}")
    if len(ctx.api.runs()) != runs + 1:
        problems.append(f"{len(ctx.api.runs())} runs after up, expected {runs} + 1")
    after = instigator_states(ctx.api.locations()["taxi_pipeline"])
    problems += [f"state {p}" for p in faults.changed(states, after)]
    counts = run_in_service(ctx.stack, WAREHOUSE_SCRIPT)
    problems += [
        f"warehouse {p}" for p in faults.changed(ctx.reports["counts_after_backfill"], counts)
    ]
    container, snapshot = superset_snapshot(ctx)
    verify = superset_checks.verify(
        *ctx.superset, superset_checks.direct_queries(snapshot, container)
    )
    problems += [f"superset: {str(f)[:1500]}" for f in verify["failures"]]
    fail_if(problems, "after down and up", ["daemon", "webserver", "superset"])
    charts = sum(bool(c.get("equal")) for c in verify.get("charts", []))
    print(
        f"  up again in {ctx.reports['up_again_seconds']}s: run {run['status']}, its log giving "
        "the drain's reason; "
        f"{runs + 1} runs, {len(after)} schedule/sensor states, warehouse counts and {charts} "
        "charts as before"
    )


def phase_no_unselected_check_results(ctx: Context) -> None:
    """Every step yields only the asset check results its run selected: Dagster lets others
    through with a warning ("... not selected. Letting it through"), read here from every run's
    event log."""
    runs = ctx.api.runs()
    offenders = {
        run["runId"]: dagster.not_selected_warnings(ctx.api.run_events(run["runId"]))
        for run in runs
    }
    problems = [f"run {run_id}: {m}" for run_id, messages in offenders.items() for m in messages]
    fail_if(
        problems,
        f"'not selected' warnings in the logs of {sum(map(bool, offenders.values()))} of "
        f"{len(runs)} runs: a step yields check results its run did not select (yield only those "
        "in context.selected_asset_check_keys)",
        ["user_code"],
    )
    print(f"  {len(runs)} runs, none logged a 'not selected' asset check result")


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
    ("no notification from a clean fill and backfill", phase_no_alerts_from_a_clean_fill),
    ("run monitoring", phase_run_monitoring),
    ("a run that fails", phase_forced_failure),
    ("one notification per failed run", phase_one_alert_per_failure),
    ("postgres restart: API calls answer the first time", phase_postgres_restart),
    ("compose down with a run in flight, then up", phase_down_with_run_in_flight),
    ("no 'not selected' check results in run logs", phase_no_unselected_check_results),
]


def run_phase(timings: list[dict], name: str, phase, *args) -> None:
    """phase(*args), its duration and outcome appended to `timings`."""
    print(f"\n=== {name} ===", flush=True)
    start, status = time.monotonic(), "failed"
    try:
        phase(*args)
        status = "ok"
    finally:
        seconds = round(time.monotonic() - start, 1)
        timings.append({"phase": name, "seconds": seconds, "status": status})
        print(f"=== {name}: {status} in {seconds}s ===", flush=True)


def dump_logs(target: stack.Stack, services: tuple[str, ...]) -> None:
    print("\n--- service status ---\n" + target.compose("ps", "--all", check=False).stdout)
    print(f"\n--- logs of {', '.join(services) or 'every service'} (last 300 lines each) ---")
    print(target.logs(services, tail=300))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "e2e-failure.log").write_text(target.logs((), tail=5000))


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="End-to-end check of the container stack.")
    parser.add_argument("--tag", default=None, help="image tag (default: the git revision)")
    parser.add_argument("--skip-build", action="store_true", help="use already built images")
    parser.add_argument("--keep", action="store_true", help="leave the stack running at the end")
    # the range and size of the sample data (e2e_env), fixed: the checks' figures depend on them
    parser.set_defaults(
        start_month=MONTHS[0][:7], end_month=MONTHS[-1][:7], trips_per_month=TRIPS_PER_MONTH
    )
    args = parser.parse_args(argv)
    args.tag = args.tag or git_revision()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # a CI cancellation (SIGTERM) still takes the stack down in the `finally` below
    signal.signal(signal.SIGTERM, _interrupted)
    for name in stack.remove_stale_projects():
        print(f"removed stale end-to-end stack {name}")
    workdir = Path(tempfile.mkdtemp(prefix="taxi-e2e-"))
    ctx, timings, status = Context(args, workdir), [], 0
    print(f"project {ctx.project}, images tagged {args.tag}, env file {ctx.env_file}")
    try:
        for name, phase in PHASES:
            run_phase(timings, name, phase, ctx)
    except PhaseFailure as failure:
        status = 1
        print(f"\nFAILED: {failure}", file=sys.stderr)
        dump_logs(ctx.stack, failure.services)
    except (Exception, KeyboardInterrupt) as exc:
        status = 1
        traceback.print_exc()
        print(f"\nFAILED: {exc!r}", file=sys.stderr)
        dump_logs(ctx.stack, ())
    finally:
        if ctx.charts:
            ctx.charts.stop()
        ctx.events.stop()
        if args.keep:
            print(
                f"\n--keep: stack {ctx.project} left running (env file {ctx.env_file}); remove it "
                f"with\n  docker compose -p {ctx.project} --env-file {ctx.env_file} down -v"
            )
        else:
            run_phase(timings, "compose down -v", ctx.stack.down)
            shutil.rmtree(workdir, ignore_errors=True)
        print(
            "\n"
            + "\n".join(f"{t['seconds']:7.1f}s  {t['status']:6}  {t['phase']}" for t in timings)
        )
        print(f"{sum(t['seconds'] for t in timings):7.1f}s  total")
        summary = {"project": ctx.project, "tag": args.tag, "status": ["ok", "failed"][status]}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "e2e-summary.json").write_text(
            json.dumps({**summary, "phases": timings, **ctx.reports}, indent=2, default=str)
        )
    print("\nend-to-end check " + ("passed" if status == 0 else "FAILED"))
    return status


if __name__ == "__main__":
    sys.exit(main())
