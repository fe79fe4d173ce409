"""Reads on the run-time side: what budgets have left, what customers chose, offer sets, whom to tell."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import DecimalField, OuterRef, Prefetch, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from compensation.engine_types import Spending
from compensation.learning import LearningStats, OfferCounts, PositionCounts
from compensation.models import (
    AcceptanceStat,
    BudgetCharge,
    Customer,
    Escalation,
    Event,
    EventCustomer,
    Incident,
    Offer,
    OfferSet,
    OutcomeSubmission,
    PerkGrant,
    PolicyMonthSpend,
    PositionStat,
    Remedy,
    Simulation,
)
from compensation.periods import local_date, month_start
from compensation.roles import Role, user_has_role

CUSTOMER_CAP_DAYS = 30
REPEAT_SLACK = timedelta(minutes=1)
# Typed NULLs, so PostgreSQL can match the columns of the UNION ALL below.
NO_INT = "CAST(NULL AS BIGINT)"
NO_INTS = ", ".join([NO_INT] * 3)  # the three integer columns only the learning counters use
NO_NUMBER = "CAST(NULL AS NUMERIC)"
PERK_REPEAT_DAYS = 90
BUDGET_ALERT_SHARE = Decimal("0.80")  # of a monthly cap: managers are told once a month, the dashboard flags it


@dataclass(frozen=True)
class RequestFacts:
    """What the database says about this request's customer, policies and category."""

    repeat_count: int  # incidents in the window before this one
    same_category_repeat_count: int
    spending: Spending
    stats: LearningStats


def request_facts(
    *,
    customer_id: int,
    customer_is_new: bool,
    count_repeats: bool,
    category_id: int,
    occurred_at: datetime,
    window_days: int,
    monthly_capped: Collection[int],
    customer_capped: Collection[int],
    wants_perks: bool,
    now: datetime,
) -> RequestFacts:
    """Repeat counts, budget spending, recent perks and the learning counters in one round trip.

    A ``UNION ALL`` of small indexed reads, tagged by kind; the parts that
    cannot return anything (a new customer's history, uncapped policies) are
    left out. The learning counters are the category's offer counters and
    its position counters, each summed over its shards (compensation/learning.py).
    Only table and column names are interpolated, values are parameters.
    """
    parts: list[str] = []
    params: list[Any] = []
    q = connection.ops.quote_name

    def table(model: type) -> str:
        return q(model._meta.db_table)

    if not customer_is_new and count_repeats:
        incident = table(Incident)
        parts.append(
            f"SELECT 'r', COUNT(*), CAST(SUM(CASE WHEN {q('category_id')} = %s THEN 1 ELSE 0 END) AS NUMERIC), "
            f"{NO_INTS} FROM {incident} "
            f"WHERE {q('customer_id')} = %s AND {q('occurred_at')} > %s AND {q('occurred_at')} <= %s"
        )
        # The upper bound has a minute's slack: a concurrent request for this customer may have
        # read the clock a moment later and committed first; its incident still counts.
        params += [category_id, customer_id, occurred_at - timedelta(days=window_days), occurred_at + REPEAT_SLACK]
    if not customer_is_new:
        if customer_capped:
            marks = ", ".join(["%s"] * len(customer_capped))
            parts.append(
                f"SELECT 'c', {q('policy_id')}, SUM({q('amount')}), {NO_INTS} FROM {table(BudgetCharge)} "
                f"WHERE {q('customer_id')} = %s AND {q('created_at')} > %s AND {q('released_at')} IS NULL "
                f"AND {q('policy_id')} IN ({marks}) GROUP BY {q('policy_id')}"
            )
            params += [customer_id, now - timedelta(days=CUSTOMER_CAP_DAYS), *customer_capped]
        if wants_perks:
            parts.append(
                f"SELECT 'p', {q('perk_id')}, {NO_NUMBER}, {NO_INTS} FROM {table(PerkGrant)} "
                f"WHERE {q('customer_id')} = %s AND {q('granted_at')} > %s"
            )
            params += [customer_id, now - timedelta(days=PERK_REPEAT_DAYS)]
    if monthly_capped:
        marks = ", ".join(["%s"] * len(monthly_capped))
        parts.append(
            f"SELECT 'm', {q('policy_id')}, {q('spent')}, {NO_INTS} FROM {table(PolicyMonthSpend)} "
            f"WHERE {q('month')} = %s AND {q('policy_id')} IN ({marks})"
        )
        params += [month_start(now), *monthly_capped]
    # The shards' rows as they are (summed below): an index scan each, no aggregate to plan.
    parts.append(
        f"SELECT 's', {q('offer_template_id')}, CAST({q('shown_a')} AS NUMERIC), {q('shown_b')}, "
        f"{q('shown_c')}, {q('chosen')} FROM {table(AcceptanceStat)} WHERE {q('category_id')} = %s"
    )
    parts.append(
        f"SELECT 'q', {q('shard')}, CAST({q('outcomes')} AS NUMERIC), {q('chosen_a')}, "
        f"{q('chosen_b')}, {q('chosen_c')} FROM {table(PositionStat)} WHERE {q('category_id')} = %s"
    )
    params += [category_id, category_id]

    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()

    repeat = same = 0
    month_spent: dict[int, Decimal] = {}
    customer_spent: dict[int, Decimal] = {}
    perks: set[int] = set()
    offers: dict[int, OfferCounts] = {}
    positions = PositionCounts()
    for tag, key, first, second, third, fourth in rows:
        if tag == "s":
            row = OfferCounts(int(first), second, third, fourth)
            other = offers.get(key)
            offers[key] = row if other is None else OfferCounts(*map(sum, zip(other, row, strict=True)))
        elif tag == "q":
            positions = PositionCounts(*map(sum, zip(positions, (int(first), second, third, fourth), strict=True)))
        elif tag == "m":
            month_spent[key] = Decimal(str(first))
        elif tag == "c":
            customer_spent[key] = Decimal(str(first))
        elif tag == "p":
            perks.add(key)
        elif tag == "r":
            repeat, same = int(key or 0), int(first or 0)
    return RequestFacts(
        repeat_count=repeat,
        same_category_repeat_count=same,
        spending=Spending(month_spent=month_spent, customer_spent_30d=customer_spent, recent_perk_ids=frozenset(perks)),
        stats=LearningStats(offers=offers, positions=positions),
    )


def perk_grant_dates(*, customer_id: int) -> dict[int, date]:
    """When the customer last got each perk (a day in TIME_ZONE): the engine's "why not" says it."""
    rows = PerkGrant.objects.filter(customer_id=customer_id).values_list("perk_id", "granted_at")
    dates: dict[int, date] = {}
    for perk_id, granted_at in rows:
        day = local_date(granted_at)
        if perk_id not in dates or day > dates[perk_id]:
            dates[perk_id] = day
    return dates


def offer_set_queryset() -> QuerySet[OfferSet]:
    return OfferSet.objects.select_related("customer", "incident__category", "escalation").prefetch_related(
        Prefetch("offers", queryset=Offer.objects.order_by("rank")),
        Prefetch("incident__remedies", queryset=Remedy.objects.order_by("pk")),
        Prefetch(
            "submissions",
            queryset=OutcomeSubmission.objects.select_related("outcome__coupon").order_by("-submitted_at"),
        ),
    )


def offer_set_submission(offer_set: OfferSet) -> OutcomeSubmission | None:
    """The submission the set's ``outcome`` shows: the live one, else the last one rejected."""
    submissions = list(offer_set.submissions.all())  # prefetched, newest first
    live = next((s for s in submissions if s.status != OutcomeSubmission.Status.REJECTED), None)
    return live or (submissions[0] if submissions else None)


def offer_set_visible_to(user) -> QuerySet[OfferSet]:
    """Managers (and superusers) see every offer set; an agent only their own."""
    queryset = offer_set_queryset()
    if user_has_role(user, Role.MANAGER):
        return queryset
    return queryset.filter(created_by=user)


def customer_by_external_id(external_id: str) -> Customer | None:
    """The stored customer whose external_id is exactly this one; None for any other string (a part of one, an
    e-mail address, an id no customer can have): no lookup lists customers."""
    max_length = Customer._meta.get_field("external_id").max_length
    if not external_id or len(external_id) > max_length or "\x00" in external_id:
        return None
    return Customer.objects.filter(external_id=external_id).first()


def offer_sets_of_customer(user, customer: Customer, *, limit: int = 5) -> list[OfferSet]:
    """The customer's most recent offer sets that ``user`` may see (an agent: their own), newest first."""
    return list(offer_set_visible_to(user).filter(customer=customer).order_by("-created_at")[:limit])


def outcome_submission_visible_to(user, offer_set_id: Any) -> OutcomeSubmission | None:
    """The submission an offer set's outcome shows (the live one, else the last one rejected) when ``user``
    may see the set; one query, for a status that is asked for again and again."""
    submissions = OutcomeSubmission.objects.filter(offer_set_id=offer_set_id)
    if not user_has_role(user, Role.MANAGER):
        submissions = submissions.filter(offer_set__created_by=user)
    rows = list(submissions.select_related("offer", "approval", "outcome__coupon").order_by("-submitted_at"))
    live = next((s for s in rows if s.status != OutcomeSubmission.Status.REJECTED), None)
    return live or (rows[0] if rows else None)


def remedies_of_offer_set(offer_set_id: Any) -> list[Remedy]:
    """The remedy items of an offer set's incident, where each stands, in the order they were written (one
    query; the caller has checked the user may see the set)."""
    return list(Remedy.objects.filter(incident__offer_sets__pk=offer_set_id).order_by("pk"))


def escalation_list() -> QuerySet[Escalation]:
    return Escalation.objects.select_related("customer", "assigned_to").order_by("due_at", "pk")


def escalations_open_queue() -> QuerySet[Escalation]:
    """The managers' queue: open and acknowledged escalations, soonest due first, with what a manager reads to
    decide, in a fixed number of queries whatever their number: the incident and its category, the customer,
    the agent's offer set with its options (``offer_set.offers``) and its live choice (``offer_set.live_choices``,
    not rejected), and the remedies waiting for this approval (``remedies_waiting``)."""
    live = OutcomeSubmission.objects.exclude(status=OutcomeSubmission.Status.REJECTED).order_by("-submitted_at")
    return (
        escalation_list()
        .filter(status__in=(Escalation.Status.OPEN, Escalation.Status.ACKNOWLEDGED))
        .select_related("incident__category", "offer_set__created_by")
        .prefetch_related(
            Prefetch("offer_set__offers", queryset=Offer.objects.order_by("rank", "label")),
            Prefetch("offer_set__submissions", queryset=live, to_attr="live_choices"),
            Prefetch(
                "remedies",
                queryset=Remedy.objects.filter(status=Remedy.Status.AWAITING_APPROVAL).order_by("pk"),
                to_attr="remedies_waiting",
            ),
        )
    )


def customers_with_changes() -> QuerySet[Customer]:
    """Customers with their change rows, newest first (``CustomerChange.Meta.ordering``)."""
    return Customer.objects.prefetch_related("changes")


def learning_stats_by_category() -> dict[int, LearningStats]:
    """Every category's learning counters, summed over their shards, in two grouped queries (a simulation
    reads them once for all its incidents)."""
    offers: dict[int, dict[int, OfferCounts]] = {}
    rows = (
        AcceptanceStat.objects.values("category_id", "offer_template_id")
        .annotate(a=Sum("shown_a"), b=Sum("shown_b"), c=Sum("shown_c"), chosen=Sum("chosen"))
        .values_list("category_id", "offer_template_id", "a", "b", "c", "chosen")
    )
    for category_id, template_id, a, b, c, chosen in rows:
        offers.setdefault(category_id, {})[template_id] = OfferCounts(a, b, c, chosen)
    positions = {
        category_id: PositionCounts(outcomes, a, b, c)
        for category_id, outcomes, a, b, c in PositionStat.objects.values("category_id")
        .annotate(n=Sum("outcomes"), a=Sum("chosen_a"), b=Sum("chosen_b"), c=Sum("chosen_c"))
        .values_list("category_id", "n", "a", "b", "c")
    }
    return {
        category_id: LearningStats(
            offers=offers.get(category_id, {}), positions=positions.get(category_id, PositionCounts())
        )
        for category_id in offers.keys() | positions.keys()
    }


def manager_emails() -> list[str]:
    """Whom notifications go to: the active managers' e-mail addresses (those with one), each once, sorted."""
    users = get_user_model().objects.filter(groups__name=Role.MANAGER, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


# --- A policy's budget this month -------------------------------------------------------------


def policy_month_spent(month: date, *, policy: str = "pk") -> Coalesce:
    """What the policy (``policy``: the outer query's field holding its id) spent in ``month``, 0.00 when
    nothing: an expression to annotate rows with. A subquery on the unique (policy, month) row, so a list
    of policies costs one query however long it is."""
    spent = PolicyMonthSpend.objects.filter(policy_id=OuterRef(policy), month=month).values("spent")[:1]
    money_field = DecimalField(max_digits=12, decimal_places=2)
    return Coalesce(Subquery(spent, output_field=money_field), Value(Decimal("0.00")), output_field=money_field)


@dataclass(frozen=True)
class MonthBudget:
    """A policy's monthly cap (None: uncapped) and what it spent this month, with what follows from them."""

    cap: Decimal | None
    spent: Decimal

    @property
    def capped(self) -> bool:
        return self.cap is not None

    @property
    def remaining(self) -> Decimal | None:
        """``cap - spent``, never below 0.00 (a cap lowered under the month's spend leaves nothing); None uncapped."""
        return None if self.cap is None else max(self.cap - self.spent, Decimal("0.00"))

    @property
    def share(self) -> Decimal | None:
        """``spent / cap``; a cap of 0 is all used (1); None uncapped."""
        if self.cap is None:
            return None
        return self.spent / self.cap if self.cap else Decimal(1)

    @property
    def percent(self) -> int | None:
        """The share in whole percent, rounded down, so 79.9% never reads as the 80% that alerts."""
        share = self.share
        return None if share is None else int(share * 100)

    @property
    def near_cap(self) -> bool:
        """Spent at least 80% of the cap (``BUDGET_ALERT_SHARE``)."""
        share = self.share
        return share is not None and share >= BUDGET_ALERT_SHARE


def simulations_of(user: Any, *, now: datetime) -> QuerySet[Simulation]:
    """The user's own simulations still kept: one older than ``SIMULATION_KEEP_DAYS`` is gone for the API
    even before the periodic purge deletes it."""
    kept_since = now - timedelta(days=settings.SIMULATION_KEEP_DAYS)
    return Simulation.objects.filter(created_by=user, created_at__gte=kept_since)


def event_list() -> QuerySet[Event]:
    """Every event, newest first: events are the company's, so every manager sees them all."""
    return Event.objects.select_related("category", "created_by").order_by("-created_at", "-pk")


def event_total(event_id: int) -> int:
    return EventCustomer.objects.filter(event_id=event_id).count()
