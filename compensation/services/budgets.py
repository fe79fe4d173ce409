"""Charging and releasing budgets: never more than a policy's monthly cap or a customer's 30-day cap.

The monthly charge is one conditional upsert (``spent + amount <= cap``), with a
check constraint on the row as the backstop, so concurrent acceptances cannot
overspend. The per-customer cap is checked under a lock on the customer's row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import F, Sum

from compensation.exceptions import Conflict
from compensation.models import BudgetCharge, Customer, PolicyMonthSpend
from compensation.selectors import CUSTOMER_CAP_DAYS, budget_month
from policies.models import Policy
from policies.serialization import money

ZERO = Decimal("0")


class BudgetExhausted(Conflict):
    def __init__(self, detail: str) -> None:
        super().__init__(f"{detail} Ask for new options.", "budget_exhausted")


def _month_spend_add(*, policy_id: int, month, amount: Decimal, cap: Decimal | None) -> bool:
    """Add ``amount`` to the month's spend unless that passes ``cap``; True when it was added."""
    table = connection.ops.quote_name(PolicyMonthSpend._meta.db_table)
    sql = (
        f"INSERT INTO {table} (policy_id, month, spent, cap) VALUES (%s, %s, %s, %s) "  # noqa: S608
        f"ON CONFLICT (policy_id, month) DO UPDATE SET spent = {table}.spent + EXCLUDED.spent, cap = EXCLUDED.cap "
        f"WHERE EXCLUDED.cap IS NULL OR {table}.spent + EXCLUDED.spent <= EXCLUDED.cap "
        "RETURNING spent"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [policy_id, month, amount, cap])
        return cursor.fetchone() is not None


def budget_charge(*, policy_id: int, customer_id: int, amount: Decimal, now: datetime) -> BudgetCharge:
    """Charge ``amount`` to the policy's month and to the customer's cap; :class:`BudgetExhausted` if either is short.

    Must run inside the caller's transaction: on any later error the charge rolls back with it.
    """
    caps = Policy.objects.filter(pk=policy_id).values_list("name", "monthly_cap", "per_customer_cap_30d").first()
    if caps is None:
        raise BudgetExhausted("The policy of this option no longer exists.")
    name, monthly_cap, customer_cap = caps
    if customer_cap is not None:
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
                f"Policy {name!r} allows {money(customer_cap)} per customer in {CUSTOMER_CAP_DAYS} days; "
                f"{money(max(ZERO, customer_cap - spent))} is left for this customer and this option costs "
                f"{money(amount)}."
            )
    month = budget_month(now)
    if (monthly_cap is not None and amount > monthly_cap) or not _month_spend_add(
        policy_id=policy_id, month=month, amount=amount, cap=monthly_cap
    ):
        raise BudgetExhausted(f"Policy {name!r} has not enough monthly budget left for this option ({money(amount)}).")
    return BudgetCharge.objects.create(
        policy_id=policy_id, customer_id=customer_id, amount=amount, created_at=now, month=month
    )


def budget_release(*, charge: BudgetCharge, now: datetime) -> bool:
    """Give a charge back to its month and customer cap (an approval refused); once only."""
    if not BudgetCharge.objects.filter(pk=charge.pk, released_at=None).update(released_at=now):
        return False
    PolicyMonthSpend.objects.filter(policy_id=charge.policy_id, month=charge.month).update(
        spent=F("spent") - charge.amount
    )
    return True
