"""Sensors: ad-hoc request files, and the sensor that evaluates automation conditions."""

import json
from pathlib import Path

import dagster as dg

from taxi_pipeline.assets.requests import BadRequestFile, read_request_file
from taxi_pipeline.jobs import adhoc_request_job
from taxi_pipeline.resources import Folders


@dg.sensor(
    job=adhoc_request_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One run of adhoc_request_job per new or changed *.json file in the requests "
    "folder.",
)
def adhoc_request_sensor(context: dg.SensorEvaluationContext, folders: Folders):
    """The cursor maps file name -> modification time, so each version of a file runs once and
    a bad file is reported once, not on every tick."""
    seen: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
    folder = Path(folders.requests_dir)
    current: dict[str, float] = {}
    run_requests, problems = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        mtime = path.stat().st_mtime
        current[path.name] = mtime
        if seen.get(path.name) == mtime:
            continue
        try:
            request = read_request_file(path)
        except BadRequestFile as error:
            # One bad file must not stop the others (nor crash the sensor).
            context.log.error(f"Skipping request file {error}")
            problems.append(str(error))
            continue
        run_requests.append(
            dg.RunRequest(
                run_key=f"{path.name}:{mtime}",
                run_config=dg.RunConfig(ops={"adhoc_request": request}),
                tags={"adhoc_request/file": path.name},
            )
        )
    skip_reason = None
    if not run_requests:
        skip_reason = (
            "Bad request files: " + " | ".join(problems)
            if problems
            else f"No new or changed request files in {folder}"
        )
    return dg.SensorResult(
        run_requests=run_requests, skip_reason=skip_reason, cursor=json.dumps(current)
    )


automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates every asset's automation condition: fills the configured range on a "
    "new deployment and rebuilds downstream assets after upstream updates.",
)
