-- The play models keep the grain of int_plays_flagged, whose unique index enforces play_id:
-- int_plays_sessionized selects its valid plays without a join, and int_plays_enriched and
-- fct_plays add columns by left joins, which can only add rows. So each holding exactly as
-- many rows as there are valid plays means one row per play_id, with none lost; this costs
-- one count per table where a unique test sorts or hashes every play_id (returns the models
-- whose count differs).
with valid_plays as (
    select count(*) as row_count from {{ ref('int_plays_flagged') }}
    where is_valid
),

sessionized as (
    select count(*) as row_count from {{ ref('int_plays_sessionized') }}
),

enriched as (
    select count(*) as row_count from {{ ref('int_plays_enriched') }}
),

fct_plays as (
    select count(*) as row_count from {{ ref('fct_plays') }}
),

counted as (
    select
        'int_plays_sessionized' as model_name,
        sessionized.row_count
    from sessionized
    union all
    select
        'int_plays_enriched' as model_name,
        enriched.row_count
    from enriched
    union all
    select
        'fct_plays' as model_name,
        fct_plays.row_count
    from fct_plays
),

compared as (
    select
        counted.model_name,
        counted.row_count,
        valid_plays.row_count as valid_play_count
    from counted
    cross join valid_plays
)

select * from compared
where row_count != valid_play_count
