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
    shard = secrets.randbelow(STAT_SHARDS) if shard is None else shard
    q = connection.ops.quote_name
    statements = []
    if delta.offers:
        stat, templates = q(AcceptanceStat._meta.db_table), q(OfferTemplate._meta.db_table)
        keys = sorted(delta.offers)
        row = "(" + ", ".join([_INT] * 6) + ")"
        statements.append(
            (
                f"WITH v (category_id, template_id, shown_a, shown_b, shown_c, chosen) AS "  # noqa: S608
                f"(VALUES {', '.join([row] * len(keys))}) "
                f"INSERT INTO {stat} "
                f"(offer_template_id, category_id, shard, offered, shown_a, shown_b, shown_c, chosen) "
                f"SELECT t.id, v.category_id, {int(shard)}, v.shown_a + v.shown_b + v.shown_c, v.shown_a, v.shown_b, "
                f"v.shown_c, v.chosen FROM v JOIN {templates} t ON t.id = v.template_id "
                f"WHERE true ORDER BY v.category_id, t.id "
                f"ON CONFLICT (category_id, offer_template_id, shard) DO UPDATE SET "
                f"offered = {stat}.offered + EXCLUDED.offered, shown_a = {stat}.shown_a + EXCLUDED.shown_a, "
                f"shown_b = {stat}.shown_b + EXCLUDED.shown_b, shown_c = {stat}.shown_c + EXCLUDED.shown_c, "
                f"chosen = {stat}.chosen + EXCLUDED.chosen",
                [value for key in keys for value in (*key, *delta.offers[key])],
            )
        )
    stat, categories = q(PositionStat._meta.db_table), q(Category._meta.db_table)
    keys = sorted(delta.positions)
    row = "(" + ", ".join([_INT] * 5) + ")"
    statements.append(
        (
            f"WITH v (category_id, outcomes, chosen_a, chosen_b, chosen_c) AS "  # noqa: S608
            f"(VALUES {', '.join([row] * len(keys))}) "
            f"INSERT INTO {stat} (category_id, shard, outcomes, chosen_a, chosen_b, chosen_c) "
            f"SELECT c.id, {int(shard)}, v.outcomes, v.chosen_a, v.chosen_b, v.chosen_c "
            f"FROM v JOIN {categories} c ON c.id = v.category_id WHERE true ORDER BY c.id "
            f"ON CONFLICT (category_id, shard) DO UPDATE SET outcomes = {stat}.outcomes + EXCLUDED.outcomes, "
            f"chosen_a = {stat}.chosen_a + EXCLUDED.chosen_a, chosen_b = {stat}.chosen_b + EXCLUDED.chosen_b, "
            f"chosen_c = {stat}.chosen_c + EXCLUDED.chosen_c",
            [value for key in keys for value in (key, *delta.positions[key])],
        )
    )
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
