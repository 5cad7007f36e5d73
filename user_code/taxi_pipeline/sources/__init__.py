"""Data sources of the taxi pipeline: plain Python, no Dagster (fast to import, unit-testable).

* `layout`  - the TLC file layouts (2023's 19 columns), file names, the raw warehouse schema.
* `tlc`     - download from the TLC base URL: streamed, retried with backoff, verified, atomic.
* `sample`  - deterministic synthetic trips in the TLC 2023 parquet layout + the zone lookup.
* `loading` - quirk policy and the idempotent, transactional load of a month / the zones into
  DuckDB.

Import the submodules directly (``from taxi_pipeline.sources.tlc import download_trips``); this
package module imports nothing so that importing one submodule does not pull in the others.
"""
