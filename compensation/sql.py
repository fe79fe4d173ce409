"""SQL the ORM cannot write: multi-row inserts with ids back, and inserts chained in one statement (CTEs)."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection, models


@functools.cache
def _insert_select_template(
    model: type[models.Model], source: str | None, linked: tuple[tuple[str, str], ...], vendor: str
) -> tuple[str, tuple[models.Field, ...]]:
    meta = model._meta
    quote = connection.ops.quote_name
    expressions = dict(linked)
    names, values, bound = [], [], []
    for f in meta.concrete_fields:
        if f is meta.auto_field:
            continue
        names.append(quote(f.column))
        if f.column in expressions:
            values.append(expressions[f.column])
        else:
            values.append(f"CAST(%s AS {f.cast_db_type(connection)})")
            bound.append(f)
    sql = f"INSERT INTO {quote(meta.db_table)} ({', '.join(names)}) SELECT {', '.join(values)}"
    return sql + (f" FROM {source}" if source else ""), tuple(bound)


def insert_select_sql(
    instance: models.Model, *, source: str | None, columns: dict[str, str] | None = None
) -> tuple[str, list]:
    """``INSERT INTO <table> (...) SELECT <typed values> FROM <source>``, for chaining inserts in one statement.

    ``columns`` maps a column to an SQL expression over ``source`` (say, the
    id a previous insert returned); every other value is a typed parameter.
    The SQL is built once per model and shape. Only trusted names go in.
    """
    linked = tuple(sorted((columns or {}).items()))
    sql, bound = _insert_select_template(type(instance), source, linked, connection.vendor)
    return sql, [f.get_db_prep_save(getattr(instance, f.attname), connection) for f in bound]


def insert_values_sql(instances: list[Any]) -> tuple[str, list[Any]]:
    """One multi-row INSERT for unsaved instances of one model (every concrete field given)."""
    meta = instances[0]._meta
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field]  # the database numbers those
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES {', '.join([row] * len(instances))}"
    )
    params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for obj in instances for f in fields]
    return sql, params


def typed_param(field: models.Field) -> str:
    """A ``%s`` placeholder typed as ``field`` where the value stands alone (``SELECT %s AS x``, no column to type it).

    PostgreSQL needs the cast to know the type; SQLite compares untyped text as text, so it gets the cast
    too, except for dates, whose SQLite "type" would turn ``'2026-12-01'`` into the number 2026.
    """
    if connection.vendor == "sqlite" and isinstance(field, models.DateField):
        return "%s"
    return f"CAST(%s AS {field.cast_db_type(connection)})"
