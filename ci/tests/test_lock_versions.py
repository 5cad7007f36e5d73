"""The harness talks to the stack's webserver with dagster-graphql: the same Dagster release."""

import tomllib

from e2elib.stack import REPO_ROOT

PACKAGES = ("dagster", "dagster-graphql", "dagster-shared", "dagster-pipes")


def locked_versions(lock_file) -> dict[str, str]:
    data = tomllib.loads(lock_file.read_text())
    return {pkg["name"]: pkg["version"] for pkg in data["package"] if "version" in pkg}


def test_dagster_same_version_as_the_pipeline():
    harness = locked_versions(REPO_ROOT / "ci" / "uv.lock")
    pipeline = locked_versions(REPO_ROOT / "user_code" / "uv.lock")
    for name in PACKAGES:
        assert harness[name] == pipeline[name], (
            f"ci/uv.lock locks {name} {harness[name]}, user_code/uv.lock {pipeline[name]}: the "
            "harness's client must match the stack's Dagster (pin dagster-graphql in "
            "ci/pyproject.toml to user_code/pyproject.toml's dagster, then `uv lock --project ci`)"
        )
    assert harness["dagster-graphql"] == "1.13.27"
