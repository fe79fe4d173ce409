"""Charging and releasing budgets: never more than a policy's monthly cap or a customer's 30-day cap.

The monthly charge is one conditional upsert (``spent + amount <= cap``), with a
check constraint on the row as the backstop, so concurrent acceptances cannot
overspend. The per-customer cap is checked under a lock on the customer's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import F, Sum
from django.db.models.functions import Round

from compensation.errors import BudgetExhausted
from compensation.models import BudgetCharge, Customer, PolicyMonthSpend
from compensation.periods import month_start
from compensation.selectors import CUSTOMER_CAP_DAYS
from compensation.sql import typed_param
from policies.index import policy_index_get
from policies.models import Policy
from policies.money import money

ZERO = Decimal("0")


@dataclass(frozen=True)
class PolicyCaps:
    name: str
    monthly_cap: Decimal | None
    per_customer_cap_30d: Decimal | None


def policy_caps(policy_id: int) -> PolicyCaps | None:
    """The policy's current caps: from the in-memory index, or the table for a policy no longer active."""
    policy = policy_index_get().policies.get(policy_id)
    if policy is not None:
        return PolicyCaps(policy.name, policy.monthly_cap, policy.per_customer_cap_30d)
    row = Policy.objects.filter(pk=policy_id).values_list("name", "monthly_cap", "per_customer_cap_30d").first()
    return None if row is None else PolicyCaps(*row)


def month_spend_upsert_sql(rows: str) -> str:
    """The conditional upsert: add each row's spend to its month unless that passes the cap it carries.

    ``rows`` is a ``SELECT`` of columns named ``policy_id``, ``month``,
    ``spent`` and ``cap``. A row whose spend alone passes its cap is not
    inserted; an existing month's row is updated, and returned, only if the
    new total fits. Both ways of charging a budget use this one statement, so
    "fits the month" is defined here only.
    """
    table = connection.ops.quote_name(PolicyMonthSpend._meta.db_table)
    return (
        f"INSERT INTO {table} (policy_id, month, spent, cap) "  # noqa: S608 - names only
        f"SELECT policy_id, month, spent, cap FROM ({rows}) AS charged WHERE cap IS NULL OR spent <= cap "
        # ROUND: SQLite keeps decimals as floats, where 0.10 + 0.20 > 0.30.
        f"ON CONFLICT (policy_id, month) DO UPDATE SET spent = ROUND({table}.spent + EXCLUDED.spent, 2), "
        f"cap = EXCLUDED.cap WHERE EXCLUDED.cap IS NULL OR ROUND({table}.spent + EXCLUDED.spent, 2) <= EXCLUDED.cap"
    )


def budget_charge(
    *, policy_id: int, customer_id: int, amount: Decimal, now: datetime, caps: PolicyCaps | None = None
) -> BudgetCharge:
    """Charge ``amount`` to the policy's month and to the customer's cap; :class:`BudgetExhausted` if either is short.

    Must run inside the caller's transaction: on any later error the charge rolls back with it.
    ``caps`` are the policy's current caps, read here when not given.
    """
    caps = caps or policy_caps(policy_id)
    if caps is None:
        raise BudgetExhausted("The policy of this option no longer exists.")
    if caps.per_customer_cap_30d is not None:
        customer_cap = caps.per_customer_cap_30d
        # One acceptance at a time per customer, so two cannot both fit under the cap.
        list(Customer.objects.select_for_update().filter(pk=customer_id).values_list("pk"))
        spent = (
            BudgetCharge.objects.filter(
                customer_id=customer_id,
                policy_id=policy_id,
                created_at__gt=now - timedelta(days=CUSTOMER_CAP_DAYS),
                released_at=None,
            ).aggregate(total=Sum("amount"))["total"]
            or ZERO
        )
        if spent + amount > customer_cap:
            raise BudgetExhausted(
                f"Policy {caps.name!r} allows {money(customer_cap)} per customer in {CUSTOMER_CAP_DAYS} days; "
                f"{money(max(ZERO, customer_cap - spent))} is left for this customer and this option costs "
                f"{money(amount)}."
            )
    month = month_start(now)
    fields = [PolicyMonthSpend._meta.get_field(name) for name in ("policy", "month", "spent", "cap")]
    values = [typed_param(field) + f" AS {field.column}" for field in fields]
    sql = month_spend_upsert_sql(f"SELECT {', '.join(values)}") + " RETURNING spent"
    params = [policy_id, month, amount, caps.monthly_cap]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        added = cursor.fetchone() is not None
    if not added:
        raise BudgetExhausted(
            f"Policy {caps.name!r} has not enough monthly budget left for this option ({money(amount)})."
        )
    return BudgetCharge.objects.create(
        policy_id=policy_id, customer_id=customer_id, amount=amount, created_at=now, month=month
    )


def budget_release(*, charge: BudgetCharge, now: datetime) -> bool:
    """Give a charge back to its month and customer cap (an approval refused); once only."""
    if not BudgetCharge.objects.filter(pk=charge.pk, released_at=None).update(released_at=now):
        return False
    PolicyMonthSpend.objects.filter(policy_id=charge.policy_id, month=charge.month).update(
        spent=Round(F("spent") - charge.amount, 2)  # cents, as above: on SQLite 0.30 - 0.10 - 0.20 < 0
    )
    return True
