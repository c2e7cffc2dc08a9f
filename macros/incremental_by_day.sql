{#- Incremental config shared by every model over plays: whole days are rebuilt from a
    lookback window. Postgres deletes and reinserts the days; Spark overwrites day partitions
    (merge would need Delta or Iceberg). -#}
{% macro incremental_by_day(date_column) %}
    {% if target.type == 'spark' %}
        {{ return({'incremental_strategy': 'insert_overwrite',
                   'partition_by': [date_column], 'file_format': 'parquet',
                   'on_schema_change': 'fail'}) }}
    {% endif %}
    {% if target.type == 'duckdb' %}
        {#- DuckDB: the same days deleted and reinserted; its zone maps find a day without an
            index, and an index only slows the inserts. -#}
        {{ return({'incremental_strategy': 'delete+insert', 'unique_key': date_column,
                   'on_schema_change': 'fail'}) }}
    {% endif %}
    {{ return({'incremental_strategy': 'delete+insert', 'unique_key': date_column,
               'indexes': [{'columns': [date_column]}], 'on_schema_change': 'fail'}) }}
{% endmacro %}
