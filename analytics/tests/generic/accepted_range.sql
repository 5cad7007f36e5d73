{#- Fails for every row outside [min_value, max_value] (bounds optional; exclusive with
    inclusive=false). NULLs pass (combine with not_null). -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
{%- if min_value is none and max_value is none -%}
    {{ exceptions.raise_compiler_error("accepted_range needs min_value and/or max_value") }}
{%- endif %}
{#- One condition per given bound, built here rather than in {% if %} blocks inside the where
    clause, where sqlfluff's layout rule misreads two consecutive blocks. -#}
{%- set out_of_range = [] %}
{%- if min_value is not none %}
    {%- do out_of_range.append(column_name ~ (' < ' if inclusive else ' <= ') ~ min_value) %}
{%- endif %}
{%- if max_value is not none %}
    {%- do out_of_range.append(column_name ~ (' > ' if inclusive else ' >= ') ~ max_value) %}
{%- endif %}
select {{ column_name }} as failing_value
from {{ model }}
where
    {{ column_name }} is not null
    and ({{ out_of_range | join(' or ') }})
{% endtest %}
