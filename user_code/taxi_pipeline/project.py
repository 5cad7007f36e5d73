"""The dbt project (`analytics/` at the repository root) as Dagster sees it.

Deployments run `dagster-dbt project prepare-and-package --file taxi_pipeline/project.py` at
image build time: it parses the project into a manifest and copies both into
`taxi_pipeline/dbt_project/`, which DbtProject then prefers, so loading the code location never
runs dbt. Under `dagster dev` the manifest is re-parsed on every load instead.
"""

from pathlib import Path

from dagster_dbt import DbtProject

from taxi_pipeline.settings import export_for_dbt, load_settings

_PACKAGE_DIR = Path(__file__).resolve().parent

dbt_project = DbtProject(
    project_dir=_PACKAGE_DIR.parent.parent / "analytics",
    packaged_project_dir=_PACKAGE_DIR / "dbt_project",
)
# `dagster dev` parses the project here, before any resource exists: dbt's profile needs the path.
export_for_dbt(load_settings())
dbt_project.prepare_if_dev()
