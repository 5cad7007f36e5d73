{#
  The pickup window a run of daily_metrics works on: dbt's own event-time window, given on the
  command line as `dbt build --event-time-start <start> --event-time-end <end>` (half-open
  [start, end); dates or timestamps). Dagster passes its daily partition window this way.

  Why flags and not `--vars`: dbt keys its saved parse state on the CLI vars, so a new window in
  `--vars` on every partition made dbt re-parse the whole project on every step ("Unable to do
  partial parsing because config vars ... have changed"). The event-time flags are not part of
  that key, and they are read here only at execution (`execute`), never while parsing.

  Returns none when no window is given (a developer's plain `dbt build`: everything is built), or
  a dict {"min": "<literal>", "max": "<literal>"} of quoted SQL timestamp literals. A UTC offset
  in the value is ignored by DuckDB's cast to TIMESTAMP: pickup_datetime is naive NYC wall-clock
  time, and so is a Dagster daily partition boundary's date and time.
#}
{% macro trip_window() %}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set min_date = invocation_args_dict.get('event_time_start') -%}
    {%- set max_date = invocation_args_dict.get('event_time_end') -%}
    {%- if min_date is none and max_date is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if min_date is none or max_date is none -%}
        {{ exceptions.raise_compiler_error(
            "daily_metrics needs both --event-time-start and --event-time-end (half-open window), got "
            ~ min_date ~ " and " ~ max_date) }}
    {%- endif -%}
    {%- set iso_date_or_timestamp = '^[0-9]{4}-[0-9]{2}-[0-9]{2}'
        ~ '([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?'
        ~ '(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$' -%}
    {%- set bounds = {} -%}
    {%- for key, value in [('min', min_date), ('max', max_date)] -%}
        {%- set text = (value ~ '') | trim -%}
        {%- if not modules.re.match(iso_date_or_timestamp, text) -%}
            {{ exceptions.raise_compiler_error(
                "the event-time window's " ~ key ~ " is not an ISO date/timestamp: " ~ text) }}
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
