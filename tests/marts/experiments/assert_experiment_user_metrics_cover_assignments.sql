-- Every enrolled user has exactly one row in fct_experiment_user_metrics, with the assigned
-- variant: the mart neither drops nor invents users (returns the mismatching assignments).
with assignments as (
    select
        experiment_assignment_id,
        variant
    from {{ ref('stg_experiments__experiment_assignments') }}
),

user_metrics as (
    select
        experiment_assignment_id,
        variant
    from {{ ref('fct_experiment_user_metrics') }}
),

compared as (
    select
        assignments.experiment_assignment_id as assigned_id,
        user_metrics.experiment_assignment_id as mart_id,
        assignments.variant as assigned_variant,
        user_metrics.variant as mart_variant
    from assignments
    full outer join user_metrics
        on assignments.experiment_assignment_id = user_metrics.experiment_assignment_id
)

select * from compared
where
    assigned_id is null
    or mart_id is null
    or assigned_variant <> mart_variant
