"""``offer_set_create`` and ``customer_upsert`` called directly, without HTTP, with ``now=``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.conf import settings

from compensation.models import Customer, Incident, Offer, OfferSet
from compensation.serializers import offer_set_input_validate
from compensation.services.offer_sets import customer_upsert, offer_set_create
from policies.choices import OfferKind
from policies.index import policy_index_get
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def agent(make_user: Any) -> Any:
    user, _ = make_user("agent-1", "agent")
    return user


@pytest.fixture
def late_delivery(db: None) -> Any:
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    policy = PolicyFactory(name="Late credit", categories=[category])
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("10.00"), order=0)
    OfferTemplateFactory(policy=policy, kind=OfferKind.FREE_SHIPPING, value=Decimal("9.95"), order=1)
    return category


def create(user: Any, *, now: datetime = NOW, external_id: str = "C-1", **incident: Any) -> Any:
    """Validate a request as the API does, then call the service with a fixed clock.

    The request arrives at ``now``: the API's validation reads the clock (an incident is at most
    INCIDENT_MAX_AGE_DAYS old and not in the future), so the clock stops there while it runs, whatever
    today is."""
    index = policy_index_get()
    data = {
        "customer": {"external_id": external_id},
        "incident": {"category": "late_delivery", "severity": 3, "occurred_at": now.isoformat(), **incident},
    }
    with time_machine.travel(now, tick=False):
        validated = offer_set_input_validate(data, index=index)
    return offer_set_create(
        user=user,
        index=index,
        customer=validated["customer"],
        incident=validated["incident"],
        now=now,
    )


# --- customer_upsert ------------------------------------------------------------------------


def test_customer_upsert_creates_then_updates_only_the_given_fields(db: None) -> None:
    customer, is_new = customer_upsert(
        external_id="C-1", fields={"name": "Ada", "tier": "gold", "interests": ["sports"]}, now=NOW, by="agent-1"
    )
    assert is_new
    assert (customer.name, customer.tier, customer.interests) == ("Ada", "gold", ["sports"])
    assert customer.lifetime_value == Decimal("0")

    later = NOW + timedelta(minutes=5)
    again, is_new = customer_upsert(
        external_id="C-1", fields={"lifetime_value": Decimal("250.00")}, now=later, by="agent-1"
    )

    assert not is_new
    assert again.pk == customer.pk
    stored = Customer.objects.get()
    assert (stored.name, stored.tier, stored.interests) == ("Ada", "gold", ["sports"])
    assert stored.lifetime_value == Decimal("250.00")
    assert (stored.created_at, stored.updated_at) == (NOW, later)


def test_customer_upsert_reports_an_existing_customer_as_not_new_even_at_the_same_instant(db: None) -> None:
    customer_upsert(external_id="C-1", fields={}, now=NOW, by="agent-1")

    _, is_new = customer_upsert(external_id="C-1", fields={}, now=NOW, by="agent-1")

    assert not is_new


# --- offer_set_create ---------------------------------------------------------------------------


def test_offer_set_create_stores_the_snapshot_at_the_given_time(late_delivery: Any, agent: Any) -> None:
    result = create(agent)

    offer_set = OfferSet.objects.get()
    assert offer_set == result.offer_set
    assert offer_set.created_at == NOW
    assert offer_set.expires_at == NOW + timedelta(minutes=settings.OFFER_SET_TTL_MINUTES)
    assert offer_set.created_by == agent
    assert offer_set.policy_revision == policy_index_get().revision
    stored = list(Offer.objects.filter(offer_set=offer_set).order_by("rank"))
    assert [(o.label, o.rank) for o in stored] == [("a", 0), ("b", 1)]
    assert [o.pk for o in result.offers] == [o.pk for o in stored]
    assert result.escalation is None
    assert result.not_offered is None


def test_offer_set_create_counts_repeats_inside_the_window_of_the_incident_time(late_delivery: Any, agent: Any) -> None:
    window = timedelta(days=settings.INCIDENT_REPEAT_WINDOW_DAYS)
    create(agent, now=NOW - window - timedelta(days=1), external_ref="T-old")
    create(agent, now=NOW - window + timedelta(days=1), external_ref="T-recent")

    incident = create(agent, external_ref="T-now").offer_set.incident

    assert (incident.repeat_count, incident.same_category_repeat_count) == (2, 2)


def test_offer_set_create_reuses_the_incident_of_the_same_ticket(late_delivery: Any, agent: Any) -> None:
    first = create(agent, external_ref="T-1", severity=2)
    second = create(agent, now=NOW + timedelta(minutes=10), external_ref="T-1", severity=4)

    assert second.offer_set.incident.pk == first.offer_set.incident.pk
    stored = Incident.objects.get()
    assert stored.severity == 2  # the ticket's first post stands, so earlier sets keep their facts
    assert second.offer_set.incident.severity == 2
    assert (stored.repeat_count, stored.same_category_repeat_count) == (1, 1)


def test_offer_set_create_counts_a_repeat_made_at_the_same_instant(late_delivery: Any, agent: Any) -> None:
    create(agent, external_ref="T-1")

    incident = create(agent, external_ref="T-2").offer_set.incident

    assert incident.repeat_count == 2
