"""Charging and releasing budgets: never more than a policy's monthly cap or a customer's 30-day cap.

The monthly charge is one conditional upsert (``spent + amount <= cap``), with a
check constraint on the row as the backstop, so concurrent acceptances cannot
overspend. The per-customer cap is checked under a lock on the customer's row.

Managers are e-mailed once per policy and month when its spend reaches 80% of
its cap (:func:`budget_alerts_send`, a periodic task).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection
from django.db.models import F, Sum
from django.db.models.functions import Round
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from compensation.errors import BudgetExhausted
from compensation.models import BudgetCharge, Customer, PolicyMonthSpend
from compensation.periods import month_start
from compensation.selectors import BUDGET_ALERT_SHARE, CUSTOMER_CAP_DAYS, MonthBudget, manager_emails
from compensation.sql import typed_param
from policies.index import policy_index_get
from policies.models import Policy
from policies.money import money

logger = logging.getLogger("compensation")

ZERO = Decimal("0")
ALERTS_PER_RUN = 1000


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
        # One acceptance at a time per customer, so two cannot both fit under the cap. FOR NO KEY UPDATE, not
        # FOR UPDATE: rows that merely reference the customer (an outcome being recorded) take FOR KEY SHARE,
        # which FOR UPDATE would block; with a choice of the same set waiting on that recording's index tuple,
        # the two deadlocked.
        list(Customer.objects.select_for_update(no_key=True).filter(pk=customer_id).values_list("pk"))
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


# --- The 80% e-mail ---------------------------------------------------------------------------


def budget_alert_candidates(*, month: date) -> list[PolicyMonthSpend]:
    """The month's rows not alerted yet whose spend reached 80% of the policy's cap as it is now (a cap
    above zero: a cap of 0 is a policy switched off, not one running out), with their policy."""
    return list(
        PolicyMonthSpend.objects.filter(
            month=month,
            alerted_at=None,
            policy__monthly_cap__gt=0,
            # ROUND: exact on PostgreSQL, and on SQLite (floats) 0.10 x 0.80 is 0.08, as spent holds it.
            spent__gte=Round(F("policy__monthly_cap") * BUDGET_ALERT_SHARE, 4),
        )
        .select_related("policy")
        .order_by("policy_id")[:ALERTS_PER_RUN]
    )


def budget_alerts_send(*, now: datetime | None = None) -> int:
    """E-mail the managers, once per policy and month, that the month's spend reached 80% of its cap;
    returns how many policies they were told about.

    Each row is claimed before its e-mail goes out, by a conditional update committed on its own
    (``alerted_at IS NULL`` -> now): of two runs at once, or a run and a redelivery, one claims it and
    the other sends nothing. The claim is not held in a transaction around the send, because that
    row is the one every acceptance of the policy charges: an SMTP server taking its time must not
    hold up outcomes. If sending fails the claim is given back (``alerted_at`` -> NULL) and the next
    run tries again; a process killed between claim and send leaves the month marked and sends
    nothing (at most once). Without any manager to e-mail, the month is marked and a warning logged,
    as for the other notifications.
    """
    now = now or timezone.now()
    month = month_start(now)
    candidates = budget_alert_candidates(month=month)
    if not candidates:
        return 0
    recipients = manager_emails()
    sent = 0
    for row in candidates:
        if not PolicyMonthSpend.objects.filter(pk=row.pk, alerted_at=None).update(alerted_at=now):
            continue  # another run claimed it
        if not recipients:
            logger.warning("policy %s passed 80%% of its monthly cap: no manager has an e-mail address", row.policy_id)
            continue
        try:
            _budget_alert_mail(row, recipients=recipients, month=month)
        except Exception:
            PolicyMonthSpend.objects.filter(pk=row.pk, alerted_at=now).update(alerted_at=None)
            logger.exception("budget alert for policy %s not sent; the next run tries again", row.policy_id)
            continue
        sent += 1
    return sent


def _budget_alert_mail(row: PolicyMonthSpend, *, recipients: list[str], month: date) -> None:
    policy = row.policy
    budget = MonthBudget(cap=policy.monthly_cap, spent=row.spent)
    context = {
        "policy": policy,
        "month": month,
        "next_month": (month + timedelta(days=32)).replace(day=1),
        "spent": money(budget.spent),
        "cap": money(budget.cap),
        "remaining": money(budget.remaining),
        "percent": budget.percent,
        "currency": settings.DEFAULT_CURRENCY,
        "url": settings.PUBLIC_BASE_URL + reverse("admin:policies_policy_change", args=[policy.pk]),
    }
    send_mail(
        f"Budget: {policy.name} has spent {budget.percent}% of its monthly cap ({month:%B %Y})",
        render_to_string("email/budget_alert.txt", context),
        None,
        recipients,
    )
