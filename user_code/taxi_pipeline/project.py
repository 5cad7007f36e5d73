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

import json
import shutil
import sys
from pathlib import Path

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
