"""Lint-only stand-ins for dbt's cross-database macros, rendered as PostgreSQL."""


def type_string() -> str:
    return "text"


def type_bigint() -> str:
    return "bigint"


def type_int() -> str:
    return "integer"


def type_float() -> str:
    return "float"


def type_timestamp() -> str:
    return "timestamp"


def type_numeric() -> str:
    return "numeric"


def type_boolean() -> str:
    return "boolean"


def hash(field: str) -> str:
    return f"md5(cast({field} as text))"


def concat(fields: list[str]) -> str:
    return f"concat({', '.join(fields)})"


def dateadd(datepart: str, interval: object, from_date_or_timestamp: str) -> str:
    return f"({from_date_or_timestamp} + ((interval '1 {datepart}') * ({interval})))"


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"date_part('{datepart}', ({second_date}) - ({first_date}))"


def date_trunc(datepart: str, date: str) -> str:
    return f"date_trunc('{datepart}', {date})"


def current_timestamp() -> str:
    return "now()"


def safe_cast(field: str, type_: str) -> str:
    return f"cast({field} as {type_})"
