"""Report selectors: what recovery costs and what it buys (figures as the OpenAPI schema describes them).

Every figure is an aggregate computed by the database; Python only divides
the few totals it gets back and merges grouped rows by their key. Counts go
by when things happened: incidents and offer sets by ``created_at``,
outcomes by ``recorded_at``, escalations by when they were opened, remedies
(``remedy_cost``) by when they were given (``given_at``: with the outcome, or
later, when a manager approved them).

A report's :class:`ReportScope` is its period (dates in the deployment's time
zone, both inclusive) and its filters. The ``policy`` filter keeps, of the
outcomes, those that chose the policy's option and those that declined a set
showing one; of the incidents and offer sets, those whose sets showed one;
of the remedies, the policy's own. A remedy is filtered and grouped by the
facts copied into it when given: its policy and kind, the incident's category,
the tier then and the agent who made the set. ``total_cost`` never includes it.

The ``event`` filter (an operational event's id) keeps the offer sets the event made and their
outcomes and shown options; of the incidents, escalations and remedies, those of the event's
incidents (its customers' incidents, whoever later asked again about one). Each is a semi-join
that starts from the event's customers (the index ``eventcustomer_work`` leads with the event),
so the filter reads the event's rows, not the table; an unknown id keeps nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone

from compensation.models import (
    Escalation,
    EventCustomer,
    Incident,
    Offer,
    OfferSet,
    Outcome,
    OutcomeOption,
    Remedy,
)
from compensation.periods import days_between, local_date, month_start
from compensation.roles import Role, user_has_role
from compensation.selectors import MonthBudget, policy_month_spent
from policies.choices import OfferKind
from policies.models import Category, Policy
from policies.money import money

ZERO = Decimal("0")
DEFAULT_DAYS = 30
EVENT_IDS = range(1, 2**63)  # what Event's BigAutoField can hold


# Aggregates over a month of outcomes: give sorts and hashes memory, and skip PostgreSQL's JIT,
# whose compile time exceeds what it saves on these queries. Plan each run for its own period and filters:
# the connection prepares statements it repeats (settings.py), and a generic plan made for any period
# could be far off for a skewed one.
REPORT_WORK_MEM = "64MB"


@contextmanager
def report_session() -> Iterator[None]:
    """One transaction for a report's queries, with settings for big aggregates (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true), "
                "set_config('plan_cache_mode', 'force_custom_plan', true)",
                [REPORT_WORK_MEM],
            )
        yield


# --- Scope ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportScope:
    """A period of dates in TIME_ZONE, both inclusive (either end may be open), and the filters."""

    since: date | None = None
    until: date | None = None
    category: Category | None = None
    tier: str | None = None
    policy: Policy | None = None
    event: int | None = None  # an operational event's id

    def between(self, field: str) -> Q:
        """``field`` within the period (see :func:`compensation.periods.days_between`)."""
        return days_between(field, since=self.since, until=self.until)


def report_period_default(*, since: date | None, until: date | None, today: date | None = None) -> tuple[date, date]:
    """By default the last 30 days including today; ``since`` alone runs to today (or to itself, if
    later), ``until`` alone covers the 30 days up to it. Days are in TIME_ZONE."""
    today = today or local_date(timezone.now())
    if until is None:
        until = today if since is None else max(since, today)
    if since is None:
        since = until - timedelta(days=DEFAULT_DAYS - 1)
    return since, until


def _shown_by_policy(scope: ReportScope) -> Q:
    """Outcomes whose set showed an option of the scope's policy, found from that policy's options
    (an index range on ``outcomeoption_policy_time``, not a probe per outcome)."""
    shown = OutcomeOption.objects.filter(scope.between("recorded_at"), policy=scope.policy).values("outcome_id")
    return Q(pk__in=shown)


def _event_offer_sets(event_id: int) -> QuerySet:
    """The ids of the offer sets an event made, read from its customers' rows (``eventcustomer_work``)."""
    return EventCustomer.objects.filter(event_id=event_id, offer_set__isnull=False).values("offer_set_id")


def _event_incidents(event_id: int) -> QuerySet:
    """The ids of the incidents of the event's offer sets (each found by its primary key)."""
    return OfferSet.objects.filter(pk__in=_event_offer_sets(event_id)).values("incident_id")


def _event_outcomes(event_id: int) -> QuerySet:
    """The ids of the outcomes of the event's offer sets (``Outcome.offer_set`` is unique: indexed)."""
    return Outcome.objects.filter(offer_set_id__in=_event_offer_sets(event_id)).values("pk")


def _scoped(
    queryset: QuerySet,
    scope: ReportScope,
    *,
    time: str,
    category: str,
    tier: str,
    policy: Callable[[Policy], Q],
    event: Callable[[int], Q],
) -> QuerySet:
    """``queryset`` within the scope's period (by ``time``) and filters (by these field paths)."""
    queryset = queryset.filter(scope.between(time))
    if scope.category is not None:
        queryset = queryset.filter(**{category: scope.category})
    if scope.tier:
        queryset = queryset.filter(**{tier: scope.tier})
    if scope.policy is not None:
        queryset = queryset.filter(policy(scope.policy))
    if scope.event is not None:
        # An id the column cannot hold names no event (and SQLite would not take it as a parameter).
        queryset = queryset.filter(event(scope.event)) if scope.event in EVENT_IDS else queryset.none()
    return queryset


def outcomes_in_scope(scope: ReportScope, queryset: QuerySet[Outcome] | None = None) -> QuerySet[Outcome]:
    def chose_or_declined(policy: Policy) -> Q:
        # Choosing the policy's option implies its set showed one: shown, and chosen or declined.
        return _shown_by_policy(scope) & (Q(policy=policy) | Q(accepted=False))

    queryset = Outcome.objects.all() if queryset is None else queryset
    return _scoped(
        queryset,
        scope,
        time="recorded_at",
        category="category",
        tier="tier",
        policy=chose_or_declined,
        event=lambda event_id: Q(offer_set_id__in=_event_offer_sets(event_id)),
    )


def _options_in_scope(scope: ReportScope) -> QuerySet[OutcomeOption]:
    return _scoped(
        OutcomeOption.objects.all(),
        scope,
        time="recorded_at",
        category="category",
        tier="tier",
        policy=lambda policy: Q(policy=policy),
        event=lambda event_id: Q(outcome_id__in=_event_outcomes(event_id)),
    )


def _incidents_in_scope(scope: ReportScope) -> QuerySet[Incident]:
    return _scoped(
        Incident.objects.all(),
        scope,
        time="created_at",
        category="category",
        tier="customer__tier",
        policy=lambda policy: Q(Exists(Offer.objects.filter(offer_set__incident=OuterRef("pk"), policy=policy))),
        event=lambda event_id: Q(pk__in=_event_incidents(event_id)),
    )


def _offer_sets_in_scope(scope: ReportScope) -> QuerySet[OfferSet]:
    return _scoped(
        OfferSet.objects.all(),
        scope,
        time="created_at",
        category="incident__category",
        tier="customer__tier",
        policy=lambda policy: Q(Exists(Offer.objects.filter(offer_set=OuterRef("pk"), policy=policy))),
        event=lambda event_id: Q(pk__in=_event_offer_sets(event_id)),
    )


def _escalations_in_scope(scope: ReportScope) -> QuerySet[Escalation]:
    return _scoped(
        Escalation.objects.all(),
        scope,
        time="created_at",
        category="incident__category",
        tier="customer__tier",
        policy=lambda policy: Q(policy=policy),
        event=lambda event_id: Q(incident_id__in=_event_incidents(event_id)),
    )


def _remedies_in_scope(scope: ReportScope) -> QuerySet[Remedy]:
    """The remedy items given within the period (by ``given_at``; the partial index ``remedy_given_time``)."""
    return _scoped(
        Remedy.objects.filter(status=Remedy.Status.GIVEN),
        scope,
        time="given_at",
        category="category",
        tier="tier",
        policy=lambda policy: Q(policy=policy),
        event=lambda event_id: Q(incident_id__in=_event_incidents(event_id)),
    )


def _remedy_costs(scope: ReportScope, key: str) -> dict[Any, Decimal]:
    """What the remedies given in the scope cost, by ``key`` (one grouped query)."""
    return {
        row[key]: row["remedy_cost"]
        for row in _remedies_in_scope(scope).order_by().values(key).annotate(remedy_cost=Sum("estimated_cost"))
    }


# --- Arithmetic -------------------------------------------------------------------------------


def _ratio(numerator: float | int | None, denominator: float | int | None) -> float | None:
    if not denominator:
        return None
    return float(numerator or 0) / float(denominator)


def _average(value: Any) -> float | None:
    return None if value is None else float(value)


# --- Summary ----------------------------------------------------------------------------------


def report_summary(scope: ReportScope) -> dict[str, Any]:
    """The period's totals, in five aggregate queries (incidents, offer sets, outcomes, escalations, remedies)."""
    incidents = _incidents_in_scope(scope).aggregate(
        incidents=Count("pk"), repeats=Count("pk", filter=Q(repeat_count__gte=2))
    )
    offer_sets = _offer_sets_in_scope(scope).aggregate(offer_sets=Count("pk"))
    outcomes = outcomes_in_scope(scope).aggregate(
        outcomes=Count("pk"),
        accepted=Count("pk", filter=Q(accepted=True)),
        total_cost=Sum("cost"),
        average_satisfaction=Avg("satisfaction"),
    )
    escalations = _escalations_in_scope(scope).aggregate(
        opened=Count("pk"), resolved=Count("pk", filter=Q(resolved_at__isnull=False))
    )
    remedies = _remedies_in_scope(scope).aggregate(remedy_cost=Sum("estimated_cost"))
    total_cost = outcomes["total_cost"] or Decimal("0")
    accepted = outcomes["accepted"]
    median = median_seconds_to_outcome(scope, count=outcomes["outcomes"])
    return {
        "since": scope.since.isoformat() if scope.since else None,
        "until": scope.until.isoformat() if scope.until else None,
        "incidents": incidents["incidents"],
        "offer_sets": offer_sets["offer_sets"],
        "outcomes": outcomes["outcomes"],
        "accepted": accepted,
        "declined": outcomes["outcomes"] - accepted,
        "acceptance_rate": _ratio(accepted, outcomes["outcomes"]),
        "total_cost": money(total_cost or ZERO),
        "average_cost_per_acceptance": money(total_cost / accepted) if accepted else None,
        "remedy_cost": money(remedies["remedy_cost"] or ZERO),
        "average_satisfaction": _average(outcomes["average_satisfaction"]),
        "escalations_opened": escalations["opened"],
        "escalations_resolved": escalations["resolved"],
        "repeat_incident_share": _ratio(incidents["repeats"], incidents["incidents"]),
        "median_seconds_to_outcome": median,
    }


def median_seconds_to_outcome(scope: ReportScope, *, count: int) -> float | None:
    """The median of (submitted - offer set created) over the scope's ``count`` outcomes, to the millisecond.

    The middle one or two values, read in order (``OFFSET``): on PostgreSQL an index-only scan of
    ``outcome_wait`` (migration 0005) stops halfway instead of sorting every outcome.
    """
    if not count:
        return None
    waits = list(
        outcomes_in_scope(scope)
        .annotate(wait=ExpressionWrapper(F("submitted_at") - F("offer_set_created_at"), output_field=DurationField()))
        .order_by("wait")
        .values_list("wait", flat=True)[(count - 1) // 2 : count // 2 + 1]
    )
    if not waits:  # the outcomes counted a moment ago are gone (deleted between the two queries)
        return None
    return round(sum(wait.total_seconds() for wait in waits) / len(waits), 3)


# --- Grouped reports --------------------------------------------------------------------------


def _grouped(scope: ReportScope, *, option_key: str, outcome_key: str, remedy_key: str) -> tuple[dict, dict, dict]:
    """Offered counts from the shown options, outcome figures from the outcomes and remedy costs from
    the remedies given, by group key."""
    offered = {
        row[option_key]: row["offered"]
        for row in _options_in_scope(scope).order_by().values(option_key).annotate(offered=Count("pk"))
    }
    outcomes = {
        row[outcome_key]: row
        for row in outcomes_in_scope(scope)
        .order_by()
        .values(outcome_key)
        .annotate(
            outcomes=Count("pk"),
            chosen=Count("pk", filter=Q(accepted=True)),
            total_cost=Sum("cost"),
            average_satisfaction=Avg("satisfaction"),
        )
    }
    return offered, outcomes, _remedy_costs(scope, remedy_key)


def _row(
    key_field: str,
    key_value: Any,
    offered: int,
    figures: dict | None,
    remedy_cost: Decimal | None,
    *,
    with_outcomes: bool,
) -> dict:
    figures = figures or {}
    chosen = figures.get("chosen", 0)
    row = {
        key_field: key_value,
        "offered": offered,
        "chosen": chosen,
        "acceptance_rate": _ratio(chosen, offered),
        "total_cost": money(figures.get("total_cost") or ZERO),
        "remedy_cost": money(remedy_cost or ZERO),
        "average_satisfaction": _average(figures.get("average_satisfaction")),
    }
    if with_outcomes:
        outcomes = figures.get("outcomes", 0)
        row.update(outcomes=outcomes, declined=outcomes - chosen, outcome_acceptance_rate=_ratio(chosen, outcomes))
    return row


def report_by_policy(scope: ReportScope, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per policy (every policy, active or not; the one filtered on, if any), by name.

    Each row adds the policy's budget for the month ``now`` is in (TIME_ZONE), whatever the period:
    ``monthly_cap`` as set now, ``month_spent`` (its month row) and ``month_remaining`` (cap - spent,
    never below 0.00); the cap and what remains are null where uncapped. Read with the policies, one query.
    """
    offered, outcomes, remedies = _grouped(
        scope, option_key="policy_id", outcome_key="policy_id", remedy_key="policy_id"
    )
    policies = Policy.objects.order_by("name", "pk")
    if scope.policy is not None:
        policies = policies.filter(pk=scope.policy.pk)
    month = month_start(now or timezone.now())
    rows = []
    for pk, name, cap, spent in policies.annotate(month_spent=policy_month_spent(month)).values_list(
        "pk", "name", "monthly_cap", "month_spent"
    ):
        row = _row(
            "policy",
            {"id": pk, "name": name},
            offered.get(pk, 0),
            outcomes.get(pk),
            remedies.get(pk),
            with_outcomes=False,
        )
        budget = MonthBudget(cap=cap, spent=spent)
        row.update(
            monthly_cap=money(budget.cap), month_spent=money(budget.spent), month_remaining=money(budget.remaining)
        )
        rows.append(row)
    return rows


def report_by_kind(scope: ReportScope) -> list[dict[str, Any]]:
    """One row per offer kind, in the order OfferKind lists them."""
    offered, outcomes, remedies = _grouped(scope, option_key="kind", outcome_key="kind", remedy_key="kind")
    return [
        _row("kind", kind, offered.get(kind, 0), outcomes.get(kind), remedies.get(kind), with_outcomes=False)
        for kind in OfferKind.values
    ]


def report_by_category(scope: ReportScope) -> list[dict[str, Any]]:
    """One row per category (the one filtered on, if any), by name; outcomes include the declined."""
    offered, outcomes, remedies = _grouped(
        scope, option_key="category_id", outcome_key="category_id", remedy_key="category_id"
    )
    categories = Category.objects.order_by("name", "pk")
    if scope.category is not None:
        categories = categories.filter(pk=scope.category.pk)
    return [
        _row(
            "category",
            {"id": pk, "slug": slug, "name": name},
            offered.get(pk, 0),
            outcomes.get(pk),
            remedies.get(pk),
            with_outcomes=True,
        )
        for pk, slug, name in categories.values_list("pk", "slug", "name")
    ]


def report_by_agent(scope: ReportScope) -> list[dict[str, Any]]:
    """One row per agent and manager, and anyone else whose sets got outcomes, or whose remedies were
    given, in the period, by username."""
    offered, outcomes, remedies = _grouped(scope, option_key="agent_id", outcome_key="agent_id", remedy_key="agent_id")
    others = {pk for pk in (*outcomes, *offered, *remedies) if pk is not None}
    users = (
        get_user_model()
        .objects.filter(Q(groups__name__in=[Role.AGENT, Role.MANAGER]) | Q(pk__in=others))
        .distinct()
        .order_by("username", "pk")
        .values_list("pk", "username")
    )
    return [
        _row(
            "agent",
            {"id": pk, "username": username},
            offered.get(pk, 0),
            outcomes.get(pk),
            remedies.get(pk),
            with_outcomes=True,
        )
        for pk, username in users
    ]


# --- The outcome list ---------------------------------------------------------------------------

OUTCOME_COLUMNS = (
    "id",
    "offer_set_id",
    "offer_set__incident_id",
    "customer__external_id",
    "agent__username",
    "category__slug",
    "tier",
    "choice",
    "accepted",
    "kind",
    "policy_id",
    "policy__name",
    "cost",
    "remedy_cost",
    "currency",
    "satisfaction",
    "coupon__code",
    "offer_set_created_at",
    "submitted_at",
    "recorded_at",
)
CSV_HEADER = (
    "id",
    "offer_set",
    "incident",
    "customer",
    "agent",
    "category",
    "tier",
    "choice",
    "accepted",
    "kind",
    "policy_id",
    "policy_name",
    "cost",
    "remedy_cost",
    "currency",
    "satisfaction",
    "coupon_code",
    "offer_set_created_at",
    "submitted_at",
    "recorded_at",
    "seconds_to_outcome",
)


def coupon_codes_whole(user: Any) -> bool:
    """Whether ``user`` sees the list's coupon codes whole: managers (and superusers) do; analysts see
    ``****`` and the last 4 characters (API.md, "Hardening")."""
    return user_has_role(user, Role.MANAGER)


def outcome_rows(queryset: QuerySet[Outcome]) -> QuerySet:
    """The list's columns as named tuples (one query, no model instances), newest first."""
    return queryset.order_by("-recorded_at", "-id").values_list(*OUTCOME_COLUMNS, named=True)


class OutcomeRowsPage:
    """The list's rows for a paginator: counted on the outcomes alone, sliced with their joins.

    Counting the joined rows makes PostgreSQL join every outcome of the filter to its set,
    customer, agent, category and policy just to count them.
    """

    ordered = True

    def __init__(self, outcomes: QuerySet[Outcome]) -> None:
        self.outcomes = outcomes
        self.rows = outcome_rows(outcomes)

    def count(self) -> int:
        return self.outcomes.order_by().count()

    def __getitem__(self, index: slice) -> Any:
        return self.rows[index]
