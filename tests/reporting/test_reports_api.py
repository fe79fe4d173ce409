"""The report endpoints (README, "Reports and the outcome list"; the OpenAPI schema) against hand-computed figures.

Data goes through the real API (POST an offer set, POST its outcome, recorded eagerly when the
test's on_commit callbacks run); the rows' timestamps are then moved with ``update()`` to put each
incident, offer set, outcome and escalation on a chosen day. Four small policies make the figures
easy to follow: Alpha (a 10.00 credit) and Beta (25.00 of free shipping) both answer late deliveries
and damaged items, so those sets show exactly two options; Gamma (a 5.00 credit) answers lost
parcels and escalates every one; Zulu answers a category nobody reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from compensation.models import (
    Customer,
    Escalation,
    Incident,
    OfferSet,
    Outcome,
    OutcomeOption,
    OutcomeSubmission,
)
from compensation.roles import Role
from policies.choices import OfferKind
from policies.models import Category, Policy
from reporting.serializers import (
    AgentReportSerializer,
    CategoryReportSerializer,
    KindReportSerializer,
    PolicyReportSerializer,
    SummaryReportSerializer,
)
from tests.factories import OfferTemplateFactory, PolicyFactory
from tests.reporting.catalog import Catalog

pytestmark = pytest.mark.django_db

SETS = "/api/v1/offer-sets/"
ESCALATIONS = "/api/v1/escalations/"
SUMMARY = "/api/v1/reports/summary/"
POLICIES = "/api/v1/reports/policies/"
KINDS = "/api/v1/reports/offer-kinds/"
CATEGORIES = "/api/v1/reports/categories/"
AGENTS = "/api/v1/reports/agents/"
REPORTS = (SUMMARY, POLICIES, KINDS, CATEGORIES, AGENTS)
SERIALIZERS = {
    SUMMARY: SummaryReportSerializer,
    POLICIES: PolicyReportSerializer,
    KINDS: KindReportSerializer,
    CATEGORIES: CategoryReportSerializer,
    AGENTS: AgentReportSerializer,
}
PERIOD = {"since": "2025-03-01", "until": "2025-03-10"}
SUMMARY_KEYS = {
    "since",
    "until",
    "incidents",
    "offer_sets",
    "outcomes",
    "accepted",
    "declined",
    "acceptance_rate",
    "total_cost",
    "average_cost_per_acceptance",
    "remedy_cost",
    "average_satisfaction",
    "escalations_opened",
    "escalations_resolved",
    "repeat_incident_share",
    "median_seconds_to_outcome",
}
GROUP_KEYS = {"offered", "chosen", "acceptance_rate", "total_cost", "remedy_cost", "average_satisfaction"}
OUTCOME_KEYS = {"outcomes", "declined", "outcome_acceptance_rate"}

Capture = Callable[..., Any]


# --- Building data through the API -----------------------------------------------------------


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(day: str, clock: str = "12:00:00") -> datetime:
    """That wall-clock time of that day in settings.TIME_ZONE."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=timezone.get_default_timezone())


def offer_set_post(client: Any, customer: str, category: Category, *, tier: str = "standard") -> dict[str, Any]:
    body = {
        "customer": {"external_id": customer, "name": "Ada Lovelace", "tier": tier},
        "incident": {"category": category.slug, "severity": 3, "order_value": "80.00"},
    }
    response = client.post(SETS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def label_of(offer_set: dict[str, Any], policy: Policy) -> str:
    return next(o["label"] for o in offer_set["options"] if o["policy"]["id"] == policy.pk)


def outcome_post(client: Any, offer_set: dict[str, Any], choice: str, satisfaction: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"choice": choice}
    if satisfaction is not None:
        body["satisfaction"] = satisfaction
    response = client.post(f"{SETS}{offer_set['id']}/outcome/", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def place(
    offer_set_id: str, *, created: datetime, submitted: datetime | None = None, recorded: datetime | None = None
) -> None:
    """Move the set, its incident and escalations to ``created``, and its outcome to ``submitted``/``recorded``."""
    OfferSet.objects.filter(pk=offer_set_id).update(created_at=created)
    Incident.objects.filter(offer_sets__pk=offer_set_id).update(created_at=created)
    Escalation.objects.filter(incident__offer_sets__pk=offer_set_id).update(created_at=created)
    if submitted is not None:
        OutcomeSubmission.objects.filter(offer_set_id=offer_set_id).update(submitted_at=submitted)
    if recorded is not None:
        Outcome.objects.filter(offer_set_id=offer_set_id).update(
            offer_set_created_at=created, submitted_at=submitted, recorded_at=recorded
        )
        OutcomeOption.objects.filter(outcome__offer_set_id=offer_set_id).update(recorded_at=recorded)


def case(
    client: Any,
    capture: Capture,
    *,
    customer: str,
    category: Category,
    created: datetime,
    tier: str = "standard",
    choose: Policy | str | None = None,
    satisfaction: int | None = None,
    seconds: float = 60,
    recorded: datetime | None = None,
    pending: bool = False,
) -> dict[str, Any]:
    """An offer set made at ``created``; with ``choose`` (a policy or "declined") its outcome, submitted
    ``seconds`` later and recorded at ``recorded`` (default: 5 s after submission), or left pending."""
    offer_set = offer_set_post(client, customer, category, tier=tier)
    if choose is None:
        place(offer_set["id"], created=created)
        return offer_set
    choice = choose if isinstance(choose, str) else label_of(offer_set, choose)
    submitted = created + timedelta(seconds=seconds)
    if pending:  # the on_commit callback that would record it never runs
        outcome_post(client, offer_set, choice, satisfaction)
        place(offer_set["id"], created=created, submitted=submitted)
        assert OutcomeSubmission.objects.get(offer_set_id=offer_set["id"]).status == "pending"
        return offer_set
    with capture(execute=True):
        outcome_post(client, offer_set, choice, satisfaction)
    assert Outcome.objects.filter(offer_set_id=offer_set["id"]).exists()
    place(offer_set["id"], created=created, submitted=submitted, recorded=recorded or submitted + timedelta(seconds=5))
    return offer_set


def get_ok(client: Any, url: str, params: dict[str, Any] | None = None) -> Any:
    response = client.get(url, params or {})
    assert response.status_code == 200, response.content
    return response.json()


def summary(client: Any, **params: Any) -> dict[str, Any]:
    return get_ok(client, SUMMARY, {**PERIOD, **params})


def rows_by(rows: list[dict[str, Any]], key: str, field: str | None = None) -> dict[Any, dict[str, Any]]:
    return {(row[key][field] if field else row[key]): row for row in rows}


def group_row(
    offered: int, chosen: int, rate: float | None, cost: str, satisfaction: float | None, remedy_cost: str = "0.00"
) -> dict:
    return {
        "offered": offered,
        "chosen": chosen,
        "acceptance_rate": rate,
        "total_cost": cost,
        "remedy_cost": remedy_cost,
        "average_satisfaction": satisfaction,
    }


def with_outcomes(row: dict, outcomes: int, declined: int, rate: float | None) -> dict:
    return {**row, "outcomes": outcomes, "declined": declined, "outcome_acceptance_rate": rate}


def figures(row: dict[str, Any]) -> dict[str, Any]:
    """A grouped row without its key (policy, kind, category, agent)."""
    return {k: v for k, v in row.items() if k in GROUP_KEYS | OUTCOME_KEYS}


EMPTY = group_row(0, 0, None, "0.00", None)
NO_BUDGET = {"monthly_cap": None, "month_spent": "0.00", "month_remaining": None}  # uncapped, nothing this month


# --- Fixtures --------------------------------------------------------------------------------


@dataclass
class World:
    catalog: Catalog
    sets: dict[str, dict[str, Any]]


@pytest.fixture
def world(
    catalog: Catalog, agent1: Any, agent2: Any, manager: Any, django_capture_on_commit_callbacks: Capture
) -> World:
    """Eight offer sets around the period 2025-03-01..2025-03-10 (UTC):

    ====  =======  ========  =======  ==========  ===========  ===  =======  ============================
    set   agent    customer  tier     category    outcome      sat  seconds  when
    ====  =======  ========  =======  ==========  ===========  ===  =======  ============================
    S0    agent-2  C-8       std      late        Alpha 10.00  -    60       recorded 02-28 23:59:59.999999
    S1    agent-1  C-1       std      late        Alpha 10.00  5    60       03-02
    S2    agent-1  C-2       gold     late        Beta 25.00   3    120      03-03
    S3    agent-2  C-3       std      damaged     declined     1    30.25    03-04
    S4    agent-2  C-1 (2nd) std      damaged     Alpha 10.00  -    300.5    03-05
    S5    agent-1  C-4       silver   lost        Gamma 5.00   4    90       03-06, escalation resolved
    S6    agent-1  C-5       gold     late        Beta 25.00   2    60       set 03-10 23:58, recorded 03-11
    S7    agent-1  C-6       platinum lost        pending      -    -        03-09, escalation open
    S8    agent-1  C-7       std      lost        none         -    -        02-28 23:59:59, escalation open
    ====  =======  ========  =======  ==========  ===========  ===  =======  ============================
    """
    c = catalog
    capture = django_capture_on_commit_callbacks
    sets = {
        "S0": case(
            agent2, capture, customer="C-8", category=c.late, choose=c.alpha,
            created=utc("2025-02-27T10:00:00"), recorded=utc("2025-02-28T23:59:59.999999"),
        ),
        "S1": case(
            agent1, capture, customer="C-1", category=c.late, choose=c.alpha, satisfaction=5,
            created=utc("2025-03-02T10:00:00"), seconds=60,
        ),
        "S2": case(
            agent1, capture, customer="C-2", tier="gold", category=c.late, choose=c.beta, satisfaction=3,
            created=utc("2025-03-03T09:00:00"), seconds=120,
        ),
        "S3": case(
            agent2, capture, customer="C-3", category=c.damaged, choose="declined", satisfaction=1,
            created=utc("2025-03-04T11:00:00"), seconds=30.25,
        ),
        "S4": case(
            agent2, capture, customer="C-1", category=c.damaged, choose=c.alpha,
            created=utc("2025-03-05T15:00:00"), seconds=300.5,
        ),
        "S5": case(
            agent1, capture, customer="C-4", tier="silver", category=c.lost, choose=c.gamma, satisfaction=4,
            created=utc("2025-03-06T08:00:00"), seconds=90,
        ),
        "S6": case(
            agent1, capture, customer="C-5", tier="gold", category=c.late, choose=c.beta, satisfaction=2,
            created=utc("2025-03-10T23:58:00"), recorded=utc("2025-03-11T00:00:00"),
        ),
        "S7": case(
            agent1, capture, customer="C-6", tier="platinum", category=c.lost, choose=c.gamma, pending=True,
            created=utc("2025-03-09T12:00:00"),
        ),
        "S8": case(agent1, capture, customer="C-7", category=c.lost, created=utc("2025-02-28T23:59:59")),
    }  # fmt: skip
    assert [sets[s]["incident"]["repeat_count"] for s in ("S1", "S4", "S5")] == [1, 2, 1]
    assert all(len(sets[s]["options"]) == 2 for s in ("S0", "S1", "S2", "S3", "S4", "S6"))
    escalation = sets["S5"]["escalation"]
    assert escalation is not None
    resolved = manager.post(f"{ESCALATIONS}{escalation['id']}/resolve/", {"resolution": "Called"}, format="json")
    assert resolved.status_code == 200, resolved.content
    assert Escalation.objects.filter(kind="senior_manager").count() == 3  # S5, S7, S8
    return World(catalog, sets)


# --- The summary -----------------------------------------------------------------------------


def test_summary_matches_the_hand_computed_figures(world: World, analyst: Any) -> None:
    data = summary(analyst)

    assert data == {
        "since": "2025-03-01",
        "until": "2025-03-10",
        "incidents": 7,  # S1..S7
        "offer_sets": 7,
        "outcomes": 5,  # S1..S5: S0 before, S6 after, S7 pending
        "accepted": 4,
        "declined": 1,
        "acceptance_rate": 0.8,
        "total_cost": "50.00",  # 10 + 25 + 10 + 5
        "average_cost_per_acceptance": "12.50",
        "remedy_cost": "0.00",  # no policy of the catalog has a remedy
        "average_satisfaction": 3.25,  # (5 + 3 + 1 + 4) / 4, S4 gave none
        "escalations_opened": 2,  # S5, S7
        "escalations_resolved": 1,  # S5
        "repeat_incident_share": 1 / 7,  # S4
        "median_seconds_to_outcome": 90.0,  # 30.25, 60, 90, 120, 300.5
    }


def test_summary_values_have_the_types_the_schema_declares(world: World, manager: Any) -> None:
    data = summary(manager)

    assert set(data) == SUMMARY_KEYS == set(SummaryReportSerializer().fields)
    for name, field in SummaryReportSerializer().fields.items():
        assert_schema_type(name, field, data[name])


def assert_schema_type(name: str, field: serializers.Field, value: Any) -> None:
    if value is None:
        assert field.allow_null, f"{name} is null but the schema says it never is"
    elif isinstance(field, serializers.FloatField):
        assert isinstance(value, float), (name, value)
    elif isinstance(field, serializers.IntegerField):
        assert isinstance(value, int), f"{name}: {value!r} is not the integer the schema declares"
    elif isinstance(field, serializers.CharField | serializers.DateField | serializers.ChoiceField):
        assert isinstance(value, str), f"{name}: {value!r} is not a string"
    else:  # a nested serializer
        assert isinstance(value, dict), (name, value)
        for key, child in field.fields.items():
            assert_schema_type(f"{name}.{key}", child, value[key])
    if isinstance(field, serializers.CharField) and name.endswith("cost") and value is not None:
        assert Decimal(value).as_tuple().exponent == -2, f"{name}: {value!r} is not a money string"


@pytest.mark.parametrize("url", [POLICIES, KINDS, CATEGORIES, AGENTS])
def test_grouped_rows_have_the_keys_and_types_the_schema_declares(world: World, manager: Any, url: str) -> None:
    rows = get_ok(manager, url, PERIOD)

    fields = SERIALIZERS[url]().fields
    assert rows
    for row in rows:
        assert set(row) == set(fields)
        for name, field in fields.items():
            assert_schema_type(name, field, row[name])


def test_average_cost_per_acceptance_rounds_half_up_to_cents(
    catalog: Catalog, agent1: Any, manager: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    """10.00 + 10.05 = 20.05 over two acceptances is 10.025: 10.03, not the banker's 10.02."""
    even = PolicyFactory(name="Even cents", categories=[catalog.unused])
    OfferTemplateFactory(policy=even, kind=OfferKind.GIFT, value=Decimal("10.00"))
    odd = PolicyFactory(name="Odd cents", categories=[catalog.unused])
    OfferTemplateFactory(policy=odd, kind=OfferKind.EXPEDITED_REPLACEMENT, value=Decimal("10.05"))
    day = utc("2025-03-03T12:00:00")
    for n, policy in enumerate([even, odd]):
        case(
            agent1, django_capture_on_commit_callbacks, customer=f"C-{n}", category=catalog.unused, choose=policy,
            created=day,
        )  # fmt: skip

    data = summary(manager)

    assert (data["total_cost"], data["accepted"]) == ("20.05", 2)
    assert data["average_cost_per_acceptance"] == "10.03"


def test_an_empty_period_has_zero_counts_and_null_rates(world: World, manager: Any) -> None:
    data = summary(manager, since="2024-01-01", until="2024-01-31")

    assert data == {
        "since": "2024-01-01",
        "until": "2024-01-31",
        "incidents": 0,
        "offer_sets": 0,
        "outcomes": 0,
        "accepted": 0,
        "declined": 0,
        "acceptance_rate": None,
        "total_cost": "0.00",
        "average_cost_per_acceptance": None,
        "remedy_cost": "0.00",
        "average_satisfaction": None,
        "escalations_opened": 0,
        "escalations_resolved": 0,
        "repeat_incident_share": None,
        "median_seconds_to_outcome": None,
    }


def test_only_declined_outcomes_have_a_rate_of_zero_and_no_cost_per_acceptance(world: World, manager: Any) -> None:
    data = summary(manager, category="damaged_item", since="2025-03-04", until="2025-03-04")

    assert (data["outcomes"], data["accepted"], data["declined"]) == (1, 0, 1)
    assert data["acceptance_rate"] == 0.0
    assert (data["total_cost"], data["average_cost_per_acceptance"]) == ("0.00", None)
    assert data["average_satisfaction"] == 1.0
    assert data["median_seconds_to_outcome"] == 30.25


def test_no_satisfaction_given_is_a_null_average(world: World, manager: Any) -> None:
    data = summary(manager, since="2025-03-05", until="2025-03-05")  # S4 only

    assert (data["outcomes"], data["average_satisfaction"]) == (1, None)


def test_median_of_an_even_count_is_the_mean_of_the_middle_two(world: World, manager: Any) -> None:
    assert summary(manager, category="damaged_item")["median_seconds_to_outcome"] == 165.375  # 30.25, 300.5
    data = summary(manager, since="2025-03-05", until="2025-03-06")  # S4 300.5, S5 90
    assert data["median_seconds_to_outcome"] == 195.25


def test_median_is_rounded_to_milliseconds(world: World, manager: Any) -> None:
    s5 = world.sets["S5"]["id"]
    created = utc("2025-03-06T08:00:00")
    Outcome.objects.filter(offer_set_id=s5).update(submitted_at=created + timedelta(seconds=45, microseconds=123700))

    assert summary(manager, category="lost_parcel")["median_seconds_to_outcome"] == 45.124


def test_median_counts_from_the_set_creation_to_the_submission_not_the_recording(world: World, manager: Any) -> None:
    s1 = world.sets["S1"]["id"]
    Outcome.objects.filter(offer_set_id=s1).update(recorded_at=utc("2025-03-09T00:00:00"))
    OutcomeOption.objects.filter(outcome__offer_set_id=s1).update(recorded_at=utc("2025-03-09T00:00:00"))

    data = summary(manager, since="2025-03-09", until="2025-03-09")

    assert (data["outcomes"], data["median_seconds_to_outcome"]) == (1, 60.0)


def test_repeat_incident_share_counts_incidents_with_a_repeat_count_of_two_or_more(world: World, manager: Any) -> None:
    s2 = world.sets["S2"]["incident"]["id"]
    Incident.objects.filter(pk=s2).update(repeat_count=3)
    assert summary(manager)["repeat_incident_share"] == 2 / 7
    Incident.objects.filter(pk=s2).update(repeat_count=1)
    assert summary(manager, category="damaged_item")["repeat_incident_share"] == 0.5


def test_pending_awaiting_approval_and_rejected_submissions_are_not_outcomes(
    catalog: Catalog, agent1: Any, manager: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    picky = PolicyFactory(name="Needs approval", categories=[catalog.unused])
    OfferTemplateFactory(policy=picky, kind=OfferKind.GIFT, value=Decimal("8.00"), requires_approval=True, order=0)
    day = utc("2025-03-03T12:00:00")
    case(
        agent1, django_capture_on_commit_callbacks, customer="C-1", category=catalog.unused, choose=catalog.zulu,
        pending=True, created=day,
    )  # fmt: skip
    waiting, rejected = (offer_set_post(agent1, f"C-{n}", catalog.unused) for n in (2, 3))
    for offer_set in (waiting, rejected):
        with django_capture_on_commit_callbacks(execute=True):
            outcome_post(agent1, offer_set, label_of(offer_set, picky), 5)
        place(offer_set["id"], created=day, submitted=day)
    approval = Escalation.objects.get(kind="approval", offer_set_id=rejected["id"])
    response = manager.post(f"{ESCALATIONS}{approval.pk}/reject/", {"reason": "Too generous"}, format="json")
    assert response.status_code == 200, response.content
    assert OutcomeSubmission.objects.get(offer_set_id=waiting["id"]).status == "awaiting_approval"
    assert OutcomeSubmission.objects.get(offer_set_id=rejected["id"]).status == "rejected"
    assert not Outcome.objects.exists()

    data = summary(manager)

    assert (data["incidents"], data["offer_sets"]) == (3, 3)
    assert (data["outcomes"], data["accepted"], data["declined"]) == (0, 0, 0)
    assert (data["total_cost"], data["median_seconds_to_outcome"]) == ("0.00", None)


# --- The period --------------------------------------------------------------------------------


@pytest.fixture
def boundary_sets(catalog: Catalog, agent1: Any, django_capture_on_commit_callbacks: Capture) -> dict[str, str]:
    """Outcomes (and their sets and incidents) at the very edges of 2025-03-01..2025-03-10 in TIME_ZONE."""
    instants = {
        "before": local("2025-03-01", "00:00:00") - timedelta(microseconds=1),
        "first": local("2025-03-01", "00:00:00"),
        "last_ms": local("2025-03-10", "23:59:59.999"),
        "last_us": local("2025-03-10", "23:59:59.999999"),
        "after": local("2025-03-11", "00:00:00"),
    }
    made = {}
    for n, (name, instant) in enumerate(instants.items()):
        made[name] = case(
            agent1,
            django_capture_on_commit_callbacks,
            customer=f"C-{n}",
            category=catalog.late,
            choose=catalog.alpha,
            created=instant,
            seconds=0,
            recorded=instant,
        )["id"]
    return made


def test_both_ends_of_the_period_are_inclusive_to_the_last_microsecond(
    boundary_sets: dict, catalog: Catalog, manager: Any
) -> None:
    data = summary(manager)

    assert (data["outcomes"], data["incidents"], data["offer_sets"]) == (3, 3, 3)  # first, last_ms, last_us
    alpha = get_ok(manager, POLICIES, {**PERIOD, "policy": catalog.alpha.pk})
    assert (alpha[0]["offered"], alpha[0]["chosen"]) == (3, 3)


def test_the_day_after_until_and_the_instant_before_since_are_out(boundary_sets: dict, manager: Any) -> None:
    assert summary(manager, since="2025-03-11", until="2025-03-11")["outcomes"] == 1  # "after" alone
    assert summary(manager, since="2025-02-28", until="2025-02-28")["outcomes"] == 1  # "before" alone
    assert summary(manager, since="2025-03-01", until="2025-03-01")["outcomes"] == 1  # "first" alone
    assert summary(manager, since="2025-03-10", until="2025-03-10")["outcomes"] == 2  # "last_ms", "last_us"


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_day_boundaries_follow_time_zone(
    settings: Any, zone: str, catalog: Catalog, agent1: Any, manager: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.TIME_ZONE = zone
    instants = {
        "before": local("2025-03-08", "00:00:00") - timedelta(seconds=1),
        "first": local("2025-03-08", "00:00:00"),
        "dst_night": local("2025-03-09", "03:30:00"),  # New York's clocks jump from 02:00 to 03:00 that night
        "last": local("2025-03-09", "23:59:59.999"),
        "after": local("2025-03-10", "00:00:00"),
    }
    for n, instant in enumerate(instants.values()):
        case(
            agent1,
            django_capture_on_commit_callbacks,
            customer=f"C-{n}",
            category=catalog.late,
            choose=catalog.alpha,
            created=instant,
            seconds=0,
            recorded=instant,
        )

    data = summary(manager, since="2025-03-08", until="2025-03-09")

    assert (data["outcomes"], data["incidents"], data["offer_sets"]) == (3, 3, 3)


def test_new_york_days_are_not_utc_days(
    settings: Any, catalog: Catalog, agent1: Any, manager: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    """03-09 in New York is 05:00Z on 03-09 (EST) to 04:00Z on 03-10 (EDT, after the clocks moved)."""
    settings.TIME_ZONE = "America/New_York"
    instants = [
        ("2025-03-09T04:59:59", False),  # 23:59:59 EST on 03-08
        ("2025-03-09T05:00:00", True),
        ("2025-03-10T03:59:59.999", True),  # 23:59:59.999 EDT on 03-09
        ("2025-03-10T04:00:00", False),  # 00:00 EDT on 03-10
    ]
    for n, (instant, _) in enumerate(instants):
        case(
            agent1,
            django_capture_on_commit_callbacks,
            customer=f"C-{n}",
            category=catalog.late,
            choose=catalog.alpha,
            created=utc(instant),
            seconds=0,
            recorded=utc(instant),
        )

    data = summary(manager, since="2025-03-09", until="2025-03-09")

    assert (data["outcomes"], data["incidents"]) == (2, 2)
    settings.TIME_ZONE = "UTC"
    assert summary(manager, since="2025-03-09", until="2025-03-09")["outcomes"] == 2  # the first two
    assert summary(manager, since="2025-03-10", until="2025-03-10")["outcomes"] == 2  # the last two


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch, settings: Any) -> datetime:
    """02:00Z on 2025-03-20: still 03-19 in New York."""
    settings.TIME_ZONE = "America/New_York"
    instant = utc("2025-03-20T02:00:00")
    monkeypatch.setattr(timezone, "now", lambda: instant)
    return instant


@pytest.mark.parametrize(
    ("params", "since", "until"),
    [
        ({}, "2025-02-18", "2025-03-19"),  # the last 30 days including today, in New York
        ({"since": "2025-03-01"}, "2025-03-01", "2025-03-19"),
        ({"since": "2025-04-01"}, "2025-04-01", "2025-04-01"),  # until = max(since, today)
        ({"until": "2025-03-10"}, "2025-02-09", "2025-03-10"),  # since = until - 29 days
        ({"until": "2025-06-30"}, "2025-06-01", "2025-06-30"),
        ({"since": "2025-01-01", "until": "2025-01-01"}, "2025-01-01", "2025-01-01"),
    ],
)
def test_the_default_period(frozen_now: datetime, manager: Any, params: dict, since: str, until: str) -> None:
    data = get_ok(manager, SUMMARY, params)

    assert (data["since"], data["until"]) == (since, until)
    for url in REPORTS:
        assert manager.get(url, params).status_code == 200


def test_the_default_period_includes_today_and_the_29_days_before(
    frozen_now: datetime, catalog: Catalog, agent1: Any, manager: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    for n, instant in enumerate(
        [
            local("2025-02-17", "23:59:59"),  # out
            local("2025-02-18", "00:00:00"),  # in
            local("2025-03-19", "21:59:00"),  # in: today, local
        ]
    ):
        case(
            agent1,
            django_capture_on_commit_callbacks,
            customer=f"C-{n}",
            category=catalog.late,
            choose=catalog.alpha,
            created=instant,
            seconds=0,
            recorded=instant,
        )

    data = get_ok(manager, SUMMARY)

    assert (data["since"], data["until"], data["outcomes"]) == ("2025-02-18", "2025-03-19", 2)


@pytest.mark.parametrize(
    ("params", "since", "until"),
    [
        ({"since": "1900-01-01", "until": "1900-01-01"}, "1900-01-01", "1900-01-01"),
        ({"since": "9998-12-31", "until": "9998-12-31"}, "9998-12-31", "9998-12-31"),
        ({"since": "9998-12-31"}, "9998-12-31", "9998-12-31"),
        ({"since": "1900-01-01", "until": "9998-12-31"}, "1900-01-01", "9998-12-31"),
        ({"until": "1900-01-01"}, "1899-12-03", "1900-01-01"),  # a default since may be earlier
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_the_extreme_dates_allowed_work_in_any_zone(
    settings: Any, manager: Any, params: dict, since: str, until: str, zone: str
) -> None:
    settings.TIME_ZONE = zone
    for url in REPORTS:
        response = manager.get(url, params)
        assert response.status_code == 200, (url, response.content)
    data = get_ok(manager, SUMMARY, params)
    assert (data["since"], data["until"], data["outcomes"]) == (since, until, 0)


# --- Filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"category": "damaged_item"},
            {
                "incidents": 2, "offer_sets": 2, "outcomes": 2, "accepted": 1, "declined": 1, "acceptance_rate": 0.5,
                "total_cost": "10.00", "average_cost_per_acceptance": "10.00", "average_satisfaction": 1.0,
                "escalations_opened": 0, "escalations_resolved": 0, "repeat_incident_share": 0.5,
                "median_seconds_to_outcome": 165.375,
            },
        ),
        (
            {"category": "lost_parcel"},
            {
                "incidents": 2, "offer_sets": 2, "outcomes": 1, "accepted": 1, "declined": 0, "acceptance_rate": 1.0,
                "total_cost": "5.00", "average_cost_per_acceptance": "5.00", "average_satisfaction": 4.0,
                "escalations_opened": 2, "escalations_resolved": 1, "repeat_incident_share": 0.0,
                "median_seconds_to_outcome": 90.0,
            },
        ),
        (
            {"tier": "standard"},  # S1, S3, S4
            {
                "incidents": 3, "offer_sets": 3, "outcomes": 3, "accepted": 2, "declined": 1,
                "acceptance_rate": 2 / 3, "total_cost": "20.00", "average_cost_per_acceptance": "10.00",
                "average_satisfaction": 3.0, "escalations_opened": 0, "escalations_resolved": 0,
                "repeat_incident_share": 1 / 3, "median_seconds_to_outcome": 60.0,
            },
        ),
        (
            {"tier": "platinum"},  # S7, pending
            {
                "incidents": 1, "offer_sets": 1, "outcomes": 0, "accepted": 0, "declined": 0, "acceptance_rate": None,
                "total_cost": "0.00", "average_cost_per_acceptance": None, "average_satisfaction": None,
                "escalations_opened": 1, "escalations_resolved": 0, "repeat_incident_share": 0.0,
                "median_seconds_to_outcome": None,
            },
        ),
        (
            {"policy": "alpha"},  # chose Alpha: S1, S4; declined a set showing Alpha: S3; sets: S1-S4, S6
            {
                "incidents": 5, "offer_sets": 5, "outcomes": 3, "accepted": 2, "declined": 1,
                "acceptance_rate": 2 / 3, "total_cost": "20.00", "average_cost_per_acceptance": "10.00",
                "average_satisfaction": 3.0, "escalations_opened": 0, "escalations_resolved": 0,
                "repeat_incident_share": 0.2, "median_seconds_to_outcome": 60.0,
            },
        ),
        (
            {"policy": "beta"},  # chose Beta: S2; declined: S3
            {
                "incidents": 5, "offer_sets": 5, "outcomes": 2, "accepted": 1, "declined": 1, "acceptance_rate": 0.5,
                "total_cost": "25.00", "average_cost_per_acceptance": "25.00", "average_satisfaction": 2.0,
                "escalations_opened": 0, "escalations_resolved": 0, "repeat_incident_share": 0.2,
                "median_seconds_to_outcome": 75.125,
            },
        ),
        (
            {"policy": "gamma"},
            {
                "incidents": 2, "offer_sets": 2, "outcomes": 1, "accepted": 1, "declined": 0, "acceptance_rate": 1.0,
                "total_cost": "5.00", "average_cost_per_acceptance": "5.00", "average_satisfaction": 4.0,
                "escalations_opened": 2, "escalations_resolved": 1, "repeat_incident_share": 0.0,
                "median_seconds_to_outcome": 90.0,
            },
        ),
        (
            {"policy": "zulu"},
            {
                "incidents": 0, "offer_sets": 0, "outcomes": 0, "accepted": 0, "declined": 0, "acceptance_rate": None,
                "total_cost": "0.00", "average_cost_per_acceptance": None, "average_satisfaction": None,
                "escalations_opened": 0, "escalations_resolved": 0, "repeat_incident_share": None,
                "median_seconds_to_outcome": None,
            },
        ),
        (
            {"category": "late_delivery", "policy": "beta", "tier": "gold"},  # S2; sets S2, S6
            {
                "incidents": 2, "offer_sets": 2, "outcomes": 1, "accepted": 1, "declined": 0, "acceptance_rate": 1.0,
                "total_cost": "25.00", "average_cost_per_acceptance": "25.00", "average_satisfaction": 3.0,
                "escalations_opened": 0, "escalations_resolved": 0, "repeat_incident_share": 0.0,
                "median_seconds_to_outcome": 120.0,
            },
        ),
    ],
)  # fmt: skip
def test_summary_filters(world: World, manager: Any, params: dict, expected: dict) -> None:
    params = resolve_policy(world, params)

    data = summary(manager, **params)

    # The catalog's policies have no remedy: remedy_cost is tested in test_remedy_cost.py.
    assert {k: v for k, v in data.items() if k not in {"since", "until"}} == {**expected, "remedy_cost": "0.00"}


def resolve_policy(world: World, params: dict[str, Any]) -> dict[str, Any]:
    """``policy`` names a catalog attribute in parametrize; the API takes the id."""
    if "policy" in params:
        params = {**params, "policy": getattr(world.catalog, params["policy"]).pk}
    return params


def test_tier_filters_outcomes_by_the_tier_when_recorded_and_the_rest_by_the_current_tier(
    world: World, manager: Any
) -> None:
    Customer.objects.filter(external_id="C-1").update(tier="gold")  # S1 and S4 were recorded as standard

    standard = summary(manager, tier="standard")
    gold = summary(manager, tier="gold")

    assert (standard["outcomes"], standard["incidents"], standard["offer_sets"]) == (3, 1, 1)  # outcomes S1, S3, S4
    assert (gold["outcomes"], gold["incidents"], gold["offer_sets"]) == (1, 4, 4)  # outcome S2; sets S1, S2, S4, S6


def test_tier_filters_escalations_by_the_customers_current_tier(world: World, manager: Any) -> None:
    Customer.objects.filter(external_id="C-6").update(tier="silver")  # S7's customer

    data = summary(manager, tier="silver")

    assert (data["escalations_opened"], data["escalations_resolved"], data["outcomes"]) == (2, 1, 1)


def test_policy_filter_counts_only_escalations_of_that_policy(world: World, manager: Any) -> None:
    Escalation.objects.filter(policy=world.catalog.gamma, resolved_at__isnull=True).update(policy=world.catalog.alpha)

    alpha = summary(manager, policy=world.catalog.alpha.pk)
    gamma = summary(manager, policy=world.catalog.gamma.pk)

    assert (alpha["escalations_opened"], alpha["escalations_resolved"]) == (1, 0)  # S7's (S8's is before the period)
    assert (gamma["escalations_opened"], gamma["escalations_resolved"]) == (1, 1)


def test_escalations_count_by_when_they_were_opened_not_resolved(world: World, manager: Any) -> None:
    Escalation.objects.filter(resolved_at__isnull=False).update(resolved_at=utc("2025-06-01T00:00:00"))
    Escalation.objects.filter(incident__offer_sets__pk=world.sets["S8"]["id"]).update(
        resolved_at=utc("2025-03-05T00:00:00")
    )

    data = summary(manager)

    assert (data["escalations_opened"], data["escalations_resolved"]) == (2, 1)  # S5 (resolved later), S7


def test_a_policy_filter_keeps_declined_outcomes_only_of_sets_that_showed_the_policy(
    world: World, manager: Any
) -> None:
    assert summary(manager, policy=world.catalog.gamma.pk, category="damaged_item")["outcomes"] == 0
    assert summary(manager, policy=world.catalog.beta.pk, category="damaged_item")["declined"] == 1


INVALID = [
    ({"since": "2025-13-01"}, "since"),
    ({"since": "yesterday"}, "since"),
    ({"until": "2025-02-30"}, "until"),
    ({"until": "2025-03-01T00:00:00"}, "until"),
    ({"since": "2025-03-10", "until": "2025-03-09"}, "until"),
    ({"since": "1899-12-31"}, "since"),
    ({"since": "0001-01-01", "until": "2025-01-01"}, "since"),
    ({"until": "9999-01-01"}, "until"),
    ({"until": "9999-12-31"}, "until"),
    ({"since": "9999-12-31"}, "since"),
    ({"category": "no_such_category"}, "category"),
    ({"category": "Late_Delivery"}, "category"),
    ({"tier": "diamond"}, "tier"),
    ({"tier": "Gold"}, "tier"),
    ({"policy": "999999"}, "policy"),
    ({"policy": "abc"}, "policy"),
    ({"policy": "1.5"}, "policy"),
    ({"policy": "-1"}, "policy"),
    ({"policy": "99999999999999999999999"}, "policy"),
]


@pytest.mark.parametrize(("params", "field"), INVALID)
def test_an_invalid_filter_is_a_400_under_its_field(catalog: Catalog, manager: Any, params: dict, field: str) -> None:
    for url in REPORTS:
        response = manager.get(url, params)

        assert response.status_code == 400, (url, response.content)
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert set(body) == {field}, (url, body)
        assert isinstance(body[field], list)
        assert body[field]
        assert all(isinstance(message, str) and message for message in body[field])


def test_several_invalid_filters_are_reported_together(catalog: Catalog, manager: Any) -> None:
    response = manager.get(SUMMARY, {"since": "nope", "tier": "diamond", "category": "nope", "policy": "x"})

    assert response.status_code == 400
    assert set(response.json()) == {"since", "tier", "category", "policy"}


def test_since_after_until_names_until(catalog: Catalog, manager: Any) -> None:
    response = manager.get(SUMMARY, {"since": "2025-03-02", "until": "2025-03-01"})

    assert response.status_code == 400
    assert response.json() == {"until": ["must be on or after since"]}


def test_unknown_parameters_and_empty_values_are_ignored(world: World, manager: Any) -> None:
    expected = summary(manager)

    for extra in ({"colour": "red"}, {"choice": "a"}, {"category": ""}, {"tier": ""}, {"policy": ""}, {"page": "9"}):
        assert summary(manager, **extra) == expected, extra


# --- Grouped reports ---------------------------------------------------------------------------


def test_policies_report_has_every_policy_by_name(world: World, analyst: Any) -> None:
    rows = get_ok(analyst, POLICIES, PERIOD)

    c = world.catalog
    assert [row["policy"] for row in rows] == [
        {"id": c.alpha.pk, "name": "Alpha credit"},
        {"id": c.beta.pk, "name": "Beta shipping"},
        {"id": c.gamma.pk, "name": "Gamma escalation"},
        {"id": c.zulu.pk, "name": "Zulu unused"},
    ]
    assert [figures(row) for row in rows] == [
        group_row(4, 2, 0.5, "20.00", 5.0),  # shown in S1-S4, chosen in S1 (5) and S4 (no satisfaction)
        group_row(4, 1, 0.25, "25.00", 3.0),
        group_row(1, 1, 1.0, "5.00", 4.0),
        EMPTY,
    ]


def test_policies_report_includes_inactive_policies(world: World, manager: Any) -> None:
    Policy.objects.filter(pk=world.catalog.alpha.pk).update(active=False)
    extra = PolicyFactory(name="Aardvark retired", active=False)

    rows = get_ok(manager, POLICIES, PERIOD)

    assert [row["policy"]["name"] for row in rows][:2] == ["Aardvark retired", "Alpha credit"]
    assert figures(rows[0]) == EMPTY
    assert rows[0]["policy"]["id"] == extra.pk
    assert rows[1]["offered"] == 4


def test_policies_report_with_a_policy_filter_has_only_that_policy(world: World, manager: Any) -> None:
    rows = get_ok(manager, POLICIES, {**PERIOD, "policy": world.catalog.alpha.pk})

    # Uncapped; charged this month (when the world was posted, whatever dates the rows were moved to): S0, S1, S4.
    assert rows == [
        {
            "policy": {"id": world.catalog.alpha.pk, "name": "Alpha credit"},
            **group_row(4, 2, 0.5, "20.00", 5.0),
            "monthly_cap": None,
            "month_spent": "30.00",
            "month_remaining": None,
        }
    ]
    zulu = get_ok(manager, POLICIES, {**PERIOD, "policy": world.catalog.zulu.pk})
    assert zulu == [{"policy": {"id": world.catalog.zulu.pk, "name": "Zulu unused"}, **EMPTY, **NO_BUDGET}]


def test_policies_report_with_tier_and_category_filters(world: World, manager: Any) -> None:
    gold = rows_by(get_ok(manager, POLICIES, {**PERIOD, "tier": "gold"}), "policy", "name")
    damaged = rows_by(get_ok(manager, POLICIES, {**PERIOD, "category": "damaged_item"}), "policy", "name")

    assert figures(gold["Alpha credit"]) == group_row(1, 0, 0.0, "0.00", None)  # shown in S2, not chosen
    assert figures(gold["Beta shipping"]) == group_row(1, 1, 1.0, "25.00", 3.0)
    assert figures(gold["Gamma escalation"]) == EMPTY
    assert figures(damaged["Alpha credit"]) == group_row(2, 1, 0.5, "10.00", None)  # S3 declined, S4 no rating
    assert figures(damaged["Beta shipping"]) == group_row(2, 0, 0.0, "0.00", None)


def test_offer_kinds_report_has_every_kind_in_declaration_order(world: World, analyst: Any) -> None:
    rows = get_ok(analyst, KINDS, PERIOD)

    assert [row["kind"] for row in rows] == list(OfferKind.values)
    by_kind = rows_by(rows, "kind")
    # fixed credits: Alpha's four and Gamma's one shown; chosen in S1 (5), S4 (-), S5 (4)
    assert figures(by_kind["fixed_credit"]) == group_row(5, 3, 0.6, "25.00", 4.5)
    assert figures(by_kind["free_shipping"]) == group_row(4, 1, 0.25, "25.00", 3.0)
    for kind in set(OfferKind.values) - {"fixed_credit", "free_shipping"}:
        assert figures(by_kind[kind]) == EMPTY


def test_offer_kinds_report_with_a_policy_filter(world: World, manager: Any) -> None:
    by_kind = rows_by(get_ok(manager, KINDS, {**PERIOD, "policy": world.catalog.alpha.pk}), "kind")

    assert figures(by_kind["fixed_credit"]) == group_row(4, 2, 0.5, "20.00", 5.0)
    assert figures(by_kind["free_shipping"]) == EMPTY


def test_categories_report_has_every_category_by_name_with_outcome_counts(world: World, analyst: Any) -> None:
    rows = get_ok(analyst, CATEGORIES, PERIOD)

    c = world.catalog
    assert [row["category"] for row in rows] == [
        {"id": c.damaged.pk, "slug": "damaged_item", "name": "Damaged item"},
        {"id": c.late.pk, "slug": "late_delivery", "name": "Late delivery"},
        {"id": c.lost.pk, "slug": "lost_parcel", "name": "Lost parcel"},
        {"id": c.unused.pk, "slug": "unused", "name": "Unused"},
    ]
    assert [figures(row) for row in rows] == [
        # S3 declined (1), S4 Alpha (no rating): the declined outcome counts in the satisfaction
        with_outcomes(group_row(4, 1, 0.25, "10.00", 1.0), 2, 1, 0.5),
        with_outcomes(group_row(4, 2, 0.5, "35.00", 4.0), 2, 0, 1.0),
        with_outcomes(group_row(1, 1, 1.0, "5.00", 4.0), 1, 0, 1.0),
        with_outcomes(EMPTY, 0, 0, None),
    ]


def test_categories_report_with_a_category_filter_has_only_that_category(world: World, manager: Any) -> None:
    rows = get_ok(manager, CATEGORIES, {**PERIOD, "category": "damaged_item"})

    assert [row["category"]["slug"] for row in rows] == ["damaged_item"]
    assert figures(rows[0]) == with_outcomes(group_row(4, 1, 0.25, "10.00", 1.0), 2, 1, 0.5)


def test_categories_report_with_a_policy_filter(world: World, manager: Any) -> None:
    by_slug = rows_by(get_ok(manager, CATEGORIES, {**PERIOD, "policy": world.catalog.alpha.pk}), "category", "slug")

    # Alpha's options shown: S3, S4 (damaged), S1, S2 (late); outcomes: S3 declined, S4, S1 (S2 chose Beta)
    assert figures(by_slug["damaged_item"]) == with_outcomes(group_row(2, 1, 0.5, "10.00", 1.0), 2, 1, 0.5)
    assert figures(by_slug["late_delivery"]) == with_outcomes(group_row(2, 1, 0.5, "10.00", 5.0), 1, 0, 1.0)
    assert figures(by_slug["lost_parcel"]) == with_outcomes(EMPTY, 0, 0, None)


def test_agents_report_has_agents_and_managers_by_username(world: World, manager: Any, client_for: Any) -> None:
    client_for("analyst", "aaron-analyst")  # not an agent: no row
    rows = get_ok(manager, AGENTS, PERIOD)

    users = {u.username: u.pk for u in Group.objects.get(name=Role.AGENT).user_set.all()}
    assert [row["agent"]["username"] for row in rows] == ["agent-1", "agent-2", "manager-1"]
    assert rows[0]["agent"] == {"id": users["agent-1"], "username": "agent-1"}
    assert [figures(row) for row in rows] == [
        with_outcomes(group_row(5, 3, 0.6, "40.00", 4.0), 3, 0, 1.0),  # S1, S2, S5
        with_outcomes(group_row(4, 1, 0.25, "10.00", 1.0), 2, 1, 0.5),  # S3 declined, S4
        with_outcomes(EMPTY, 0, 0, None),
    ]


def test_agents_report_keeps_a_former_agent_with_outcomes_in_the_period(world: World, manager: Any) -> None:
    former = Group.objects.get(name=Role.AGENT).user_set.get(username="agent-2")
    former.groups.clear()

    in_period = get_ok(manager, AGENTS, PERIOD)
    without = get_ok(manager, AGENTS, {"since": "2025-03-02", "until": "2025-03-03"})

    assert [row["agent"]["username"] for row in in_period] == ["agent-1", "agent-2", "manager-1"]
    assert figures(in_period[1]) == with_outcomes(group_row(4, 1, 0.25, "10.00", 1.0), 2, 1, 0.5)
    assert [row["agent"]["username"] for row in without] == ["agent-1", "manager-1"]


def test_agents_report_with_filters(world: World, manager: Any) -> None:
    by_name = rows_by(get_ok(manager, AGENTS, {**PERIOD, "category": "late_delivery"}), "agent", "username")

    assert figures(by_name["agent-1"]) == with_outcomes(group_row(4, 2, 0.5, "35.00", 4.0), 2, 0, 1.0)
    assert figures(by_name["agent-2"]) == with_outcomes(EMPTY, 0, 0, None)


@pytest.mark.parametrize("url", [POLICIES, KINDS, CATEGORIES, AGENTS])
def test_grouped_reports_on_an_empty_period_have_zero_rows(world: World, manager: Any, url: str) -> None:
    rows = get_ok(manager, url, {"since": "2024-01-01", "until": "2024-01-31"})

    assert rows
    for row in rows:
        assert figures(row) == (with_outcomes(EMPTY, 0, 0, None) if url in {CATEGORIES, AGENTS} else EMPTY)


def test_grouped_totals_agree_with_the_summary(world: World, manager: Any) -> None:
    total = summary(manager)
    by_policy = get_ok(manager, POLICIES, PERIOD)
    by_category = get_ok(manager, CATEGORIES, PERIOD)
    by_agent = get_ok(manager, AGENTS, PERIOD)

    assert sum(row["chosen"] for row in by_policy) == total["accepted"]
    assert sum(Decimal(row["total_cost"]) for row in by_policy) == Decimal(total["total_cost"])
    assert sum(row["outcomes"] for row in by_category) == total["outcomes"]
    assert sum(row["outcomes"] for row in by_agent) == total["outcomes"]
    assert sum(row["declined"] for row in by_agent) == total["declined"]


# --- Permissions -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", REPORTS)
def test_who_may_read_the_reports(catalog: Catalog, client_for: Any, api_client: Any, url: str) -> None:
    assert client_for("manager", "m").get(url).status_code == 200
    assert client_for("analyst", "a").get(url).status_code == (403 if url == AGENTS else 200)
    assert client_for("agent", "g").get(url).status_code == 403
    assert api_client.get(url).status_code == 401


def test_a_forbidden_report_is_not_validated_first(catalog: Catalog, client_for: Any) -> None:
    response = client_for("agent", "g").get(SUMMARY, {"since": "nope"})

    assert response.status_code == 403


def test_reports_are_not_paginated(world: World, manager: Any) -> None:
    rows = get_ok(manager, POLICIES, {**PERIOD, "page_size": 1})

    assert isinstance(rows, list)
    assert len(rows) == 4


# --- Query counts ------------------------------------------------------------------------------

# Token, the user's groups, the category and policy lookups of the filters, then the report's own:
# summary 5 aggregates (incidents, offer sets, outcomes, escalations, remedies) and the median's middle rows,
# grouped reports 3 (options, outcomes, remedies) plus the list of policies (with their spend this month, also
# when filtered on one), categories or users (none for the kinds).
# On PostgreSQL, report_session adds its settings statement (and, inside the test's transaction,
# a savepoint and its release).
SESSION_QUERIES = 3 if connection.vendor == "postgresql" else 0
REPORT_QUERIES = {
    url: n + SESSION_QUERIES for url, n in {SUMMARY: 10, POLICIES: 7, KINDS: 7, CATEGORIES: 8, AGENTS: 8}.items()
}


def _queries(client: Any, url: str, params: dict[str, Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


def test_report_query_counts_do_not_grow_with_the_rows(
    catalog: Catalog,
    agent1: Any,
    manager: Any,
    django_capture_on_commit_callbacks: Capture,
    django_assert_max_num_queries: Any,
) -> None:
    params = {**PERIOD, "category": "late_delivery", "tier": "standard", "policy": catalog.alpha.pk}

    def outcomes(first: int, last: int) -> None:
        for n in range(first, last):
            case(
                agent1,
                django_capture_on_commit_callbacks,
                customer=f"C-{n}",
                category=catalog.late,
                choose=catalog.alpha if n % 2 else "declined",
                satisfaction=n % 5 + 1,
                created=utc(f"2025-03-0{n % 9 + 1}T12:00:00"),
            )

    outcomes(0, 2)
    few = {url: _queries(manager, url, params) for url in REPORTS}
    outcomes(2, 10)
    many = {url: _queries(manager, url, params) for url in REPORTS}

    assert summary(manager, **params)["outcomes"] == 10
    assert many == few, (few, many)
    for url in REPORTS:
        with django_assert_max_num_queries(REPORT_QUERIES[url]):
            manager.get(url, params)


def test_median_is_exact_to_the_microsecond_before_rounding(world: World, manager: Any) -> None:
    """0.0012 s rounds to 0.001; timestamps rounded to whole milliseconds first would make it 0.002."""
    created = utc("2025-03-06T08:00:00.000400")
    Outcome.objects.filter(offer_set_id=world.sets["S5"]["id"]).update(
        offer_set_created_at=created, submitted_at=created + timedelta(microseconds=1200)
    )

    assert summary(manager, category="lost_parcel")["median_seconds_to_outcome"] == 0.001


def test_on_postgresql_the_median_has_its_index(need_postgres: None, db: None) -> None:
    """Migration 0005: the summary's median reads the middle of ``outcome_wait``, no sort of the period.
    An index of PostgreSQL only (an expression index, outside the models' state)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'outcome_wait'")
        (definition,) = cursor.fetchone()

    assert "(submitted_at - offer_set_created_at)" in definition
    assert "INCLUDE (recorded_at, submitted_at, offer_set_created_at)" in definition
