{#- 0 or 1 from a text key: the parity of the last hex digit of its md5, which splits rows
    into two halves of about equal size whatever the key's format, the same half for the
    same key on every run and on every engine (md5, right and ascii mean the same on
    PostgreSQL, Spark and DuckDB; their own hash functions differ, which would put other
    rows in each half of a table built on both). -#}
{% macro key_parity(column) -%}
    (ascii(right(md5({{ column }}), 1)) % 2)
{%- endmacro %}
