{#
  The pickup window a run of daily_metrics works on, from the vars `min_date` / `max_date`
  (Dagster passes its partition time window: ISO dates or timestamps, half-open [min_date, max_date)).

  Returns none when neither var is given (a developer's plain `dbt build`: everything is built),
  or a dict {"min": "<literal>", "max": "<literal>"} of quoted SQL timestamp literals.
  Giving only one of the two vars is an error. A UTC offset in the value (e.g. '+00:00') is
  ignored by DuckDB's cast to TIMESTAMP: pickup_datetime is naive NYC wall-clock time, and so is
  a Dagster daily partition boundary's date and time.
#}
{% macro trip_window() %}
    {%- set min_date = var('min_date', none) -%}
    {%- set max_date = var('max_date', none) -%}
    {%- if min_date is none and max_date is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if min_date is none or max_date is none -%}
        {{ exceptions.raise_compiler_error(
            "daily_metrics needs both vars min_date and max_date (half-open window), got min_date="
            ~ min_date ~ ", max_date=" ~ max_date) }}
    {%- endif -%}
    {%- set bounds = {} -%}
    {%- for key, value in [('min', min_date), ('max', max_date)] -%}
        {%- set text = (value ~ '') | trim -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$', text) -%}
            {{ exceptions.raise_compiler_error("var " ~ key ~ "_date is not an ISO date/timestamp: " ~ text) }}
        {%- endif -%}
        {%- do bounds.update({key: "cast('" ~ text ~ "' as timestamp)"}) -%}
    {%- endfor -%}
    {{ return(bounds) }}
{% endmacro %}

{#
  Pre-hook of daily_metrics: on an incremental run with a window, delete every day the window
  touches, inside the model's transaction (dbt-duckdb runs inside-transaction hooks and the
  delete+insert in one transaction, so a failed run leaves the old rows).
#}
{% macro daily_metrics_clear_window() %}
    {%- set window = trip_window() -%}
    {%- if window is not none and is_incremental() -%}
        delete from {{ this }}
        where date_of_business >= cast({{ window.min }} as date)
          and cast(date_of_business as timestamp) < {{ window.max }}
    {%- else -%}
        select 1 as nothing_to_clear
    {%- endif -%}
{% endmacro %}
