"""Reads on the run-time side: what budgets have left, what customers chose, offer sets."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Prefetch, QuerySet, Sum
from django.utils import timezone

from compensation.engine import Spending
from compensation.models import (
    AcceptanceStat,
    BudgetCharge,
    Offer,
    OfferSet,
    PerkGrant,
    PolicyMonthSpend,
)
from compensation.roles import Role, user_has_role

CUSTOMER_CAP_DAYS = 30
PERK_REPEAT_DAYS = 90


def budget_month(now: datetime) -> date:
    """First day of ``now``'s calendar month in the deployment's time zone."""
    return timezone.localtime(now).date().replace(day=1)


def spending_for(
    *,
    customer_id: int,
    customer_is_new: bool,
    monthly_capped: Collection[int],
    customer_capped: Collection[int],
    wants_perks: bool,
    now: datetime,
) -> Spending:
    """What the candidate policies spent this month, and what this customer already received.

    At most three queries, none for a customer seen for the first time.
    """
    month_spent: dict[int, Decimal] = {}
    if monthly_capped:
        month_spent = dict(
            PolicyMonthSpend.objects.filter(policy_id__in=monthly_capped, month=budget_month(now)).values_list(
                "policy_id", "spent"
            )
        )
    if customer_is_new:
        return Spending(month_spent=month_spent)
    customer_spent: dict[int, Decimal] = {}
    if customer_capped:
        customer_spent = dict(
            BudgetCharge.objects.filter(
                customer_id=customer_id,
                policy_id__in=customer_capped,
                created_at__gt=now - timedelta(days=CUSTOMER_CAP_DAYS),
                released_at__isnull=True,
            )
            .values("policy_id")
            .annotate(total=Sum("amount"))
            .values_list("policy_id", "total")
        )
    recent: frozenset[int] = frozenset()
    if wants_perks:
        recent = frozenset(
            PerkGrant.objects.filter(
                customer_id=customer_id, granted_at__gt=now - timedelta(days=PERK_REPEAT_DAYS)
            ).values_list("perk_id", flat=True)
        )
    return Spending(month_spent=month_spent, customer_spent_30d=customer_spent, recent_perk_ids=recent)


def acceptance_stats_for(*, category_id: int) -> dict[int, tuple[int, int]]:
    """``{offer template id: (offered, chosen)}`` for one incident category."""
    return {
        template_id: (offered, chosen)
        for template_id, offered, chosen in AcceptanceStat.objects.filter(category_id=category_id).values_list(
            "offer_template_id", "offered", "chosen"
        )
    }


def offer_set_queryset() -> QuerySet[OfferSet]:
    return OfferSet.objects.select_related("customer", "incident__category", "escalation").prefetch_related(
        Prefetch("offers", queryset=Offer.objects.order_by("rank"))
    )


def offer_set_visible_to(user) -> QuerySet[OfferSet]:
    """Managers (and superusers) see every offer set; an agent only their own."""
    queryset = offer_set_queryset()
    if user_has_role(user, Role.MANAGER):
        return queryset
    return queryset.filter(created_by=user)
