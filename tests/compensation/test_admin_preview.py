"""The admin's "Try the policies" page shows the options the engine would give, creating nothing."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils.html import escape

from compensation.models import Customer, Escalation, Incident, OfferSet

pytestmark = pytest.mark.django_db

DEMO_PACK = Path(__file__).resolve().parents[2] / "fixtures" / "demo_pack.yaml"
URL = "/admin/compensation/offerset/try/"


@pytest.fixture
def demo():
    call_command("import_policies", str(DEMO_PACK), stdout=io.StringIO())


def sample(**changes: str) -> dict[str, str]:
    data = {
        "customer_name": "Linda Park",
        "tier": "gold",
        "lifetime_value": "5400",
        "interests": "sports",
        "category": "late_delivery",
        "severity": "3",
        "fault": "company",
        "correctable": "on",
        "order_value": "120",
        "repeat_count": "1",
        "same_category_repeat_count": "1",
    }
    data.update(changes)
    return data


def test_policy_list_links_to_the_preview(admin_client, demo):
    assert URL in admin_client.get("/admin/policies/policy/").content.decode()


def test_preview_shows_ranked_options_with_reasons_and_creates_nothing(admin_client, demo):
    assert admin_client.get(URL).status_code == 200

    response = admin_client.post(URL, sample())

    assert response.status_code == 200
    result = response.context["result"]
    assert [o.label for o in result.options] == ["a", "b", "c"]
    html = response.content.decode()
    for option in result.options:
        assert escape(option.title) in html
        assert escape(option.reasons[0]) in html
    assert "Premium Sports Pass" in html  # the sports fan's perk
    assert "Policies that gave no option" in html
    assert (Customer.objects.count(), Incident.objects.count(), OfferSet.objects.count()) == (0, 0, 0)


def test_preview_of_a_severe_uncorrectable_incident_names_the_escalation_but_opens_none(admin_client, demo):
    data = sample(severity="5")
    data.pop("correctable")  # unticked: not correctable
    response = admin_client.post(URL, data)
    assert "would open a senior-manager escalation" in response.content.decode()
    assert not Escalation.objects.exists()


def test_preview_rejects_bad_input_with_field_errors(admin_client, demo):
    response = admin_client.post(URL, sample(severity="9", same_category_repeat_count="3"))
    assert response.status_code == 200
    assert response.context["result"] is None
    form = response.context["form"]
    assert "severity" in form.errors
    assert "same_category_repeat_count" in form.errors


REMEDY_PACK = """
categories:
  - {slug: double_charge, name: double charge}
  - {slug: late_delivery, name: late delivery}
policies:
  - slug: double-charge-refund
    name: Double charge refund
    priority: 80
    conditions: {categories: [double_charge]}
    remedy:
      - kind: refund
        title: "Your {money} back"
        message: "{first_name}, I've refunded the full {money} to your card."
        value: "100"
        max_amount: "800.00"
    offers:
      - {kind: fixed_credit, title: "{amount} {currency} credit", value: "10.00"}
      - {kind: free_shipping, title: "Free shipping next time", value: "9.95", cost: "6.00"}
      - {kind: gift, title: "A gift with your next order", value: "20.00", cost: "7.50"}
      - {kind: percent_discount, title: "{value}% off your next order", value: "15", max_amount: "30.00"}
      - {kind: expedited_replacement, title: "Express delivery on us", value: "12.00"}
      - {kind: personalized_perk, title: "{perk_name} on us"}
  - slug: tight-budget
    name: Tight budget
    priority: 40
    conditions: {categories: [double_charge]}
    budget: {monthly_cap: "5.00"}
    offers:
      - {kind: fixed_credit, title: "A {amount} {currency} sorry", value: "20.00"}
  - slug: late-only
    name: Late deliveries only
    conditions: {categories: [late_delivery]}
    offers:
      - {kind: fixed_credit, title: "{amount} {currency} credit", value: "5.00"}
"""


@pytest.fixture
def remedy_pack(tmp_path):
    pack = tmp_path / "remedy_pack.yaml"
    pack.write_text(REMEDY_PACK)
    call_command("import_policies", str(pack), stdout=io.StringIO())


def test_preview_shows_the_remedy_first_and_why_each_offer_was_left_out(admin_client, remedy_pack):
    response = admin_client.post(URL, sample(category="double_charge", order_value="120"))

    assert response.status_code == 200
    result = response.context["result"]
    html = response.content.decode()
    # The remedy: above the options, not one of them, with what it costs and that a manager approves it.
    [refund] = result.remedy
    assert (refund.candidate.kind, refund.candidate.amount) == ("refund", Decimal("120.00"))
    assert refund.title == "Your $120.00 back"
    assert html.index("Put right first (remedy)") < html.index('id="remedy-table"') < html.index('id="option-table"')
    assert result.options
    assert all(f"propensity mean {option.propensity_mean}" in html for option in result.options)
    assert 'id="exploring-note"' not in html  # the tests rank without exploration (tests/settings.py)
    assert escape(refund.title) in html
    assert escape(refund.message) in html
    assert "Double charge refund (v1)" in html
    words = " ".join(html.split())
    assert "needs a manager's approval: the remedy costs 120.00 USD, above an agent's limit of 100.00 USD" in words
    assert [o.label for o in result.options] == ["a", "b", "c"]
    assert "refund" not in {o.candidate.kind for o in result.options}
    # Why not: the policies that gave nothing, and each offer that is not an option.
    policies = {(e.policy.name, e.reason) for e in response.context["policies_not_offered"]}
    assert ("Tight budget", "monthly budget has 5.00 left, fixed_credit costs 20.00") in policies
    assert ("Late deliveries only", "category 'double charge' is not covered") in policies
    offers = [(e.policy.name, e.offer.kind, e.reason) for e in response.context["offers_not_shown"]]
    ranked_below = [o for o in offers if o[0] == "Double charge refund" and o[2].startswith("ranked below")]
    assert len(ranked_below) == 2  # five priced offers, three options
    assert ("Double charge refund", "personalized_perk", "no active perk matches the customer's interests") in offers
    assert ("Tight budget", "fixed_credit", "monthly budget has 5.00 left, fixed_credit costs 20.00") in offers
    assert len(offers) == 4
    section = html[html.index('id="offers-not-shown"') :]
    for name, kind, reason in offers:
        assert f"<tr><td>{name}</td><td>{kind}</td>" in section
        assert escape(reason) in section
    assert escape("{perk_name} on us") in section
    assert (Customer.objects.count(), Incident.objects.count(), OfferSet.objects.count()) == (0, 0, 0)


def test_preview_without_a_remedy_says_so(admin_client, demo):
    response = admin_client.post(URL, sample())

    assert response.context["result"].remedy == []
    assert 'id="no-remedy"' in response.content.decode()


def test_preview_needs_staff(client, demo):
    assert client.get(URL).status_code == 302  # to the admin login


def test_with_exploration_on_the_preview_says_each_try_draws_afresh(admin_client, remedy_pack, settings):
    settings.RANKING_EXPLORATION = "thompson"

    response = admin_client.post(URL, sample(category="double_charge", order_value="120"))

    assert response.status_code == 200
    assert 'id="exploring-note"' in response.content.decode()
    assert response.context["result"].options
