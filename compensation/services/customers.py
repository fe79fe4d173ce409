"""Writing customers: the one statement path every customer write takes, with its change rows.

An offer-set POST (``offer_sets.customer_upsert``), ``PUT /api/v1/customers/{external_id}/`` and
``POST /api/v1/customers/bulk/`` all call :func:`customers_upsert`. On PostgreSQL it is one
statement for any number of customers: a data-modifying CTE that locks the stored rows it reads
(``FOR NO KEY UPDATE``, in id order), inserts the new customers, updates the existing ones whose
values really change, and writes one ``CustomerChange`` row per changed field (old and new as JSON:
strings, decimals as ``"120.00"``, interests as a list), so no change can be stored unrecorded. On
SQLite (one writer at a time) the same is done with a read and a Python comparison.

A new customer makes no change rows: its first values are what it was created with (``created_at``).
``updated_at`` moves only when a field really changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from compensation.errors import InvalidInput
from compensation.models import Customer, CustomerChange
from compensation.sql import insert_values_sql
from policies.choices import Tier
from policies.money import cents, money

# The fields a customer write may set, in the order change rows are written.
FIELDS = ("name", "email", "tier", "lifetime_value", "interests")
# Those only the integration sets when CUSTOMER_FACTS is "trusted": an offer-set POST leaves them as stored
# (the e-mail it gives is taken for a new customer only).
TRUSTED_FIELDS = ("email", "tier", "lifetime_value", "interests")
DEFAULTS: dict[str, Any] = {"name": "", "email": "", "tier": Tier.STANDARD.value, "lifetime_value": Decimal("0.00")}
CUSTOMER_FACTS_TRUSTED = "trusted"  # CUSTOMER_FACTS: "agent" (default) or "trusted"
BULK_MAX = 1000
# A write that lost a race with a concurrent insert of the same new customer is made again; a second
# loss in a row is not a race.
ATTEMPTS = 3


@dataclass(frozen=True)
class CustomerWrite:
    """What to write to one customer: ``fields`` are set on a new customer and on an existing one;
    ``initial`` only on a new one (an existing customer keeps its values). Fields in neither keep their
    stored values, or take the defaults (``standard``, ``0``, ``[]``, empty name and e-mail)."""

    external_id: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    initial: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerWritten:
    customer: Customer
    created: bool


def customer_facts_mode() -> str:
    """``CUSTOMER_FACTS``, read at call time (tests and deployments switch it)."""
    return settings.CUSTOMER_FACTS


def offer_set_customer_write(customer: Mapping[str, Any]) -> CustomerWrite:
    """What an offer-set POST's validated customer object may write.

    ``agent`` mode: every field given, as in v1. ``trusted`` mode: only the name updates a stored
    customer; a new one also starts with the posted e-mail (tier, lifetime value and interests at their
    defaults): the integration sets the rest.
    """
    given = {name: customer[name] for name in FIELDS if name in customer}
    if customer_facts_mode() != CUSTOMER_FACTS_TRUSTED:
        return CustomerWrite(external_id=customer["external_id"], fields=given)
    fields = {name: value for name, value in given.items() if name not in TRUSTED_FIELDS}
    initial = {"email": given["email"]} if "email" in given else {}
    return CustomerWrite(external_id=customer["external_id"], fields=fields, initial=initial)


def change_value(name: str, value: Any) -> Any:
    """A field's value as a change row keeps it: JSON, with decimals as strings (``"120.00"``)."""
    if name == "lifetime_value":
        return money(Decimal(value))
    if name == "interests":
        return list(value or [])
    return value


def _customer(row: Sequence[Any], external_id: str) -> Customer:
    """A Customer from a returned row ``(id, name, email, tier, lifetime_value, interests, created_at,
    updated_at)``, as the ORM would have loaded it."""
    interests = row[5]
    if isinstance(interests, str):  # PostgreSQL hands jsonb over as text; Django's field decodes it
        interests = Customer._meta.get_field("interests").from_db_value(interests, None, connection)
    customer = Customer(
        id=row[0],
        external_id=external_id,
        name=row[1],
        email=row[2],
        tier=row[3],
        lifetime_value=cents(Decimal(str(row[4]))),
        interests=interests if isinstance(interests, list) else [],
        created_at=row[6],
        updated_at=row[7],
    )
    customer._state.adding = False
    return customer


# --- PostgreSQL: one statement ------------------------------------------------------------------


def _postgres_sql(*, relax_commit: bool, single: bool) -> str:
    """The statement: 11 parameters (the external id, then the five fields for a new customer and the five
    for an existing one, NULL where not given), the time and the username.

    For many customers the 11 parameters are arrays (``unnest``). For one they are plain values: PostgreSQL
    then plans the prepared statement once (a generic plan); with arrays of unknown length it would plan it
    anew on every call of the hot path (costing more than running it).
    """
    q = connection.ops.quote_name
    table, changes = q(Customer._meta.db_table), q(CustomerChange._meta.db_table)
    types = {
        "name": "varchar",
        "email": "varchar",
        "tier": "varchar",
        "lifetime_value": "numeric",
        "interests": "jsonb",
    }
    columns = ", ".join(q(name) for name in FIELDS)
    returned = f"id, external_id, {columns}, {q('created_at')}, {q('updated_at')}"
    names = ["external_id"] + [f"c_{n}" for n in FIELDS] + [f"u_{n}" for n in FIELDS]
    typed = ["varchar"] + [types[n] for n in FIELDS] * 2
    if single:
        source = "SELECT " + ", ".join(f"CAST(%s AS {t}) AS {n}" for n, t in zip(names, typed, strict=True))
    else:
        arrays = ", ".join(f"CAST(%s AS {t}[])" for t in typed)
        source = f"SELECT * FROM unnest({arrays}) AS i({', '.join(names)})"  # noqa: S608 - names only
    defaults = {**dict.fromkeys(FIELDS, "''"), "tier": "'standard'", "lifetime_value": "0", "interests": "'[]'"}
    created = ", ".join(f"COALESCE(i.c_{n}, {defaults[n]})" for n in FIELDS)
    merged = {n: f"COALESCE(i.u_{n}, c.{q(n)})" for n in FIELDS}
    assignments = ", ".join(f"{q(n)} = {merged[n]}" for n in FIELDS)
    differs = f"({', '.join(merged.values())}) IS DISTINCT FROM ({', '.join(f'c.{q(n)}' for n in FIELDS)})"
    as_json = {n: f"to_jsonb({{}}.{q(n)})" for n in FIELDS}
    as_json["lifetime_value"] = f"to_jsonb(CAST({{}}.{q('lifetime_value')} AS text))"
    as_json["interests"] = f"{{}}.{q('interests')}"
    values = ", ".join(
        f"({n}, '{name}', {as_json[name].format('old')}, {as_json[name].format('upd')})"
        for n, name in enumerate(FIELDS)
    )
    relax = ", set_config('synchronous_commit', 'off', true)" if relax_commit else ""
    return f"""
        WITH i AS ({source}),
        old AS MATERIALIZED (
            SELECT c.id, c.external_id, {", ".join(f"c.{q(n)}" for n in FIELDS)},
                   c.{q("created_at")}, c.{q("updated_at")}
            FROM {table} c WHERE c.external_id IN (SELECT external_id FROM i)
            ORDER BY c.id FOR NO KEY UPDATE
        ),
        ins AS (
            INSERT INTO {table} (external_id, {columns}, {q("created_at")}, {q("updated_at")})
            SELECT i.external_id, {created}, %s, %s
            FROM i WHERE NOT EXISTS (SELECT FROM old WHERE old.external_id = i.external_id)
                -- Read all of old (so take all its locks) before the first insert: two concurrent writes then
                -- wait for each other's rows in id order and their new ones in external_id order, never in a cycle.
                AND (SELECT count(*) FROM old) >= 0
            ORDER BY i.external_id
            ON CONFLICT (external_id) DO NOTHING
            RETURNING {returned}
        ),
        upd AS (
            UPDATE {table} c SET {assignments}, {q("updated_at")} = %s
            FROM old JOIN i ON i.external_id = old.external_id
            WHERE c.id = old.id AND {differs}
            RETURNING {", ".join(f"c.{column.strip()}" for column in returned.split(","))}
        ),
        changes AS (
            INSERT INTO {changes} ({q("customer_id")}, {q("at")}, {q("by")}, {q("field")}, {q("old")}, {q("new")})
            SELECT upd.id, %s, %s, v.field, v.old, v.new
            FROM upd JOIN old ON old.id = upd.id
            CROSS JOIN LATERAL (VALUES {values}) AS v(n, field, old, new)
            WHERE v.old IS DISTINCT FROM v.new
            ORDER BY upd.id, v.n
        )
        SELECT written.*{relax} FROM (
            SELECT {returned}, true AS created FROM ins
            UNION ALL SELECT {returned}, false FROM upd
            UNION ALL SELECT {returned}, false FROM old WHERE old.id NOT IN (SELECT id FROM upd)
        ) AS written
    """  # noqa: S608 - names from the models' metadata; every value is a parameter


_SQL: dict[tuple[bool, bool], str] = {}


def _postgres_write(writes: Sequence[CustomerWrite], *, by: str, now: datetime, relax_commit: bool) -> list[tuple]:
    single = len(writes) == 1
    sql = _SQL.get((relax_commit, single))
    if sql is None:
        sql = _SQL[relax_commit, single] = _postgres_sql(relax_commit=relax_commit, single=single)
    meta = Customer._meta

    def column(values: Sequence[Any], name: str) -> list[Any]:
        prep = meta.get_field(name).get_db_prep_save
        return [None if value is None else prep(value, connection) for value in values]

    created = [{**w.initial, **w.fields} for w in writes]
    columns: list[list[Any]] = [[w.external_id for w in writes]]
    columns += [column([c.get(name) for c in created], name) for name in FIELDS]
    columns += [column([w.fields.get(name) for w in writes], name) for name in FIELDS]
    params: list[Any] = [values[0] for values in columns] if single else columns
    params += [now, now, now, now, by]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- SQLite: one writer, a read and a comparison in Python ----------------------------------------

SQLITE_BATCH = 100


def _sqlite_write(writes: Sequence[CustomerWrite], *, by: str, now: datetime) -> list[tuple]:
    stored = {c.external_id: c for c in Customer.objects.filter(external_id__in=[w.external_id for w in writes])}
    new: list[Customer] = []
    updated: list[Customer] = []
    changes: list[CustomerChange] = []
    for write in writes:
        old = stored.get(write.external_id)
        if old is None:
            values = {**DEFAULTS, "interests": [], **write.initial, **write.fields}
            new.append(Customer(external_id=write.external_id, created_at=now, updated_at=now, **values))
            continue
        changed = [
            (name, change_value(name, getattr(old, name)), change_value(name, value))
            for name, value in write.fields.items()
            if change_value(name, getattr(old, name)) != change_value(name, value)
        ]
        if not changed:
            continue
        for name, before, after in sorted(changed, key=lambda c: FIELDS.index(c[0])):
            setattr(old, name, write.fields[name])
            changes.append(CustomerChange(customer=old, at=now, by=by, field=name, old=before, new=after))
        old.updated_at = now
        updated.append(old)
    with connection.cursor() as cursor:
        for start in range(0, len(new), SQLITE_BATCH):  # SQL, not bulk_create: auto_now would replace `now`
            batch = new[start : start + SQLITE_BATCH]
            sql, params = insert_values_sql(batch)
            cursor.execute(f"{sql} RETURNING id, external_id", params)
            ids = {external_id: pk for pk, external_id in cursor.fetchall()}
            for customer in batch:
                customer.pk = ids[customer.external_id]
                customer._state.adding = False
    if updated:
        Customer.objects.bulk_update(updated, [*FIELDS, "updated_at"], batch_size=SQLITE_BATCH)
    if changes:
        CustomerChange.objects.bulk_create(changes, batch_size=SQLITE_BATCH)
    created_ids = {c.external_id for c in new}
    rows = []
    for customer in [*new, *stored.values()]:
        values = [getattr(customer, name) for name in FIELDS]
        created = customer.external_id in created_ids
        rows.append((customer.pk, customer.external_id, *values, customer.created_at, customer.updated_at, created))
    return rows


def customers_upsert(
    *, writes: Sequence[CustomerWrite], by: str, now: datetime, relax_commit: bool = False
) -> list[CustomerWritten]:
    """Create or update the customers, each by ``external_id`` (distinct), with change rows for what changed.

    Returns each customer as stored afterwards, in the order of ``writes``. ``by`` is the username the
    change rows name. ``relax_commit`` (PostgreSQL): see :func:`compensation.services.offer_sets.customer_upsert`.
    """
    if not writes:
        return []
    found: dict[str, CustomerWritten] = {}
    pending = list(writes)
    with transaction.atomic(savepoint=False):  # no savepoint in the caller's transaction: no extra round trip
        for _ in range(ATTEMPTS):
            if connection.vendor == "postgresql":
                rows = _postgres_write(pending, by=by, now=now, relax_commit=relax_commit)
            else:
                rows = _sqlite_write(pending, by=by, now=now)
            for row in rows:
                customer = _customer([row[0], *row[2:9]], row[1])
                found[customer.external_id] = CustomerWritten(customer=customer, created=bool(row[9]))
            # A customer another transaction inserted after this statement's snapshot was neither inserted
            # (ON CONFLICT DO NOTHING) nor updated (not read): the next statement sees it, and updates it.
            pending = [w for w in pending if w.external_id not in found]
            if not pending:
                break
        else:
            raise RuntimeError(f"customers not written: {', '.join(w.external_id for w in pending)}")
    return [found[w.external_id] for w in writes]


def customer_put(
    *, external_id: str, fields: Mapping[str, Any], by: str, now: datetime | None = None
) -> CustomerWritten:
    """``PUT /api/v1/customers/{external_id}/``: create the customer or set the given fields (the others
    keep their values), recording what changed as ``by``."""
    now = now or timezone.now()
    with transaction.atomic():
        (written,) = customers_upsert(
            writes=[CustomerWrite(external_id=external_id, fields=dict(fields))], by=by, now=now
        )
    return written


def customers_bulk_put(
    *, customers: Sequence[Mapping[str, Any]], by: str, now: datetime | None = None
) -> tuple[int, int]:
    """``POST /api/v1/customers/bulk/``: every customer as :func:`customer_put` would, in one transaction
    (all or nothing) and one statement on PostgreSQL. Returns ``(created, updated)``: the customers that
    were new, and those that existed (whether or not a value changed).

    Raises :class:`InvalidInput` for more than :data:`BULK_MAX` customers, or an external_id given twice
    (at the later one: ``customers[5].external_id``).
    """
    if len(customers) > BULK_MAX:
        raise InvalidInput({"customers": [f"at most {BULK_MAX} customers in one request, got {len(customers)}"]})
    first: dict[str, int] = {}
    duplicates: dict[str, list[str]] = {}
    for index, customer in enumerate(customers):
        seen = first.setdefault(customer["external_id"], index)
        if seen != index:
            duplicates[f"customers[{index}].external_id"] = [
                f"{customer['external_id']!r} is also customers[{seen}]: give each customer once"
            ]
    if duplicates:
        raise InvalidInput(duplicates)
    writes = [
        CustomerWrite(external_id=customer["external_id"], fields={n: customer[n] for n in FIELDS if n in customer})
        for customer in customers
    ]
    now = now or timezone.now()
    with transaction.atomic():
        written = customers_upsert(writes=writes, by=by, now=now)
    created = sum(1 for w in written if w.created)
    return created, len(written) - created
