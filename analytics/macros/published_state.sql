{#
  on-run-start of every dbt command (dbt_project.yml). With dbt's deferral
  (`--defer --defer-state <dir>`, which Dagster passes for the run config `defer: true`), attach
  the published snapshot that <dir> describes, read-only, as the database `published`.

  Why: dbt's defer resolves a ref to a model that this command does not build, and that is missing
  from the warehouse, to where the state's manifest says it lives. Here the deferral state is the
  published snapshot (the audited marts Superset reads), and a DuckDB connection sees another
  file only once it is attached: taxi_pipeline/project.py (write_published_state) writes <dir>
  as the manifest, with the published tables' relations in the database `published`, and the
  snapshot itself as <dir>/published.duckdb. Both names are the constants PUBLISHED_ALIAS and
  PUBLISHED_FILE_NAME there.

  The attachment lasts for the whole command: dbt-duckdb keeps one DuckDB connection per dbt
  process (tests/test_dbt_config.py builds a model and its tests on a deferred parent).
  Without --defer this renders nothing, and dbt runs no statement for the hook.
#}
{% macro attach_published_state() %}
    {%- if execute and invocation_args_dict.get('defer') -%}
        {%- set state = invocation_args_dict.get('defer_state')
            or invocation_args_dict.get('state') -%}
        {%- if state -%}
            {%- set file = (state ~ '/published.duckdb') | replace("'", "''") -%}
            attach if not exists '{{ file }}' as published (read_only)
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
