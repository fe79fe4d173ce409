"""The demo pack `make run` loads encodes every service-recovery principle its header lists."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from policies.choices import OfferKind
from policies.models import Category, Perk, Policy

pytestmark = pytest.mark.django_db

DEMO_PACK = Path(__file__).resolve().parents[2] / "fixtures" / "demo_pack.yaml"
CATEGORIES = {
    "late_delivery",
    "missed_delivery",
    "wrong_item",
    "damaged_item",
    "wrong_shipping_method",
    "double_charge",
    "billing_error",
    "service_outage",
    "missed_appointment",
    "out_of_stock",
    "customer_error",
}


@pytest.fixture
def demo():
    call_command("import_policies", str(DEMO_PACK), stdout=io.StringIO())


def kinds(policy: Policy) -> set[str]:
    return set(policy.offers.values_list("kind", flat=True))


def test_demo_pack_imports_and_has_every_category_and_enough_perks(demo):
    assert set(Category.objects.values_list("slug", flat=True)) == CATEGORIES
    perks = Perk.objects.filter(active=True)
    assert perks.count() >= 8
    assert len({tag for perk in perks for tag in perk.tags}) >= 8


def test_default_apology_policy_matches_any_incident(demo):
    apology = Policy.objects.get(slug="apology-credit")
    assert apology.active
    assert not apology.categories.exists()
    conditions = [
        apology.severity_min,
        apology.severity_max,
        apology.correctable,
        apology.min_repeat_count,
        apology.min_same_category_repeat_count,
        apology.min_lifetime_value,
        apology.min_order_value,
        apology.valid_from,
        apology.valid_until,
    ]
    assert conditions == [None] * len(conditions)
    assert apology.faults == []
    assert apology.tiers == []
    assert apology.monthly_cap is None
    assert len(kinds(apology)) >= 2


def test_late_delivery_gets_a_discount_on_the_next_delivery(demo):
    policy = Policy.objects.get(slug="late-delivery-next-discount")
    assert set(policy.categories.values_list("slug", flat=True)) >= {"late_delivery"}
    assert OfferKind.PERCENT_DISCOUNT in kinds(policy)


def test_repeat_mistake_is_more_generous_than_the_first_time(demo):
    repeat = Policy.objects.get(slug="repeat-mistake")
    assert repeat.min_same_category_repeat_count == 2
    assert repeat.generosity_per_repeat > 0  # and a third time more still
    first_time = Policy.objects.get(slug="late-delivery-next-discount")
    assert repeat.priority > first_time.priority
    best = lambda p, kind: max(o.value for o in p.offers.filter(kind=kind))  # noqa: E731
    assert best(repeat, OfferKind.PERCENT_DISCOUNT) > best(first_time, OfferKind.PERCENT_DISCOUNT)


def test_personalized_perk_policy_exists(demo):
    assert OfferKind.PERSONALIZED_PERK in kinds(Policy.objects.get(slug="personalized-perk"))


def test_severe_uncorrectable_incidents_escalate_to_a_senior_manager(demo):
    policy = Policy.objects.get(slug="senior-manager-escalation")
    assert policy.escalate
    assert policy.severity_min == 5
    assert policy.correctable is False
    assert OfferKind.ESCALATION in kinds(policy)


def test_customer_fault_still_gets_goodwill(demo):
    policy = Policy.objects.get(slug="customer-fault-goodwill")
    assert policy.faults == ["customer"]
    assert policy.offers.exists()


def test_high_lifetime_value_customers_get_more(demo):
    policy = Policy.objects.get(slug="high-value-customer")
    assert set(policy.tiers) == {"gold", "platinum"} or policy.min_lifetime_value
    apology = Policy.objects.get(slug="apology-credit")
    top = lambda p: max(o.value or 0 for o in p.offers.filter(kind=OfferKind.FIXED_CREDIT))  # noqa: E731
    assert top(policy) > top(apology)


def test_out_of_stock_offers_expedited_replacement(demo):
    policy = Policy.objects.get(slug="out-of-stock-expedited")
    assert list(policy.categories.values_list("slug", flat=True)) == ["out_of_stock"]
    assert OfferKind.EXPEDITED_REPLACEMENT in kinds(policy)


def test_every_demo_message_speaks_to_the_customer_by_name(demo):
    for policy in Policy.objects.prefetch_related("offers"):
        for offer in policy.offers.all():
            assert "{customer_name}" in offer.message, f"{policy.slug}: {offer.title}"
