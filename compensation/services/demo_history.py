"""The demo's history: 30 days of agents using the product, so a first run has figures to show.

``load_demo`` calls :func:`demo_history_load` once the demo pack and users are in. It replays a fixed plan
(:func:`history_plan`, from ``SEED``: the same customers, incidents and choices on every run, placed
relative to ``now``) through the services the API calls, each at its past time: customers through
:func:`~compensation.services.customers.customers_upsert`, offer sets through
:func:`~compensation.services.offer_sets.offer_set_create` (the ranking's draws seeded by set ids from the
plan), choices and declines through :func:`~compensation.services.outcomes.outcome_submit` and
:func:`~compensation.services.outcomes.outcomes_record`, and the managers' work through the escalation
services. Budgets, learning counters, coupons, credits, perk grants, remedies and follow-ups are therefore
what agents would have left behind. The periodic work is done as its tasks would have: the overdue
escalation is flagged (``escalations_flag_overdue``) a minute after its due time, the follow-ups due by
``now`` are marked sent at their time (or skipped: no e-mail address) without rendering hundreds of e-mails
nobody reads, and a month past 80% of its cap (none, with the demo pack) is claimed by ``budget_alerts_send``.

What happened in the past stays there: while the history is written, Celery tasks run in this process
(never queued for a worker to run later) and e-mails go to Django's dummy backend, so ``make run`` prints
no e-mail for an escalation closed weeks ago or a follow-up sent long since. Every history outcome is
recorded at least 25 hours before ``now``, so with the default follow-up delays every follow-up is sent
(or skipped) by ``now``; the customers of the two recent incidents (the escalations left open) have no
e-mail address, so theirs are skipped when due, silently.

At the end exactly two escalations are open: a senior-manager call past its SLA (already flagged as
overdue, as the periodic task does), and a refund waiting for a manager's approval, not yet due.

Loaded once: a database with any demo customer (``DEMO_CUSTOMER_PREFIX``) is left alone.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F

from compensation.errors import Conflict
from compensation.models import Customer, Escalation, FollowUp, Incident, OfferSet, Outcome, OutcomeSubmission
from compensation.services.budgets import budget_alerts_send
from compensation.services.customers import CustomerWrite, customers_upsert
from compensation.services.escalations import (
    escalation_acknowledge,
    escalation_approve,
    escalation_resolve,
    escalations_flag_overdue,
)
from compensation.services.follow_ups import NO_EMAIL
from compensation.services.offer_sets import offer_set_create
from compensation.services.outcomes import DECLINED, outcome_submit, outcomes_record
from policies.choices import Fault, OfferKind, Tier
from policies.index import PolicyIndex, policy_index_get

SEED = 15
DAYS = 30
DEMO_CUSTOMER_PREFIX = "DEMO-"
CUSTOMERS = 58
INCIDENTS = 200  # the regular ones, between EARLIEST and LATEST before now; two recent ones are added
EARLIEST = timedelta(days=29)  # inside a 30-day report whatever the time of day
LATEST = timedelta(hours=25)  # a day's follow-ups (sent 24 h after the outcome, by default) are sent by now
DECLINE_SHARE = 0.15
CHOICE_WEIGHTS = {"a": 0.55, "b": 0.30, "c": 0.15}  # the first option is taken most often
# Satisfaction (cumulative shares of 5, 4, 3, 2, 1 stars): higher when the customer took an option.
SATISFACTION_ACCEPTED = ((5, 0.42), (4, 0.80), (3, 0.94), (2, 0.99), (1, 1.0))
SATISFACTION_DECLINED = ((1, 0.20), (2, 0.55), (3, 0.85), (4, 0.97), (5, 1.0))
NOT_RATED_SHARE = 0.08
OVERDUE_CHECK = timedelta(minutes=1)  # how soon the periodic task flags an escalation past its due time
DUMMY_EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"

FIRST_NAMES = (
    "Maria", "James", "Aisha", "Liam", "Sofia", "Noah", "Chen", "Olivia", "Mateo", "Emma", "Ravi", "Hannah",
    "Lucas", "Zara", "Ethan", "Yuki", "Amara", "Daniel", "Ines", "Samuel", "Priya", "Oscar", "Leila", "Tom",
)  # fmt: skip
LAST_NAMES = (
    "Gonzalez", "Smith", "Khan", "Murphy", "Rossi", "Johnson", "Wei", "Brown", "Silva", "Muller", "Patel",
    "Novak", "Okafor", "Tanaka", "Dubois", "Larsen", "Haddad", "Kowalski", "Reyes", "Nguyen",
)  # fmt: skip
INTERESTS = (
    "sports", "cooking", "movies", "music", "books", "gaming", "travel", "fitness", "kids", "gardening",
    "coffee", "pets", "photography",
)  # fmt: skip
TIERS = ((Tier.STANDARD, 0.50), (Tier.SILVER, 0.25), (Tier.GOLD, 0.15), (Tier.PLATINUM, 0.10))
LIFETIME_VALUE = {
    Tier.STANDARD: (40, 900),
    Tier.SILVER: (400, 2500),
    Tier.GOLD: (1500, 6000),
    Tier.PLATINUM: (4000, 15000),
}
# Per category: how often it happens (relative), the order values it comes with, and what it looks like.
CATEGORIES: dict[str, tuple[int, tuple[int, int], str]] = {
    "late_delivery": (22, (20, 260), "Parcel arrived {n} days after the promised date."),
    "missed_delivery": (12, (20, 220), "Courier marked the parcel as attempted; nobody came."),
    "damaged_item": (12, (15, 400), "Item arrived broken; the box was crushed."),
    "wrong_item": (10, (15, 300), "Received a different size from the one ordered."),
    "wrong_shipping_method": (6, (20, 180), "Paid for express, shipped standard."),
    "double_charge": (8, (15, 95), "Card charged twice for the same order."),
    "billing_error": (8, (10, 90), "Charged after cancelling the subscription."),
    "service_outage": (9, (20, 90), "Streaming down for {n} hours in the evening."),
    "missed_appointment": (6, (0, 90), "Technician did not arrive in the booked slot."),
    "out_of_stock": (5, (20, 250), "Order accepted, then cancelled: out of stock."),
    "customer_error": (5, (15, 150), "Customer chose the wrong size; exchange needed."),
}
SEVERITIES = ((1, 0.08), (2, 0.35), (3, 0.72), (4, 0.93), (5, 1.0))  # cumulative shares, as the others
NOTES_ACCEPTED = (
    "", "", "Customer happy with this.", "Took it straight away.", "Thanked us for the quick fix.",
    "Wanted it on the account today.", "Calm once the fix was agreed.",
)  # fmt: skip
NOTES_DECLINED = (
    "", "Only wanted the fix.", "Not interested in credit.", "Still unhappy; wants it not to happen again.",
    "Said no thanks.", "Will think about closing the account.",
)  # fmt: skip
RESOLUTIONS = (
    "Called the customer; refund confirmed and a goodwill credit agreed.",
    "Spoke to the customer; they accepted the refund and an apology from the courier team.",
    "Called back within the hour; the customer is satisfied with the outcome.",
)


@dataclass(frozen=True)
class CustomerPlan:
    external_id: str
    name: str
    email: str  # empty: a phone customer, no e-mail on file
    tier: str
    lifetime_value: Decimal
    interests: tuple[str, ...]

    def fields(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "email": self.email,
            "tier": self.tier,
            "lifetime_value": self.lifetime_value,
            "interests": list(self.interests),
        }


@dataclass(frozen=True)
class IncidentPlan:
    ago: timedelta  # how long before now the agent made the offer set
    customer: int  # index into the plan's customers
    category: str
    severity: int
    fault: str
    correctable: bool
    order_value: Decimal
    description: str
    occurred_before: timedelta  # how long before the call the incident happened
    set_id: uuid.UUID  # the offer set's id: it seeds the ranking's draws
    think: timedelta  # from the options to the customer's answer
    pick: float  # the customer's draw: below DECLINE_SHARE declines, else picks by CHOICE_WEIGHTS
    satisfaction: int | None
    notes: str
    manager_pace: float  # the share of the SLA the manager takes to close its escalations
    keep_open: bool = False  # one of the two escalations left open at the end
    wants_escalation: bool = False  # the customer asks for the senior manager's call, when offered

    @property
    def declines(self) -> bool:
        return self.pick < DECLINE_SHARE


@dataclass(frozen=True)
class HistoryPlan:
    customers: tuple[CustomerPlan, ...]
    incidents: tuple[IncidentPlan, ...]  # oldest first


@dataclass(frozen=True)
class HistoryLoaded:
    created: bool  # False: a demo history was already there, and nothing was added
    customers: int
    offer_sets: int = 0
    outcomes: int = 0
    declined: int = 0
    escalations_open: int = 0
    overdue: int = 0

    def summary(self) -> str:
        if not self.created:
            return f"Demo history: already loaded ({self.customers} demo customers); nothing added."
        return (
            f"Demo history: {DAYS} days, {self.customers} customers, {self.offer_sets} offer sets, "
            f"{self.outcomes} outcomes ({self.declined} declined), {self.escalations_open} escalations open "
            f"({self.overdue} overdue)."
        )


def _weighted(rng: random.Random, cumulative: tuple[tuple[Any, float], ...]) -> Any:
    u = rng.random()
    return next(value for value, share in cumulative if u < share)


def _satisfaction(rng: random.Random, *, declined: bool) -> int | None:
    rated = rng.random() >= NOT_RATED_SHARE
    stars = _weighted(rng, SATISFACTION_DECLINED if declined else SATISFACTION_ACCEPTED)
    return stars if rated else None


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def history_plan(seed: int = SEED) -> HistoryPlan:
    """The customers and incidents to replay: a pure function of ``seed``, times relative to now."""
    rng = random.Random(seed)
    tiers = tuple(itertools.accumulate(share for _, share in TIERS))
    customers = []
    for number in range(1, CUSTOMERS + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        tier = TIERS[bisect.bisect(tiers, rng.random())][0]
        interests = tuple(sorted(rng.sample(INTERESTS, rng.choice((0, 1, 1, 2, 2, 3)))))
        customers.append(
            CustomerPlan(
                external_id=f"{DEMO_CUSTOMER_PREFIX}{number:04d}",
                name=f"{first} {last}",
                email=f"{first}.{last}.{number}@example.com".lower(),
                tier=tier,
                lifetime_value=_money(rng, *LIFETIME_VALUE[tier]),
                interests=interests,
            )
        )
    # Two phone customers (no e-mail) for the recent incidents whose escalations stay open.
    for number in (CUSTOMERS + 1, CUSTOMERS + 2):
        customers.append(
            CustomerPlan(
                external_id=f"{DEMO_CUSTOMER_PREFIX}{number:04d}",
                name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                email="",
                tier=Tier.GOLD,
                lifetime_value=_money(rng, 2000, 5000),
                interests=("travel",),
            )
        )

    slugs = list(CATEGORIES)
    weights = [CATEGORIES[slug][0] for slug in slugs]
    # Every category at least once, the rest by how often each happens.
    categories = slugs + rng.choices(slugs, weights=weights, k=INCIDENTS - len(slugs))
    rng.shuffle(categories)
    span = (EARLIEST - LATEST).total_seconds()
    agos = sorted((LATEST + timedelta(seconds=int(rng.random() * span)) for _ in range(INCIDENTS)), reverse=True)
    loyal = rng.sample(range(CUSTOMERS), 12)  # a few customers call more often than the rest
    last_category: dict[int, str] = {}
    incidents = []
    for ago, category in zip(agos, categories, strict=True):
        customer = rng.choice(loyal) if rng.random() < 0.35 else rng.randrange(CUSTOMERS)
        if customer in last_category and rng.random() < 0.25:
            category = last_category[customer]  # the same mistake again
        last_category[customer] = category
        incidents.append(_incident(rng, ago=ago, customer=customer, category=category))

    sla = timedelta(hours=settings.ESCALATION_SLA_HOURS)
    overdue = _incident(rng, ago=sla + timedelta(minutes=150), customer=CUSTOMERS, category="missed_delivery")
    incidents.append(
        replace(
            overdue, severity=5, correctable=False, order_value=Decimal("64.00"), pick=0.9, keep_open=True,
            wants_escalation=True, satisfaction=3, notes="Wants to hear from a manager before anything else.",
            description="Birthday gift never delivered; the party was yesterday.",
        )
    )  # fmt: skip
    waiting = _incident(rng, ago=sla / 2, customer=CUSTOMERS + 1, category="double_charge")
    incidents.append(
        replace(
            waiting, severity=3, correctable=True, order_value=Decimal("240.00"), pick=0.5, keep_open=True,
            satisfaction=4, notes="Refund above my limit: asked a manager to approve it.",
            description="Annual plan charged twice on the same day.",
        )
    )  # fmt: skip
    return HistoryPlan(customers=tuple(customers), incidents=tuple(incidents))


def _incident(rng: random.Random, *, ago: timedelta, customer: int, category: str) -> IncidentPlan:
    _, (low, high), description = CATEGORIES[category]
    severity = _weighted(rng, SEVERITIES)
    pick = rng.random()
    fault = Fault.CUSTOMER if category == "customer_error" else _weighted(
        rng, ((Fault.COMPANY, 0.75), (Fault.THIRD_PARTY, 0.93), (Fault.UNKNOWN, 1.0))
    )  # fmt: skip
    declined = pick < DECLINE_SHARE
    return IncidentPlan(
        ago=ago,
        customer=customer,
        category=category,
        severity=severity,
        fault=fault,
        correctable=severity < 4 or rng.random() < 0.6,
        order_value=_money(rng, low, high),
        description=description.format(n=rng.randint(2, 6)),
        occurred_before=timedelta(minutes=rng.randint(30, 36 * 60)),
        set_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        think=timedelta(seconds=rng.randint(60, 600)),
        pick=pick,
        satisfaction=_satisfaction(rng, declined=declined),
        notes=rng.choice(NOTES_DECLINED if declined else NOTES_ACCEPTED),
        manager_pace=0.2 + 0.6 * rng.random(),
        wants_escalation=rng.random() < 0.5,
    )


def offer_set_request(plan: IncidentPlan, customer: CustomerPlan, *, when: datetime) -> dict[str, Any]:
    """The offer set the agent asks for, as the API's validated input (``POST /api/v1/offer-sets/``) would
    be, except that the category is its slug (the replay puts the compiled category in its place)."""
    return {
        "customer": {"external_id": customer.external_id, **customer.fields()},
        "incident": {
            "category": plan.category,
            "severity": plan.severity,
            "fault": plan.fault,
            "correctable": plan.correctable,
            "order_value": plan.order_value,
            "currency": settings.DEFAULT_CURRENCY,
            "description": plan.description,
            "occurred_at": when - plan.occurred_before,
        },
    }


def _label(plan: IncidentPlan, offers: dict[str, str]) -> str:
    """The customer's answer, from their draw, among the labels this set offers (label -> kind)."""
    if plan.declines or not offers:
        return DECLINED
    if plan.wants_escalation:
        asked = [label for label, kind in sorted(offers.items()) if kind == OfferKind.ESCALATION]
        if asked:
            return asked[0]
    labels = sorted(offers)
    cumulative = list(itertools.accumulate(CHOICE_WEIGHTS.get(label, 0.05) for label in labels))
    u = (plan.pick - DECLINE_SHARE) / (1 - DECLINE_SHARE) * cumulative[-1]
    return labels[min(bisect.bisect(cumulative, u), len(labels) - 1)]


@contextlib.contextmanager
def _past_stays_past() -> Iterator[None]:
    """Celery tasks run here and now (none is queued for a worker to run later) and e-mails go nowhere."""
    conf = current_app.conf
    eager, backend = conf.task_always_eager, settings.EMAIL_BACKEND
    conf.task_always_eager = True
    settings.EMAIL_BACKEND = DUMMY_EMAIL_BACKEND
    try:
        yield
    finally:
        conf.task_always_eager = eager
        settings.EMAIL_BACKEND = backend


@dataclass
class _Replay:
    """The simulated clock: events (calls, the manager's work, the overdue check) run in time order."""

    now: datetime
    agent: Any
    manager: Any
    index: PolicyIndex
    events: list[tuple[datetime, int, Callable[[datetime], None]]] = field(default_factory=list)
    counter: itertools.count = field(default_factory=itertools.count)
    first_escalation: int = 0  # the last one before the history
    opened: dict[int, datetime] = field(default_factory=dict)  # escalation id -> when it was opened
    incident_times: dict[int, datetime] = field(default_factory=dict)  # incident id -> when it was posted

    def at(self, when: datetime, action: Callable[[datetime], None]) -> None:
        heapq.heappush(self.events, (when, next(self.counter), action))

    def run(self) -> None:
        while self.events:
            when, _, action = heapq.heappop(self.events)
            action(when)

    def note(self, escalation: Escalation, when: datetime) -> Escalation:
        self.opened[escalation.pk] = when
        return escalation

    def new_escalations(self, when: datetime) -> list[Escalation]:
        """Escalations opened since the last look, noted as opened ``when``."""
        rows = list(Escalation.objects.filter(pk__gt=max(self.opened, default=self.first_escalation)).order_by("pk"))
        for row in rows:
            self.opened[row.pk] = when
        return rows

    def flag_overdue(self, when: datetime) -> None:
        escalations_flag_overdue(now=when)

    def incident(self, plan: IncidentPlan, customer: CustomerPlan, when: datetime) -> None:
        category = self.index.categories.get(plan.category)
        if category is None:  # a pack without this category: the call never happened
            return
        body = offer_set_request(plan, customer, when=when)
        created = offer_set_create(
            user=self.agent,
            index=self.index,
            customer=body["customer"],
            incident={**body["incident"], "category": category},
            now=when,
            set_id=plan.set_id,
        )
        self.incident_times[created.offer_set.incident_id] = when
        escalations = [self.note(created.escalation, when)] if created.escalation is not None else []
        submitted = when + min(plan.think, timedelta(minutes=settings.OFFER_SET_TTL_MINUTES) / 2)
        offers = {offer.label: offer.kind for offer in created.offers}
        choice = _label(plan, offers)
        submission = self.submit(created.offer_set, choice, plan, offers, submitted)
        if submission.approval is not None:  # the option needs a manager's approval: the outcome waits
            escalations.append(self.note(submission.approval, submitted))
        if submission.status == OutcomeSubmission.Status.PENDING:
            recorded = submitted + timedelta(seconds=5)
            outcomes_record(submission_id=submission.pk, now=recorded)
            # Choosing the senior manager's call opens an escalation; a remedy above the agent's limit, an approval.
            if created.remedies or offers.get(submission.choice) == OfferKind.ESCALATION:
                escalations += self.new_escalations(recorded)
        for escalation in escalations:
            if not plan.keep_open:
                self.close_later(escalation, plan)
            elif escalation.due_at + OVERDUE_CHECK < self.now:  # the periodic task, a minute after it passed
                self.at(escalation.due_at + OVERDUE_CHECK, self.flag_overdue)

    def submit(
        self, offer_set: OfferSet, choice: str, plan: IncidentPlan, offers: dict[str, str], when: datetime
    ) -> OutcomeSubmission:
        """The customer's answer; an option the budget no longer covers gives way to the next, then to a decline."""
        answers = [choice] + ([label for label in sorted(offers) if label != choice] if choice != DECLINED else [])
        for answer in [*answers, DECLINED]:
            try:
                return outcome_submit(
                    user=self.agent,
                    offer_set_id=offer_set.pk,
                    choice=answer,
                    satisfaction=plan.satisfaction,
                    notes=plan.notes,
                    now=when,
                )
            except Conflict:
                continue
        raise AssertionError("a decline is always accepted")  # pragma: no cover

    def close_later(self, escalation: Escalation, plan: IncidentPlan) -> None:
        """The demo manager acknowledges and resolves, or approves, within the SLA."""
        sla = timedelta(hours=settings.ESCALATION_SLA_HOURS)
        opened = self.opened[escalation.pk]
        closes = opened + sla * plan.manager_pace
        if escalation.kind == Escalation.Kind.APPROVAL:
            self.at(closes, lambda when: self.approve(escalation.pk, when))
            return
        self.at(opened + sla * plan.manager_pace / 3, lambda when: self.acknowledge(escalation.pk, when))
        resolution = RESOLUTIONS[escalation.pk % len(RESOLUTIONS)]
        self.at(closes, lambda when: self.resolve(escalation.pk, resolution, when))

    def acknowledge(self, escalation_id: int, when: datetime) -> None:
        escalation_acknowledge(escalation_id=escalation_id, user=self.manager, now=when)

    def resolve(self, escalation_id: int, resolution: str, when: datetime) -> None:
        escalation_resolve(escalation_id=escalation_id, user=self.manager, resolution=resolution, now=when)

    def approve(self, escalation_id: int, when: datetime) -> None:
        escalation_approve(escalation_id=escalation_id, user=self.manager, now=when)
        waiting = OutcomeSubmission.objects.filter(approval_id=escalation_id, status=OutcomeSubmission.Status.PENDING)
        for submission_id in waiting.values_list("pk", flat=True):
            outcomes_record(submission_id=submission_id, now=when + timedelta(seconds=5))

    def stamp(self) -> None:
        """What the services stamp with the wall clock (an incident's and an escalation's ``created_at``,
        and the managers' notification, sent when it opened), set to the replay's times."""
        incidents = Incident.objects.in_bulk(list(self.incident_times))
        for pk, when in self.incident_times.items():
            incidents[pk].created_at = when
        Incident.objects.bulk_update(incidents.values(), ["created_at"])
        escalations = Escalation.objects.in_bulk(list(self.opened))
        for pk, when in self.opened.items():
            escalations[pk].created_at = escalations[pk].notified_at = when
        Escalation.objects.bulk_update(escalations.values(), ["created_at", "notified_at"])


def follow_ups_sent(*, sets: Any, now: datetime) -> None:
    """The follow-ups due by ``now``, as the periodic sender leaves them (without rendering hundreds of e-mails
    nobody reads): sent when due, or skipped when the set had no e-mail address."""
    due = FollowUp.objects.filter(outcome__offer_set__in=sets, status=FollowUp.Status.SCHEDULED, send_after__lte=now)
    due.filter(outcome__offer_set__email="").update(status=FollowUp.Status.SKIPPED, last_error=NO_EMAIL)
    due.update(status=FollowUp.Status.SENT, sent_at=F("send_after"), attempts=1)


def demo_history_loaded() -> int:
    """How many demo customers the database has (0: no demo history yet)."""
    return Customer.objects.filter(external_id__startswith=DEMO_CUSTOMER_PREFIX).count()


def demo_history_load(
    *, agent: Any, manager: Any, now: datetime, plan: HistoryPlan | None = None, index: PolicyIndex | None = None
) -> HistoryLoaded:
    """Replay the plan (default :func:`history_plan`) up to ``now``, in one transaction; once only.

    ``agent`` makes every offer set and records every answer; ``manager`` acknowledges, resolves and
    approves the escalations. Categories the loaded pack does not have are left out.
    """
    existing = demo_history_loaded()
    if existing:
        return HistoryLoaded(created=False, customers=existing)
    plan = plan or history_plan()
    index = index or policy_index_get()
    start = now - timedelta(days=DAYS)
    replay = _Replay(now=now, agent=agent, manager=manager, index=index)
    with _past_stays_past(), transaction.atomic():
        customers_upsert(
            writes=[CustomerWrite(external_id=c.external_id, fields=c.fields()) for c in plan.customers],
            by=agent.get_username(),
            now=start,
        )
        first = Escalation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        replay.first_escalation = first
        for incident in plan.incidents:
            customer = plan.customers[incident.customer]
            replay.at(now - incident.ago, lambda when, i=incident, c=customer: replay.incident(i, c, when))
        replay.run()
        replay.stamp()
        follow_ups_sent(sets=OfferSet.objects.filter(customer__external_id__startswith=DEMO_CUSTOMER_PREFIX), now=now)
        budget_alerts_send(now=now)  # a month past 80% of its cap was told about (quietly) already
        sets = OfferSet.objects.filter(customer__external_id__startswith=DEMO_CUSTOMER_PREFIX)
        outcomes = Outcome.objects.filter(offer_set__in=sets)
        still_open = Escalation.objects.filter(
            pk__gt=first, status__in=(Escalation.Status.OPEN, Escalation.Status.ACKNOWLEDGED)
        )
        return HistoryLoaded(
            created=True,
            customers=len(plan.customers),
            offer_sets=sets.count(),
            outcomes=outcomes.count(),
            declined=outcomes.filter(accepted=False).count(),
            escalations_open=still_open.count(),
            overdue=still_open.filter(due_at__lt=now).count(),
        )
