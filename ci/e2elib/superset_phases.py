"""Superset's phases of the end-to-end check (issue 4), listed in PHASES of ci/e2e.py.

The checks themselves live with the service (superset/tests/e2e/superset_checks.py, also used by
superset/tests/e2e/standalone.sh); these functions only call them on the e2e stack:

  phase_superset_load_start (before the backfill): waits for the first published snapshot, then
      starts querying every chart's data through Superset's API in a loop, in the background;
  phase_superset_checks (after the warehouse checks): stops the loop and fails if any of the chart
      queries made while the backfill wrote the warehouse failed; then Superset healthy, API
      login, every dashboard listed, every chart's data == the same query run directly on the
      published snapshot (inside the superset container), read-only / no file access probes;
      then a headless Chromium screenshot of every dashboard, checked non-blank.

Reports go to ci/artifacts/superset/ and into the e2e summary (ctx.reports["superset"]).
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import time
from typing import Any

from e2elib.compose import REPO_ROOT
from e2elib.timing import PhaseFailure

CHECKS_DIR = REPO_ROOT / "superset" / "tests" / "e2e"
CHECKS = CHECKS_DIR / "superset_checks.py"
ARTIFACTS = REPO_ROOT / "ci" / "artifacts" / "superset"
SERVICES = ["superset", "superset-db-init"]

_load: dict[str, Any] = {}


def _stop_load_process() -> None:
    proc = _load.get("proc")
    if proc is not None and proc.poll() is None:
        _load["stop_file"].touch()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


atexit.register(_stop_load_process)


def _superset(ctx) -> tuple[str, str, dict[str, str]]:
    """The URL, the container id and the environment (admin password) of the stack's Superset."""
    container = ctx.stack.compose("ps", "-q", "superset", timeout=60).stdout.strip()
    if not container:
        raise PhaseFailure("no superset container in the stack", SERVICES)
    url = f"http://127.0.0.1:{ctx.env['SUPERSET_PORT']}"
    env = {
        **os.environ,
        "SUPERSET_ADMIN_PASSWORD": ctx.env["SUPERSET_ADMIN_PASSWORD"],
        "SUPERSET_ADMIN_USERNAME": ctx.env.get("SUPERSET_ADMIN_USERNAME", "admin"),
    }
    return url, container, env


def _checks(env: dict[str, str], *args: str, timeout: float = 900) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(CHECKS), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {
            "ok": False,
            "failures": [
                f"exit {proc.returncode}, no JSON report on stdout: "
                f"stdout {proc.stdout[-1000:]!r} stderr {proc.stderr[-1000:]!r}"
            ],
        }


def _wait_for_snapshot(container: str, timeout: float = 600) -> float:
    start = time.monotonic()
    while (
        subprocess.run(
            ["docker", "exec", container, "test", "-s", "/published/taxi.duckdb"],
            capture_output=True,
        ).returncode
        != 0
    ):
        if time.monotonic() - start > timeout:
            raise PhaseFailure(
                f"no published snapshot after {timeout:.0f}s: the pipeline has not "
                "published /published/taxi.duckdb",
                ["daemon", "user_code"],
            )
        time.sleep(5)
    return time.monotonic() - start


def phase_superset_load_start(ctx) -> None:
    """Chart queries in a loop from now on (the backfill that follows writes the warehouse)."""
    url, container, env = _superset(ctx)
    waited = _wait_for_snapshot(container)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stop_file = ARTIFACTS / "load.stop"
    stop_file.unlink(missing_ok=True)
    report = ARTIFACTS / "load.json"
    report.unlink(missing_ok=True)
    log = open(ARTIFACTS / "load.log", "w")  # noqa: SIM115 - kept open for the child
    proc = subprocess.Popen(
        [
            sys.executable,
            str(CHECKS),
            "load",
            "--url",
            url,
            "--stop-file",
            str(stop_file),
            "--pause",
            "0.2",
            "--report",
            str(report),
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    _load.update(proc=proc, stop_file=stop_file, report=report, started=time.monotonic())
    time.sleep(3)
    if proc.poll() is not None:
        raise PhaseFailure(
            f"chart-query load exited at once: {(ARTIFACTS / 'load.log').read_text()[-1500:]}",
            SERVICES,
        )
    print(
        f"  snapshot present (waited {waited:.0f}s); querying every chart's data in a loop "
        f"(pid {proc.pid})"
    )


def phase_superset_checks(ctx) -> None:
    url, container, env = _superset(ctx)
    summary: dict[str, Any] = {}
    ctx.reports["superset"] = summary
    healthy = ctx.reports.get("healthy_after_seconds", {}).get("superset")
    if healthy is not None:
        summary["healthy_after_seconds"] = round(healthy, 1)
    problems: list[str] = []

    # 1. the chart queries made while the pipeline wrote
    if _load.get("proc") is not None:
        _stop_load_process()
        load = (
            json.loads(_load["report"].read_text())
            if _load["report"].exists()
            else {"failures": ["the load loop wrote no report"], "requests": 0, "errors": None}
        )
        summary["chart_queries_during_pipeline"] = load.get("requests")
        summary["chart_query_errors_during_pipeline"] = load.get("errors")
        summary["chart_query_latency_ms"] = load.get("latency_ms")
        print(
            f"  chart queries while the backfill wrote the warehouse: {load.get('requests')} "
            f"made, {load.get('errors')} failed (latency {load.get('latency_ms')})"
        )
        for sample in load.get("error_samples", [])[:5]:
            print(f"    {sample}")
        problems += load.get("failures", [])
    else:
        print("  (no chart-query load was running: phase_superset_load_start was skipped)")

    # 2. API: health, login, dashboards, chart data == direct queries, security probes
    verify = _checks(
        env,
        "verify",
        "--url",
        url,
        "--duckdb-container",
        container,
        "--report",
        str(ARTIFACTS / "verify.json"),
    )
    summary["charts_compared"] = len(verify.get("charts", []))
    summary["dashboards"] = [d.get("title") for d in verify.get("dashboards", [])]
    probes = verify.get("security_probes", [])
    print(
        f"  /health {verify.get('health')}; dashboards {summary['dashboards']}; "
        f"{sum(1 for c in verify.get('charts', []) if c.get('equal'))}/{summary['charts_compared']}"
        f" charts equal to the direct query; {sum(1 for p in probes if p.get('refused'))}"
        f"/{len(probes)} write/file probes refused"
    )
    problems += [f"verify: {f}" for f in verify.get("failures", [])]

    # 3. screenshots
    shots = _checks(
        env,
        "screenshots",
        "--url",
        url,
        "--out",
        str(ARTIFACTS / "screenshots"),
        "--report",
        str(ARTIFACTS / "screenshots.json"),
    )
    summary["screenshots"] = [d.get("screenshot") for d in shots.get("dashboards", [])]
    for d in shots.get("dashboards", []):
        print(
            f"  screenshot {d.get('screenshot')}: {len(d.get('charts', []))} charts, "
            f"{d.get('image', {}).get('distinctColours')} colours, ok={d.get('ok')}"
        )
    problems += [f"screenshots: {f}" for f in shots.get("failures", [])]

    if problems:
        raise PhaseFailure("superset:\n  " + "\n  ".join(str(p)[:1500] for p in problems), SERVICES)
