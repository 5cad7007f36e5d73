"""The webserver's API: dagster-graphql's client, plus the GraphQL it does not offer.

DagsterGraphQLClient launches runs and reads their status. Backfills, the workspace's assets,
checks, pools and instigators, the instance, run lists, event logs and captured logs have no
client method: those few queries are here, sent through the client's own transport.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dagster_graphql import DagsterGraphQLClient

from .stack import PhaseFailure, wait_until

ACTIVE_RUN_STATUSES = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
ENDED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
# Dagster's step warning when a step yields an AssetCheckResult for a check the run did not select
NOT_SELECTED = re.compile(r"not selected\. Letting it through")

WORKSPACE_QUERY = """{ workspaceOrError { __typename ... on PythonError { message }
  ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename
    ... on PythonError { message stack }
    ... on RepositoryLocation { repositories {
      jobs { name }
      schedules { name scheduleState { id status } }
      sensors { name sensorState { id status } }
      assetNodes { assetKey { path } isPartitioned partitionKeys pools
        assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } } } } } } } }"""
ASSET_STATUS_QUERY = """{ assetNodes { assetKey { path } isPartitioned
  partitionStats { numMaterialized numPartitions } assetMaterializations(limit: 1) { runId } } }"""
INSTANCE_QUERY = """{ instance { runLauncher { name } runQueueConfig { maxConcurrentRuns }
  poolConfig { poolGranularity defaultPoolLimit }
  daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"""
RUN_FIELDS = "runId status jobName endTime tags { key value }"
RUNS_QUERY = f"""query($filter: RunsFilter) {{ runsOrError(filter: $filter, limit: 1000) {{
  __typename ... on Runs {{ results {{ {RUN_FIELDS} }} }} ... on PythonError {{ message }} }} }}"""
BACKFILL_QUERY = f"""query($id: String!) {{ partitionBackfillOrError(backfillId: $id) {{ __typename
  ... on PartitionBackfill {{ status error {{ message }} runs(limit: 1000) {{ {RUN_FIELDS} }} }}
  ... on Error {{ message }} }} }}"""
LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""
SENSOR_TICK_QUERY = """query($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) { __typename
    ... on Sensor { sensorState { ticks(limit: 1) { status skipReason } } }
    ... on Error { message } } }"""
# the repository of a code location defined by a `Definitions` object
REPOSITORY = "__repository__"
STOP_SENSOR = "mutation($id: String!) { stopSensor(id: $id) { __typename } }"
STOP_SCHEDULE = "mutation($id: String!) { stopRunningSchedule(id: $id) { __typename } }"
RUN_LOGS_QUERY = """
fragment ErrorChain on PythonError { message errorChain { error { message } } }
query($runId: ID!, $cursor: String) { logsForRun(runId: $runId, afterCursor: $cursor) {
  ... on EventConnection { cursor hasMore events { __typename
    ... on MessageEvent { message stepKey level }
    ... on LogsCapturedEvent { fileKey stepKeys }
    ... on ExecutionStepFailureEvent { error { ...ErrorChain } }
    ... on RunFailureEvent { error { ...ErrorChain } }
    ... on EngineEvent { error { ...ErrorChain } } } } } }"""
CAPTURED_LOGS_QUERY = """query($logKey: [String!]!) {
  capturedLogs(logKey: $logKey) { stdout stderr } }"""


def asset_key(node: dict) -> str:
    return "/".join(node["assetKey"]["path"])


@dataclass
class Location:
    """A code location as the webserver serves it. `assets`: key -> the GraphQL asset node
    (isPartitioned, partitionKeys, pools) plus `checks`, the names of its asset checks."""

    name: str
    load_status: str
    error: str | None = None
    assets: dict[str, dict] = field(default_factory=dict)
    jobs: set[str] = field(default_factory=set)
    schedules: dict[str, dict] = field(default_factory=dict)  # name -> {"id", "status"}
    sensors: dict[str, dict] = field(default_factory=dict)

    @property
    def check_keys(self) -> set[str]:
        return {f"{key}:{check}" for key, node in self.assets.items() for check in node["checks"]}


def parse_workspace(data: dict) -> dict[str, Location]:
    workspace = data["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        raise PhaseFailure(f"workspace: {workspace.get('message')}", ["webserver"])
    locations = {}
    for entry in workspace["locationEntries"]:
        location = entry.get("locationOrLoadError") or {}
        info = locations[entry["name"]] = Location(entry["name"], entry["loadStatus"])
        if location.get("__typename") == "PythonError":
            info.error = location.get("message", "") + "\n" + "".join(location.get("stack") or [])
        for repo in location.get("repositories", []):
            info.jobs |= {job["name"] for job in repo["jobs"]}
            info.schedules |= {s["name"]: s["scheduleState"] for s in repo["schedules"]}
            info.sensors |= {s["name"]: s["sensorState"] for s in repo["sensors"]}
            for node in repo["assetNodes"]:
                checks = (node.get("assetChecksOrError") or {}).get("checks", [])
                info.assets[asset_key(node)] = {**node, "checks": [c["name"] for c in checks]}
    return locations


def partitions_by_assets(assets: dict[str, dict], exclude=frozenset()) -> list[dict]:
    """`partitionsByAssets` of a backfill covering every partition of every asset but `exclude`."""
    selection = []
    for key in sorted(set(assets) - set(exclude)):
        item: dict = {"assetKey": {"path": key.split("/")}}
        if assets[key]["isPartitioned"]:
            keys = assets[key]["partitionKeys"]
            if not keys:
                raise ValueError(f"{key} is partitioned but has no partitions")
            item["partitions"] = {"range": {"start": keys[0], "end": keys[-1]}}
        selection.append(item)
    return selection


def unfilled_assets(nodes: list[dict], required: set[str]) -> dict[str, str]:
    """Of `required`, the assets not yet fully materialized, with what is missing."""
    missing = {key: "not in the asset graph" for key in required}
    for node in (node for node in nodes if asset_key(node) in required):
        del missing[asset_key(node)]
        stats = node.get("partitionStats") or {}
        done, total = stats.get("numMaterialized", 0), stats.get("numPartitions", 0)
        if node["isPartitioned"] and (total == 0 or done < total):
            missing[asset_key(node)] = f"{done}/{total} partitions"
        elif not node["isPartitioned"] and not node.get("assetMaterializations"):
            missing[asset_key(node)] = "never materialized"
    return missing


def tags_of(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run.get("tags", [])}


def run_failure_messages(events: list[dict]) -> list[str]:
    """The error messages of a run's failure events, for the log of a failed check."""
    messages = []
    for event in events:
        error = event.get("error") or {}
        if event.get("__typename") in ("ExecutionStepFailureEvent", "RunFailureEvent") or (
            error and event.get("level") == "ERROR"
        ):
            parts = [error.get("message") or event.get("message") or ""]
            parts += [link["error"]["message"] for link in error.get("errorChain") or []]
            text = "\n    caused by: ".join(part.strip() for part in parts if part and part.strip())
            step = event.get("stepKey")
            messages.append(f"[{step}] {text}" if step else text)
    return messages


def not_selected_warnings(events: list[dict]) -> list[str]:
    """Messages of a run's log saying a step yielded a check result the run did not select."""
    return [e["message"] for e in events if NOT_SELECTED.search(e.get("message") or "")]


class Dagster(DagsterGraphQLClient):
    def __init__(self, port: int):
        super().__init__("127.0.0.1", port_number=port, timeout=60)

    def query(self, query: str, variables: dict | None = None) -> dict:
        # the client's transport and error wrapping (DagsterGraphQLClientError names the query)
        return self._execute(query, variables)

    def locations(self) -> dict[str, Location]:
        return parse_workspace(self.query(WORKSPACE_QUERY))

    def instance(self) -> dict:
        return self.query(INSTANCE_QUERY)["instance"]

    def asset_nodes(self) -> list[dict]:
        return self.query(ASSET_STATUS_QUERY)["assetNodes"]

    def runs(self, statuses=None, run_ids=None) -> list[dict]:
        run_filter = {k: v for k, v in (("statuses", statuses), ("runIds", run_ids)) if v}
        result = self.query(RUNS_QUERY, {"filter": run_filter})["runsOrError"]
        if result["__typename"] != "Runs":
            raise PhaseFailure(f"runs: {result.get('message')}", ["webserver"])
        return result["results"]

    def run_events(self, run_id: str) -> list[dict]:
        events, cursor, more = [], None, True
        while more:
            page = self.query(RUN_LOGS_QUERY, {"runId": run_id, "cursor": cursor})["logsForRun"]
            events += page["events"]
            cursor, more = page["cursor"], page["hasMore"]
        return events

    def captured_logs(self, run_id: str, file_key: str) -> dict:
        log_key = [run_id, "compute_logs", file_key]
        return self.query(CAPTURED_LOGS_QUERY, {"logKey": log_key})["capturedLogs"]

    def last_tick_message(self, location: str, sensor: str) -> str | None:
        """The skip reason of the sensor's latest tick (None before its first tick)."""
        selector = {
            "repositoryLocationName": location,
            "repositoryName": REPOSITORY,
            "sensorName": sensor,
        }
        result = self.query(SENSOR_TICK_QUERY, {"selector": selector})["sensorOrError"]
        if result["__typename"] != "Sensor":
            raise PhaseFailure(f"sensor {sensor}: {result.get('message')}", ["webserver"])
        ticks = result["sensorState"]["ticks"]
        return ticks[0]["skipReason"] if ticks else None

    def stop_instigators(self, location: Location, keep=frozenset()) -> list[str]:
        """Stops every running sensor and schedule but those named in `keep`; their names."""
        stopped = []
        for mutation, states in (
            (STOP_SENSOR, location.sensors),
            (STOP_SCHEDULE, location.schedules),
        ):
            for name, state in states.items():
                if state["status"] == "RUNNING" and name not in keep:
                    self.query(mutation, {"id": state["id"]})
                    stopped.append(name)
        return stopped

    def launch_backfill(self, selection: list[dict], title: str) -> str:
        params = {"partitionsByAssets": selection, "title": title}
        result = self.query(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise PhaseFailure(f"backfill not launched: {result}", ["webserver"])
        return result["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout: float, poll: float = 5.0) -> dict:
        """Until the backfill ended and none of its runs is active; prints its progress."""
        last = [""]

        def ended() -> dict | None:
            backfill = self.query(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
            if backfill["__typename"] != "PartitionBackfill":
                raise PhaseFailure(f"backfill {backfill_id}: {backfill.get('message')}", ["daemon"])
            statuses = sorted(run["status"] for run in backfill["runs"])
            summary = f"{backfill['status']} runs={ {s: statuses.count(s) for s in statuses} }"
            if summary != last[0]:
                print(f"  backfill {backfill_id}: {summary}", flush=True)
                last[0] = summary
            active = set(statuses) & set(ACTIVE_RUN_STATUSES)
            return backfill if backfill["status"] in ENDED and not active else None

        return wait_until(ended, timeout, f"backfill {backfill_id}", ["daemon", "user_code"], poll)

    def wait_for_run(self, run_id: str, statuses: set[str], timeout: float, poll=2.0) -> dict:
        """Until the run (client.get_run_status) is in one of `statuses`; the run with its tags."""

        def reached() -> bool:
            return self.get_run_status(run_id).value in statuses

        wait_until(reached, timeout, f"run {run_id} reaching {sorted(statuses)}", ["daemon"], poll)
        return self.runs(run_ids=[run_id])[0]

    def wait_until_idle(self, timeout: float) -> None:
        """Until no run is queued or in progress."""
        wait_until(lambda: not self.runs(ACTIVE_RUN_STATUSES), timeout, "runs ending", ["daemon"])
