"""Dagster code location of the NYC taxi analytics platform."""
