{#- Fails on rows whose value lies outside [min_value, max_value]; nulls pass (not_null is
    its own test). Either bound may be omitted; inclusive=false makes both bounds strict. -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
{%- set low = ' >= ' if inclusive else ' > ' -%}
{%- set high = ' <= ' if inclusive else ' < ' -%}
{%- set checks = [] -%}
{%- do checks.append(column_name ~ low ~ min_value) if min_value is not none -%}
{%- do checks.append(column_name ~ high ~ max_value) if max_value is not none -%}

select {{ column_name }} as out_of_range_value
from {{ model }}
where
    {{ column_name }} is not null
    and not ({{ checks | join(' and ') if checks else '1 = 1' }})

{% endtest %}
