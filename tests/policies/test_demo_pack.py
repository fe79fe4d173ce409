"""The demo pack `make run` loads encodes every service-recovery principle its header lists.

How its texts read once rendered is tested in ``test_demo_messages``.
"""

from __future__ import annotations

import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from policies.choices import OfferKind, Placement
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


def remedy_kinds(policy: Policy) -> set[str]:
    return set(policy.remedies.values_list("kind", flat=True))


def templates() -> list[tuple[str, object]]:
    """Every offer and remedy of every policy, with where it is, for messages."""
    out = []
    for policy in Policy.objects.prefetch_related("offers", "remedies"):
        out += [(f"{policy.slug} offer {o.kind}", o) for o in policy.offers.all()]
        out += [(f"{policy.slug} remedy {r.kind}", r) for r in policy.remedies.all()]
    return out


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


def test_out_of_stock_gives_an_in_stock_alternative_shipped_express_as_its_remedy(demo):
    policy = Policy.objects.get(slug="out-of-stock-expedited")
    assert list(policy.categories.values_list("slug", flat=True)) == ["out_of_stock"]
    assert remedy_kinds(policy) == {OfferKind.EXPEDITED_REPLACEMENT}
    assert "in-stock alternative" in policy.remedies.get().title


# --- Make it right first: the remedy, then compensation as a, b or c -------------------------------


@pytest.mark.parametrize(
    ("slug", "category"), [("billing-error-refund", "billing_error"), ("double-charge-refund", "double_charge")]
)
def test_money_taken_by_mistake_is_refunded_in_full_as_the_remedy(demo, slug, category):
    policy = Policy.objects.get(slug=slug)
    assert list(policy.categories.values_list("slug", flat=True)) == [category]
    refund = policy.remedies.get()
    assert (refund.kind, refund.value) == (OfferKind.REFUND, Decimal("100"))  # the whole overcharged amount
    assert refund.max_amount >= Decimal("1000.00")


def test_damaged_and_wrong_items_get_the_replacement_as_the_remedy(demo):
    policy = Policy.objects.get(slug="damaged-or-wrong-item")
    assert set(policy.categories.values_list("slug", flat=True)) == {"damaged_item", "wrong_item"}
    replacement = policy.remedies.get()
    assert replacement.kind == OfferKind.EXPEDITED_REPLACEMENT
    assert replacement.value > 0  # what express shipping and handling cost us


def test_a_severe_uncorrectable_incident_is_refunded_in_full_as_the_remedy(demo):
    refund = Policy.objects.get(slug="senior-manager-escalation").remedies.get()
    assert (refund.kind, refund.value) == (OfferKind.REFUND, Decimal("100"))
    assert refund.max_amount >= Decimal("640.00")


def test_options_beside_a_remedy_are_compensation_not_the_remedy_again(demo):
    with_remedy = Policy.objects.filter(remedies__isnull=False).distinct()
    assert {p.slug for p in with_remedy} >= {
        "billing-error-refund",
        "double-charge-refund",
        "damaged-or-wrong-item",
        "out-of-stock-expedited",
        "senior-manager-escalation",
    }
    for policy in with_remedy:
        assert kinds(policy), f"{policy.slug} offers no compensation beside its remedy"
        assert not kinds(policy) & remedy_kinds(policy), policy.slug
    # No policy offers a refund as an option: where money must go back, a remedy returns it (once).
    assert not Policy.objects.filter(offers__kind=OfferKind.REFUND).exists()


def test_repeat_mistake_leads_and_every_message_says_it_happened_again(demo):
    repeat = Policy.objects.get(slug="repeat-mistake")
    assert repeat.placement == Placement.LEAD
    for offer in repeat.offers.all():
        # Stays true for a second or a third time: no "second time", no "{same_category_repeat_count}nd".
        assert "again" in offer.message or "{same_category_repeat_count} times" in offer.message, offer.title
        assert "second time" not in offer.message
    assert "again" in " ".join(repeat.offers.values_list("title", flat=True))


# --- Texts written for a customer ------------------------------------------------------------------


def test_every_demo_message_speaks_to_the_customer_by_first_name(demo):
    for where, template in templates():
        assert template.message.startswith("{first_name}, "), where
        assert "{customer_name}" not in template.message + template.title, where


def test_money_is_written_with_its_sign_and_no_ticket_is_left_dangling(demo):
    for where, template in templates():
        text = template.title + " " + template.message
        assert "{amount}" not in text, f"{where}: use {{money}}"
        assert "{currency}" not in text, f"{where}: use {{money}}"
        assert "{ticket}" not in text, where


def test_perks_and_categories_read_well_in_the_middle_of_a_sentence(demo):
    for perk in Perk.objects.all():
        assert perk.name[0].islower(), perk.name  # "something you'll enjoy: two cinema tickets"
    for name in Category.objects.values_list("name", flat=True):
        assert re.fullmatch(r"[a-z][a-z -]*", name), name  # "sorry about the late delivery"
