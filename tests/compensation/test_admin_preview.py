"""The admin's "Try the policies" page shows the options the engine would give, creating nothing."""

from __future__ import annotations

import io
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


def test_preview_needs_staff(client, demo):
    assert client.get(URL).status_code == 302  # to the admin login
