"""The dbt project (`analytics/` at the repository root) as Dagster sees it.

Image builds run `python -m taxi_pipeline.project`: it parses the project into a manifest and
copies both into `taxi_pipeline/dbt_project/` (dagster-dbt's `prepare_and_package`), which
DbtProject then prefers, so loading the code location never runs dbt; it also bakes dbt's parse
state for the deployment's warehouse path. Under `dagster dev` the manifest is re-parsed on every
load instead.

dbt's profile (analytics/profiles.yml) takes the warehouse file as the dbt var `warehouse_path`:
every dbt command Dagster runs passes it from `Settings`, so dbt and the Python assets open the
same file without anything written to the process environment.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject

# What `dagster-dbt project prepare-and-package` runs; called here with settings-built arguments.
from dagster_dbt.cli.app import prepare_and_package
from dagster_dbt.core.dbt_cli_invocation import PARTIAL_PARSE_FILE_NAME

from taxi_pipeline.settings import Settings, load_settings

_PACKAGE_DIR = Path(__file__).resolve().parent
ANALYTICS_DIR = _PACKAGE_DIR.parent.parent / "analytics"
PACKAGED_DIR = _PACKAGE_DIR / "dbt_project"


def dbt_vars(warehouse: Path) -> list[str]:
    """The `--vars` of every dbt command. Constant for a deployment: dbt re-parses the whole
    project when its vars change, so nothing that varies per run (a partition window) goes here."""
    # Compact: one word in dbt's logged invocation command, like every other argument.
    return ["--vars", json.dumps({"warehouse_path": str(warehouse)}, separators=(",", ":"))]


def dbt_executable() -> str:
    """dbt from PATH, else the one installed beside this interpreter (a virtualenv that was not
    activated, e.g. `.venv/bin/dagster dev`)."""
    beside = Path(sys.executable).parent / "dbt"
    return shutil.which("dbt") or (str(beside) if beside.exists() else "dbt")


def _dbt_project(settings: Settings, project_dir: Path = ANALYTICS_DIR) -> DbtProject:
    """The project as deployed: packaged beside the package, parsed with the deployment's vars.

    `project_dir` is a seam for tests that change a copy of the project; the image's packaged
    copy stands in for analytics/ only, never for such a copy."""
    return DbtProject(
        project_dir=project_dir,
        packaged_project_dir=PACKAGED_DIR if project_dir == ANALYTICS_DIR else None,
        prepare_project_cli_args=["parse", "--quiet", *dbt_vars(settings.duckdb_database)],
    )


def build_dbt_project(settings: Settings, project_dir: Path = ANALYTICS_DIR) -> DbtProject:
    """The project, parsed first when running under `dagster dev` (a no-op in deployments)."""
    project = _dbt_project(settings, project_dir)
    project.prepare_if_dev()
    return project


# dbt's deferral state of the published snapshot (analytics/macros/published_state.sql attaches
# PUBLISHED_FILE_NAME in the state folder as the database PUBLISHED_ALIAS; keep the names alike).
PUBLISHED_ALIAS = "published"
PUBLISHED_FILE_NAME = "published.duckdb"


def write_published_state(
    manifest: Mapping[str, Any], snapshot: Path, tables: Collection[str], state_dir: Path
) -> list[str]:
    """Write `state_dir` as dbt's deferral state of the published snapshot; return the models
    deferred to it.

    dbt's `--defer --defer-state <dir>` resolves a ref to a model the command does not build, and
    that is missing from the warehouse, to the relation <dir>/manifest.json names for it. The
    deployment's own manifest names the warehouse's relations ("taxi"."main"."daily_metrics"): the
    snapshot holds the same tables, in a file of its own, named after the warehouse too. So the
    state is that manifest with every model the snapshot holds moved to the database
    PUBLISHED_ALIAS, and the snapshot linked beside it, where the on-run-start hook attaches it
    read-only under that name. Models the snapshot lacks (the staging views) keep their
    warehouse relation: deferring to it changes nothing for them.
    """
    state = copy.deepcopy(manifest)
    deferred = []
    for node in state["nodes"].values():
        if (
            node["resource_type"] == "model"
            and node["schema"] == "main"
            and node["alias"] in tables
        ):
            node["database"] = PUBLISHED_ALIAS
            node["relation_name"] = f'"{PUBLISHED_ALIAS}"."main"."{node["alias"]}"'
            deferred.append(node["name"])
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "manifest.json").write_text(json.dumps(state))
    (state_dir / PUBLISHED_FILE_NAME).symlink_to(snapshot.resolve())
    return sorted(deferred)


def package_for_image(settings: Settings, state_dir: Path) -> None:
    """What the image build runs: the manifest and project copy (dagster-dbt's own
    `prepare_and_package`), then dbt's parse state of the packaged project into `state_dir`, where
    every dbt step of a run container starts from (DBT_TARGET_PATH). dbt keys that state on the
    profile's resolved values and the vars, so it is parsed with the deployment's settings."""
    prepare_and_package(_dbt_project(settings))
    packaged = DbtProject(project_dir=PACKAGED_DIR)
    scratch = state_dir / "parse"
    DbtCliResource(project_dir=packaged, dbt_executable=dbt_executable()).cli(
        ["parse", "--quiet", *dbt_vars(settings.duckdb_database)], target_path=scratch
    ).wait()
    shutil.copyfile(scratch / PARTIAL_PARSE_FILE_NAME, state_dir / PARTIAL_PARSE_FILE_NAME)
    shutil.rmtree(scratch)


if __name__ == "__main__":
    package_for_image(load_settings(), Path(sys.argv[1]))
