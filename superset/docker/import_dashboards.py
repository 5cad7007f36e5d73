"""Imports the dashboards bundle (SUPERSET_DASHBOARDS_DIR, default /app/dashboards) into Superset.

Run by docker/init.sh at every start. It hands the directory, as it is, to Superset's own
ImportAssetsCommand, the command behind `POST /api/v1/assets/import/`: it overwrites the
database, datasets, charts and dashboards that carry the bundle's uuids (a restart duplicates
nothing and YAML edits take effect), points each chart's saved query_context at the dataset's id
in this Superset, and raises on a bundle it rejects, so the start stops.

Why not a `superset` CLI command: Superset 6.1 has no CLI for ImportAssetsCommand.
`superset import-dashboards` does not overwrite charts, datasets or the database; `superset
import-directory --overwrite` runs the examples importer, which leaves query_context pointing at
the bundle's placeholder dataset id (GET /api/v1/chart/<id>/data/ then answers 404) and only logs
a rejected bundle.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> int:
    root = Path(os.environ.get("SUPERSET_DASHBOARDS_DIR", "/app/dashboards"))
    contents = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.yaml"))}
    if "metadata.yaml" not in contents:
        raise SystemExit(f"import_dashboards: {root} holds no metadata.yaml: not a Superset bundle")

    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.utils.core import override_user

        from superset import security_manager

        # the importer checks the acting user's permissions; the admin is created just before
        admin = security_manager.find_user(
            username=os.environ.get("SUPERSET_ADMIN_USERNAME", "admin")
        )
        if admin is None:
            raise SystemExit("import_dashboards: the admin user does not exist")
        with override_user(admin):
            ImportAssetsCommand(contents).run()
    print(f"import_dashboards: {len(contents)} files imported from {root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
