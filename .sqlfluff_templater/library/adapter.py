"""Lint-only `adapter`: a dispatched macro renders as a call of a SQL function of its name."""

from collections.abc import Callable


def dispatch(macro_name: str, macro_namespace: str | None = None) -> Callable[..., str]:
    def render(*args: object, **kwargs: object) -> str:
        call = f"{macro_name}({', '.join(str(a) for a in args)})"
        # date_spine is a whole select, the others are expressions
        return f"select spine_date from {call}" if macro_name == "date_spine" else call

    return render


def get_relation(database: object = None, schema: str | None = None,
                 identifier: str | None = None) -> str:
    """Lint the branch that reads an existing relation."""
    return f"{schema}.{identifier}"
