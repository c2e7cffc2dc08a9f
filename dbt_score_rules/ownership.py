"""Ownership through dbt groups.

Owners are declared once, on the groups in models/_groups.yml (dbt refuses a group without an
owner), and every folder is assigned a group in dbt_project.yml. dbt-score's own has_owner and
seed_has_owner read `meta.owner` only, which would repeat each owner on every node.
"""

# No `from __future__ import annotations`: dbt-score reads the argument types at run time.
from dbt_score import Model, RuleViolation, Seed, rule


@rule
def has_group_owner(model: Model) -> RuleViolation | None:
    """A model belongs to a group, and so to the group's owner."""
    if not model.group:
        return RuleViolation(message="Model is in no group (models/_groups.yml): no owner.")
    return None


@rule
def seed_has_group_owner(seed: Seed) -> RuleViolation | None:
    """A seed belongs to a group, and so to the group's owner."""
    if not seed._raw_values.get("group"):
        return RuleViolation(message="Seed is in no group (models/_groups.yml): no owner.")
    return None
