{#- Every valid play's history, the moment before it started (tier, days since signup, and
    counts and rates over all of the user's earlier plays; macros/play_histories_counted.sql).
    On PostgreSQL the union of int_play_histories_counted_even_users and
    int_play_histories_counted_odd_users, which hold the plays of disjoint sets of users and
    are built at once; a union at the top, as int_plays_sessionized, so that a reader's
    columns and filters reach each table's scan and index. On Spark and DuckDB, which run a
    query's windows on every core, one incremental table. -#}
{%- if target.type == 'postgres' %}
    {{ config(materialized='view') }}

    select * from {{ ref('int_play_histories_counted_even_users') }}
    union all
    select * from {{ ref('int_play_histories_counted_odd_users') }}
{%- else %}
    {{ config(materialized='incremental', **play_histories_incremental()) }}

    {{ play_histories_counted() }}
{%- endif %}
