"""Customer data agents cannot hijack (README, "Customer data"): follow-ups go to the e-mail the customer had
when the offer set was made, and with CUSTOMER_FACTS=trusted an offer-set POST cannot set the customer's
tier, lifetime value, interests or e-mail, so an agent cannot raise its own generosity."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from compensation.models import Customer, CustomerChange, FollowUp, OfferSet
from compensation.services.follow_ups import follow_ups_send
from compensation.services.offer_sets import offer_set_preview
from policies.index import policy_index_get

pytestmark = pytest.mark.django_db

OFFER_SETS = "/api/v1/offer-sets/"
FEEDBACK_LINK = re.compile(re.escape(settings.PUBLIC_BASE_URL) + r"/api/v1/feedback/(?P<token>[^/\s]+)/")
ALL_SENT = timedelta(hours=settings.FOLLOW_UP_SATISFACTION_DELAY_HOURS, minutes=1)
GENEROUS = {"tier": "platinum", "lifetime_value": "9999999999.99", "interests": ["sports", "cooking"]}


def post(client: Any, external_id: str, **customer: Any) -> dict[str, Any]:
    """A late delivery; every post of a customer is the same ticket (the incident is reused, not a repeat), so
    only the customer's facts can make two answers differ."""
    body = {
        "customer": {"external_id": external_id, **customer},
        "incident": {"category": "late_delivery", "severity": 3, "order_value": "90.00", "external_ref": "T-1"},
    }
    response = client.post(OFFER_SETS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def shown(offer_set: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """What the customer is offered: each option's kind, title, value and cost."""
    return [(o["kind"], o["title"], o["value"], o["estimated_cost"]) for o in offer_set["options"]]


def choose(client: Any, offer_set: dict[str, Any], kind: str, capture: Any) -> None:
    label = next(o["label"] for o in offer_set["options"] if o["kind"] == kind)
    with capture(execute=True):  # recorded by the (eager) worker at commit
        response = client.post(f"{OFFER_SETS}{offer_set['id']}/outcome/", {"choice": label}, format="json")
    assert response.status_code == 202, response.content


@pytest.fixture
def integration(client_for: Any) -> Any:
    return client_for("integration", "crm-sync")


# --- Where e-mail goes -------------------------------------------------------------------------


def test_another_agents_post_cannot_redirect_the_follow_ups_of_a_set(
    demo_pack: None, agent1: Any, agent2: Any, django_capture_on_commit_callbacks: Any
) -> None:
    made = post(agent1, "C-2", name="Ada Lovelace", email="ada@example.com")
    choose(agent1, made, "percent_discount", django_capture_on_commit_callbacks)  # issues a coupon code
    coupon = agent1.get(f"{OFFER_SETS}{made['id']}/").json()["outcome"]["coupon_code"]
    assert coupon

    # The adversarial finding: agent 2 posts the same customer with another address.
    post(agent2, "C-2", email="attacker@evil.example")
    assert Customer.objects.get(external_id="C-2").email == "attacker@evil.example"  # agent mode: it is stored

    sent = follow_ups_send(now=timezone.now() + ALL_SENT)

    assert sent == 2
    assert [m.to for m in mail.outbox] == [["ada@example.com"], ["ada@example.com"]]
    explanation, check = mail.outbox
    assert coupon in explanation.body
    assert FEEDBACK_LINK.search(check.body)
    assert not any("attacker@evil.example" in m.to for m in mail.outbox)
    assert not any(coupon in m.body for m in mail.outbox if "attacker@evil.example" in m.to)


def test_each_set_keeps_the_address_it_was_made_with(demo_pack: None, agent1: Any, agent2: Any) -> None:
    first = post(agent1, "C-2", email="ada@example.com")
    second = post(agent2, "C-2", email="attacker@evil.example")
    third = post(agent1, "C-2")  # no e-mail given: the stored one, as it is now

    emails = dict(OfferSet.objects.values_list("id", "email"))
    assert [emails[OfferSet.objects.get(pk=s["id"]).pk] for s in (first, second, third)] == [
        "ada@example.com",
        "attacker@evil.example",
        "attacker@evil.example",
    ]


def test_a_set_made_without_an_address_skips_its_follow_ups_even_once_one_is_added(
    demo_pack: None, agent1: Any, django_capture_on_commit_callbacks: Any
) -> None:
    made = post(agent1, "C-3")
    choose(agent1, made, "free_shipping", django_capture_on_commit_callbacks)
    post(agent1, "C-3", email="later@example.com")

    assert follow_ups_send(now=timezone.now() + ALL_SENT) == 0

    assert mail.outbox == []
    skipped = FollowUp.objects.filter(outcome__offer_set_id=made["id"])
    assert {f.status for f in skipped} == {FollowUp.Status.SKIPPED}
    assert all("no e-mail address" in f.last_error for f in skipped)


# --- Agents set their own generosity ------------------------------------------------------------


def test_agent_mode_posted_facts_raise_the_options_and_are_stored(demo_pack: None, agent1: Any) -> None:
    """The premise of the finding, and v1's rule in agent mode: posted facts count and are kept."""
    baseline = post(agent1, "C-5")
    generous = post(agent1, "C-5", **GENEROUS)

    assert shown(generous) != shown(baseline)
    assert sum(Decimal(o[3]) for o in shown(generous)) > sum(Decimal(o[3]) for o in shown(baseline))
    stored = Customer.objects.get(external_id="C-5")
    assert (stored.tier, stored.lifetime_value) == ("platinum", Decimal("9999999999.99"))


@override_settings(CUSTOMER_FACTS="trusted")
def test_trusted_mode_an_agent_posting_platinum_gets_the_same_options_and_stores_nothing(
    demo_pack: None, agent1: Any
) -> None:
    baseline = post(agent1, "C-5", name="Sam Doe")
    before = Customer.objects.values().get(external_id="C-5")

    generous = post(agent1, "C-5", name="Sam Doe", email="agent-typed@example.com", **GENEROUS)

    assert shown(generous) == shown(baseline)
    assert generous["customer"] == baseline["customer"]
    assert generous["customer"]["tier"] == "standard"
    assert generous["customer"]["lifetime_value"] == "0.00"
    assert Customer.objects.values().get(external_id="C-5") == before
    assert not CustomerChange.objects.exists()
    assert OfferSet.objects.get(pk=generous["id"]).email == ""  # the stored address, not the posted one


@override_settings(CUSTOMER_FACTS="trusted")
def test_trusted_mode_a_new_customer_starts_at_the_defaults_with_the_posted_email_and_name(
    demo_pack: None, agent1: Any
) -> None:
    made = post(agent1, "C-new", name="Ada Lovelace", email="ada@example.com", **GENEROUS)

    assert made["customer"] == {
        "external_id": "C-new",
        "name": "Ada Lovelace",
        "tier": "standard",
        "lifetime_value": "0.00",
        "interests": [],
    }
    stored = Customer.objects.get(external_id="C-new")
    assert (stored.email, stored.tier, stored.lifetime_value, stored.interests) == (
        "ada@example.com",
        "standard",
        Decimal("0.00"),
        [],
    )
    assert OfferSet.objects.get(pk=made["id"]).email == "ada@example.com"


@override_settings(CUSTOMER_FACTS="trusted")
def test_trusted_mode_posts_still_update_the_name_with_a_change_row(demo_pack: None, agent1: Any) -> None:
    post(agent1, "C-6", name="Sam")
    made = post(agent1, "C-6", name="Samantha Doe", email="other@example.com")

    assert made["customer"]["name"] == "Samantha Doe"
    assert list(CustomerChange.objects.values_list("by", "field", "old", "new")) == [
        ("agent-1", "name", "Sam", "Samantha Doe")
    ]


def test_trusted_mode_end_to_end_the_integration_sets_the_facts_the_agents_post_uses(
    demo_pack: None, agent1: Any, integration: Any, settings: Any
) -> None:
    settings.CUSTOMER_FACTS = "agent"
    # What a gold customer with these facts is offered, posted by an agent in agent mode (another customer).
    expected = post(agent1, "C-reference", tier="gold", lifetime_value="5400.00", interests=["sports"])

    settings.CUSTOMER_FACTS = "trusted"  # read per request: the switch holds from the next one
    response = integration.put(
        "/api/v1/customers/C-9/",
        {
            "name": "Linda Park",
            "email": "linda@example.com",
            "tier": "gold",
            "lifetime_value": "5400.00",
            "interests": ["sports"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content

    made = post(agent1, "C-9", email="attacker@evil.example", tier="standard", lifetime_value="0", interests=[])

    assert made["customer"] == {
        "external_id": "C-9",
        "name": "Linda Park",
        "tier": "gold",
        "lifetime_value": "5400.00",
        "interests": ["sports"],
    }
    assert shown(made) == shown(expected)
    assert OfferSet.objects.get(pk=made["id"]).email == "linda@example.com"
    stored = integration.get("/api/v1/customers/C-9/").json()
    assert (stored["email"], stored["tier"], stored["changes"]) == ("linda@example.com", "gold", [])

    # The integration changes the tier: the next post uses it, and the change names the integration.
    response = integration.put("/api/v1/customers/C-9/", {"tier": "standard"}, format="json")
    assert response.status_code == 200, response.content
    again = post(agent1, "C-9", tier="platinum")
    assert again["customer"]["tier"] == "standard"
    changes = integration.get("/api/v1/customers/C-9/").json()["changes"]
    assert [(c["by"], c["field"], c["old"], c["new"]) for c in changes] == [("crm-sync", "tier", "gold", "standard")]


def test_the_setting_is_read_at_request_time(demo_pack: None, agent1: Any, settings: Any) -> None:
    settings.CUSTOMER_FACTS = "trusted"
    post(agent1, "C-7", tier="gold")
    assert Customer.objects.get(external_id="C-7").tier == "standard"

    settings.CUSTOMER_FACTS = "agent"
    post(agent1, "C-7", tier="gold")
    assert Customer.objects.get(external_id="C-7").tier == "gold"


# --- The admin's preview follows the same rule, and writes nothing -------------------------------


def preview_shown(**customer: Any) -> list[tuple[str, str, str]]:
    index = policy_index_get()
    result = offer_set_preview(
        index=index,
        customer={"name": "Sam", **customer},
        incident={
            "category": index.categories["late_delivery"],
            "severity": 3,
            "fault": "company",
            "correctable": True,
            "order_value": Decimal("90.00"),
            "repeat_count": 1,
            "same_category_repeat_count": 1,
        },
    )
    return [(o.candidate.kind, str(o.candidate.value), str(o.candidate.estimated_cost)) for o in result.options]


@pytest.mark.parametrize("mode", ["agent", "trusted"])
def test_preview_uses_a_stored_customers_facts_in_trusted_mode_and_writes_nothing(
    demo_pack: None, agent1: Any, settings: Any, mode: str
) -> None:
    settings.CUSTOMER_FACTS = "agent"
    post(agent1, "C-8")  # a stored standard customer
    standard = preview_shown(tier="standard", lifetime_value=Decimal("0"), interests=[])
    platinum = preview_shown(tier="platinum", lifetime_value=Decimal("9999999999.99"), interests=[])
    assert platinum != standard
    before = list(Customer.objects.values())
    settings.CUSTOMER_FACTS = mode

    named = preview_shown(external_id="C-8", tier="platinum", lifetime_value=Decimal("9999999999.99"), interests=[])
    unknown = preview_shown(external_id="C-x", tier="platinum", lifetime_value=Decimal("9999999999.99"), interests=[])

    anyone = preview_shown(tier="platinum", lifetime_value=Decimal("9999999999.99"), interests=[])

    assert named == (standard if mode == "trusted" else platinum)
    assert unknown == (standard if mode == "trusted" else platinum)  # trusted: as the POST would create it
    assert anyone == platinum  # no id, a sample customer: the form's facts
    assert list(Customer.objects.values()) == before
    assert not CustomerChange.objects.exists()
