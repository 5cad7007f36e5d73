"""Helpers of the end-to-end check (ci/e2e.py): the compose stack, the Dagster GraphQL API, the
warehouse volume, phase timings. Standard library only, so the check runs with any Python 3.9+."""
