"""The webserver's GraphQL API: what the end-to-end check asks and launches through it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from .timing import PhaseFailure

TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
ACTIVE_RUN_STATUSES = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
TERMINAL_BACKFILL_STATUSES = {
    "COMPLETED",
    "COMPLETED_SUCCESS",
    "COMPLETED_FAILED",
    "FAILED",
    "CANCELED",
}


class GraphQLError(Exception):
    pass


WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on PythonError { message }
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
          ... on RepositoryLocation {
            repositories {
              name
              jobs { name }
              schedules { name scheduleState { id status } }
              sensors { name sensorState { id status } }
              assetNodes {
                assetKey { path }
                isPartitioned
                partitionKeys
                pools
                assetChecksOrError { __typename ... on AssetChecks { checks { name } } }
              }
            }
          }
        }
      }
    }
  }
}
"""

ASSET_STATUS_QUERY = """
{
  assetNodes {
    assetKey { path }
    isPartitioned
    partitionStats { numMaterialized numPartitions numFailed numMaterializing }
    assetMaterializations(limit: 1) { timestamp runId }
  }
}
"""

INSTANCE_QUERY = """
{
  instance {
    runLauncher { name }
    runQueueConfig { maxConcurrentRuns }
    poolConfig { poolGranularity defaultPoolLimit }
    concurrencyLimits { concurrencyKey slotCount }
    daemonHealth { allDaemonStatuses { daemonType healthy required } }
  }
}
"""

RUN_FIELDS = "runId status jobName startTime endTime tags { key value }"

RUNS_QUERY = (
    """
query Runs($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs { results { %s } }
    ... on PythonError { message }
  }
}
"""
    % RUN_FIELDS
)

BACKFILL_QUERY = (
    """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status error { message } runs(limit: 1000) { %s } }
    ... on Error { message }
  }
}
"""
    % RUN_FIELDS
)

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

STOP_SENSOR = """
mutation Stop($id: String!) {
  stopSensor(id: $id) { __typename ... on PythonError { message } }
}
"""

STOP_SCHEDULE = """
mutation Stop($id: String!) {
  stopRunningSchedule(id: $id) { __typename ... on PythonError { message } }
}
"""

RUN_LOGS_QUERY = """
fragment ErrorChain on PythonError { message errorChain { error { message } } }

query Logs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message stepKey level }
        ... on LogsCapturedEvent { fileKey stepKeys }
        ... on ExecutionStepFailureEvent { error { ...ErrorChain } }
        ... on RunFailureEvent { error { ...ErrorChain } }
        ... on EngineEvent { error { ...ErrorChain } }
      }
    }
  }
}
"""

CAPTURED_LOGS_QUERY = """
query Captured($logKey: [String!]!) {
  capturedLogs(logKey: $logKey) { stdout stderr }
}
"""


@dataclass
class AssetInfo:
    key: str
    partitioned: bool
    partition_keys: list[str]
    checks: list[str]
    pools: list[str] = field(default_factory=list)


@dataclass
class LocationInfo:
    name: str
    load_status: str
    error: str | None
    assets: dict[str, AssetInfo] = field(default_factory=dict)
    jobs: set[str] = field(default_factory=set)
    schedules: dict[str, dict] = field(default_factory=dict)  # name -> {"id", "status"}
    sensors: dict[str, dict] = field(default_factory=dict)

    @property
    def check_keys(self) -> set[str]:
        return {f"{asset.key}:{check}" for asset in self.assets.values() for check in asset.checks}


def asset_key_string(path: list[str]) -> str:
    return "/".join(path)


def parse_workspace(data: dict) -> dict[str, LocationInfo]:
    workspace = data["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        raise GraphQLError(f"workspace: {workspace.get('message')}")
    locations = {}
    for entry in workspace["locationEntries"]:
        location = entry.get("locationOrLoadError") or {}
        info = LocationInfo(entry["name"], entry["loadStatus"], None)
        if location.get("__typename") == "PythonError":
            info.error = location.get("message", "") + "\n" + "".join(location.get("stack") or [])
        for repo in location.get("repositories", []):
            info.jobs |= {job["name"] for job in repo["jobs"]}
            for schedule in repo["schedules"]:
                info.schedules[schedule["name"]] = schedule["scheduleState"]
            for sensor in repo["sensors"]:
                info.sensors[sensor["name"]] = sensor["sensorState"]
            for node in repo["assetNodes"]:
                checks_or_error = node.get("assetChecksOrError") or {}
                checks = [c["name"] for c in checks_or_error.get("checks", [])]
                key = asset_key_string(node["assetKey"]["path"])
                info.assets[key] = AssetInfo(
                    key,
                    node["isPartitioned"],
                    node.get("partitionKeys") or [],
                    checks,
                    node.get("pools") or [],
                )
        locations[info.name] = info
    return locations


def partitions_by_assets(
    assets: dict[str, AssetInfo], exclude: set[str] = frozenset()
) -> list[dict]:
    """`partitionsByAssets` of a backfill covering every partition of every asset but `exclude`."""
    selection = []
    for key in sorted(assets):
        if key in exclude:
            continue
        asset = assets[key]
        item: dict = {"assetKey": {"path": key.split("/")}}
        if asset.partitioned:
            if not asset.partition_keys:
                raise ValueError(f"{key} is partitioned but has no partitions")
            item["partitions"] = {
                "range": {"start": asset.partition_keys[0], "end": asset.partition_keys[-1]}
            }
        selection.append(item)
    return selection


def unfilled_assets(nodes: list[dict], required: set[str]) -> dict[str, str]:
    """Of `required`, the assets not yet fully materialized, with what is missing."""
    missing = {}
    found = set()
    for node in nodes:
        key = asset_key_string(node["assetKey"]["path"])
        if key not in required:
            continue
        found.add(key)
        if node["isPartitioned"]:
            stats = node.get("partitionStats") or {}
            done, total = stats.get("numMaterialized", 0), stats.get("numPartitions", 0)
            if total == 0 or done < total:
                missing[key] = f"{done}/{total} partitions"
        elif not node.get("assetMaterializations"):
            missing[key] = "never materialized"
    for key in required - found:
        missing[key] = "not in the asset graph"
    return missing


def tags_of(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run.get("tags", [])}


def run_failure_messages(events: list[dict]) -> list[str]:
    """The error messages of a run's failure events, for the log of a failed check."""
    messages = []
    for event in events:
        error = event.get("error")
        if event.get("__typename") in ("ExecutionStepFailureEvent", "RunFailureEvent") or (
            error and event.get("level") == "ERROR"
        ):
            error = error or {}
            parts = [error.get("message") or event.get("message") or ""]
            parts += [link["error"]["message"] for link in error.get("errorChain") or []]
            text = "\n    caused by: ".join(part.strip() for part in parts if part and part.strip())
            step = event.get("stepKey")
            messages.append(f"[{step}] {text}" if step else text)
    return messages


class DagsterApi:
    def __init__(self, url: str, timeout: float = 60):
        self.url = url.rstrip("/") + "/graphql"
        self.timeout = timeout

    def query(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            raise GraphQLError(f"HTTP {exc.code}: {exc.read()[:2000]!r}") from exc
        if payload.get("errors"):
            raise GraphQLError(json.dumps(payload["errors"])[:4000])
        return payload["data"]

    # --- reads -------------------------------------------------------------------------------
    def locations(self) -> dict[str, LocationInfo]:
        return parse_workspace(self.query(WORKSPACE_QUERY))

    def instance(self) -> dict:
        return self.query(INSTANCE_QUERY)["instance"]

    def asset_nodes(self) -> list[dict]:
        return self.query(ASSET_STATUS_QUERY)["assetNodes"]

    def runs(
        self,
        statuses: list[str] | None = None,
        tags: dict[str, str] | None = None,
        limit: int = 1000,
    ) -> list[dict]:
        run_filter: dict = {}
        if statuses:
            run_filter["statuses"] = statuses
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        result = self.query(RUNS_QUERY, {"filter": run_filter, "limit": limit})["runsOrError"]
        if result["__typename"] != "Runs":
            raise GraphQLError(result.get("message"))
        return result["results"]

    def run(self, run_id: str) -> dict:
        runs = self.runs_by_ids([run_id])
        if not runs:
            raise GraphQLError(f"run {run_id} not found")
        return runs[0]

    def runs_by_ids(self, run_ids: list[str]) -> list[dict]:
        result = self.query(RUNS_QUERY, {"filter": {"runIds": run_ids}, "limit": len(run_ids)})
        return result["runsOrError"].get("results", [])

    def backfill(self, backfill_id: str) -> dict:
        result = self.query(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise GraphQLError(result.get("message"))
        return result

    def run_events(self, run_id: str) -> list[dict]:
        result = self.query(RUN_LOGS_QUERY, {"runId": run_id})["logsForRun"]
        return result.get("events", [])

    def captured_logs(self, run_id: str, file_key: str) -> dict:
        return self.query(CAPTURED_LOGS_QUERY, {"logKey": [run_id, "compute_logs", file_key]})[
            "capturedLogs"
        ]

    # --- writes ------------------------------------------------------------------------------
    def launch_backfill(self, selection: list[dict], title: str) -> str:
        params = {
            "partitionsByAssets": selection,
            "title": title,
            "tags": [{"key": "e2e", "value": "backfill"}],
        }
        result = self.query(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise PhaseFailure(f"backfill not launched: {json.dumps(result)[:3000]}", ["webserver"])
        return result["backfillId"]

    def launch_assets(self, location: str, asset_keys: list[str], tags: dict[str, str]) -> str:
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": key.split("/")} for key in asset_keys],
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        result = self.query(LAUNCH_RUN, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise PhaseFailure(f"run not launched: {json.dumps(result)[:3000]}", ["webserver"])
        return result["run"]["runId"]

    def stop_sensor(self, state_id: str) -> None:
        result = self.query(STOP_SENSOR, {"id": state_id})["stopSensor"]
        if result["__typename"] == "PythonError":
            raise GraphQLError(result["message"])

    def stop_schedule(self, state_id: str) -> None:
        result = self.query(STOP_SCHEDULE, {"id": state_id})["stopRunningSchedule"]
        if result["__typename"] == "PythonError":
            raise GraphQLError(result["message"])

    # --- waiting -----------------------------------------------------------------------------
    def wait_for_backfill(self, backfill_id: str, timeout: float, poll: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            backfill = self.backfill(backfill_id)
            counts: dict[str, int] = {}
            for run in backfill["runs"]:
                counts[run["status"]] = counts.get(run["status"], 0) + 1
            summary = f"{backfill['status']} runs={dict(sorted(counts.items()))}"
            if summary != last:
                print(f"  backfill {backfill_id}: {summary}", flush=True)
                last = summary
            active = any(run["status"] in ACTIVE_RUN_STATUSES for run in backfill["runs"])
            if backfill["status"] in TERMINAL_BACKFILL_STATUSES and not active:
                return backfill
            if time.monotonic() > deadline:
                raise PhaseFailure(
                    f"backfill {backfill_id} not finished after {timeout:.0f}s: {summary}",
                    ["daemon", "user_code"],
                )
            time.sleep(poll)

    def wait_for_run(
        self, run_id: str, statuses: set[str], timeout: float, poll: float = 2.0
    ) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                raise PhaseFailure(
                    f"run {run_id} is {run['status']} after {timeout:.0f}s, "
                    f"expected one of {sorted(statuses)}",
                    ["daemon"],
                )
            time.sleep(poll)

    def wait_until_idle(self, timeout: float, poll: float = 5.0) -> None:
        """Until no run is queued or in progress."""
        deadline = time.monotonic() + timeout
        while True:
            active = self.runs(statuses=sorted(ACTIVE_RUN_STATUSES))
            if not active:
                return
            if time.monotonic() > deadline:
                names = sorted({f"{run['jobName']}:{run['status']}" for run in active})
                raise PhaseFailure(f"runs still active after {timeout:.0f}s: {names}", ["daemon"])
            time.sleep(poll)
