"""Writing what the ranking learns: the counters of compensation/learning.py, added by the recording worker."""

from __future__ import annotations

import secrets

from django.db import connection

from compensation.learning import StatisticsDelta
from compensation.models import AcceptanceStat, PositionStat
from policies.models import Category, OfferTemplate

# Rows per counter: a recording adds to one shard, chosen at random, so two recordings in one
# category wait on each other only when they draw the same shard. Readers sum the shards.
STAT_SHARDS = 8

_INT = "CAST(%s AS INTEGER)"


def learning_counters_add(*, delta: StatisticsDelta, shard: int | None = None) -> None:
    """Add recorded outcomes' counts to the offer and position counters: two upserts with atomic increments.

    Rows go in (category, template) and category order, so concurrent recordings lock them in the same
    order. Templates and categories deleted since their offer set was made are skipped.
    """
    if not delta:
        return
    shard = secrets.randbelow(STAT_SHARDS) if shard is None else int(shard)
    q = connection.ops.quote_name
    statements: list[tuple[str, list[int]]] = []
    if delta.offers:
        keys = sorted(delta.offers)
        sql = _increments_sql(
            table=q(AcceptanceStat._meta.db_table),
            values=("category_id", "template_id", "shown_a", "shown_b", "shown_c", "chosen"),
            rows=len(keys),
            join=f"JOIN {q(OfferTemplate._meta.db_table)} t ON t.id = v.template_id",
            inserted={
                "offer_template_id": "t.id",
                "category_id": "v.category_id",
                "shard": str(shard),
                "offered": "v.shown_a + v.shown_b + v.shown_c",
                **{name: f"v.{name}" for name in ("shown_a", "shown_b", "shown_c", "chosen")},
            },
            order="v.category_id, t.id",
            unique=("category_id", "offer_template_id", "shard"),
        )
        statements.append((sql, [value for key in keys for value in (*key, *delta.offers[key])]))
    keys = sorted(delta.positions)
    sql = _increments_sql(
        table=q(PositionStat._meta.db_table),
        values=("category_id", "outcomes", "chosen_a", "chosen_b", "chosen_c"),
        rows=len(keys),
        join=f"JOIN {q(Category._meta.db_table)} c ON c.id = v.category_id",
        inserted={
            "category_id": "c.id",
            "shard": str(shard),
            **{name: f"v.{name}" for name in ("outcomes", "chosen_a", "chosen_b", "chosen_c")},
        },
        order="c.id",
        unique=("category_id", "shard"),
    )
    statements.append((sql, [value for key in keys for value in (key, *delta.positions[key])]))
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)


def _increments_sql(
    *,
    table: str,
    values: tuple[str, ...],
    rows: int,
    join: str,
    inserted: dict[str, str],
    order: str,
    unique: tuple[str, ...],
) -> str:
    """``INSERT … SELECT`` from a ``VALUES`` list joined to the rows it refers to, in a fixed order, each
    counter column (all but the ``unique`` ones) added to the stored row's on conflict. Trusted names only."""
    row = "(" + ", ".join([_INT] * len(values)) + ")"
    counters = [name for name in inserted if name not in unique]
    return (
        f"WITH v ({', '.join(values)}) AS (VALUES {', '.join([row] * rows)}) "  # noqa: S608 - names only
        f"INSERT INTO {table} ({', '.join(inserted)}) SELECT {', '.join(inserted.values())} FROM v {join} "
        f"WHERE true ORDER BY {order} ON CONFLICT ({', '.join(unique)}) DO UPDATE SET "
        + ", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in counters)
    )
