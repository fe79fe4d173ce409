"""Every policy rule, checked through ``full_clean()``: what the admin and the pack importer run.

Each rule has a table of values it accepts and values it rejects; a rejection
must land on the right field with a message that says what is allowed.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from policies.choices import AMOUNT_KINDS, OfferKind
from policies.models import Category, OfferTemplate, Perk, Policy
from tests.factories import CategoryFactory, OfferTemplateFactory, PerkFactory, PolicyFactory

pytestmark = pytest.mark.django_db

ALLOWED_PLACEHOLDERS = (
    "{customer_name}, {incident}, {value}, {amount}, {currency}, {perk_name}, {first_name}, {money}, {ticket}, "
    "{repeat_count}, {same_category_repeat_count}"
)


def errors_of(instance: models.Model) -> dict[str, list[str]]:
    """The instance's validation errors by field; empty when full_clean() passes."""
    try:
        instance.full_clean()
    except ValidationError as exc:
        return exc.message_dict
    return {}


def assert_rejected(instance: models.Model, field: str, allowed: str) -> None:
    errors = errors_of(instance)
    assert field in errors, f"expected an error on {field}, got {errors}"
    assert any(allowed in message for message in errors[field]), f"no message on {field} mentions {allowed!r}: {errors}"


def assert_accepted(instance: models.Model) -> None:
    assert errors_of(instance) == {}


def new_policy(**fields: Any) -> Policy:
    return Policy(**{"slug": "new-policy", "name": "New policy", **fields})


@pytest.fixture
def policy() -> Policy:
    return PolicyFactory()


def new_offer(policy: Policy, kind: str, **fields: Any) -> OfferTemplate:
    """A valid offer of the kind, with ``fields`` replacing its defaults."""
    defaults: dict[str, Any] = {"title": "{value} for you"}
    if kind == OfferKind.PERCENT_DISCOUNT:
        defaults.update(value=Decimal("30"), max_amount=Decimal("50"))
    elif kind == OfferKind.REFUND:
        defaults.update(value=Decimal("30"))
    elif kind in AMOUNT_KINDS:
        defaults.update(value=Decimal("10"))
    elif kind == OfferKind.ESCALATION:
        defaults.update(cost=Decimal("40"))
    return OfferTemplate(policy=policy, kind=kind, **{**defaults, **fields})


@pytest.mark.parametrize("kind", list(OfferKind))
def test_every_offer_kind_has_a_valid_default_shape(policy, kind):
    # The baseline every other offer test changes one field of.
    assert_accepted(new_offer(policy, kind))


# --- Percent kinds -------------------------------------------------------------------


@pytest.mark.parametrize("kind", [OfferKind.PERCENT_DISCOUNT, OfferKind.REFUND])
@pytest.mark.parametrize("value", ["0", "0.01", "30", "99.99", "100"])
def test_percent_offer_accepts_values_from_0_to_100(policy, kind, value):
    assert_accepted(new_offer(policy, kind, value=Decimal(value)))


@pytest.mark.parametrize("kind", [OfferKind.PERCENT_DISCOUNT, OfferKind.REFUND])
@pytest.mark.parametrize("value", ["-1", "-0.01", "100.01", "101", "1000"])
def test_percent_offer_rejects_values_outside_0_to_100(policy, kind, value):
    assert_rejected(new_offer(policy, kind, value=Decimal(value)), "value", f"must be between 0 and 100 for {kind}")


@pytest.mark.parametrize("kind", [OfferKind.PERCENT_DISCOUNT, OfferKind.REFUND])
def test_percent_offer_requires_a_value(policy, kind):
    assert_rejected(new_offer(policy, kind, value=None), "value", "a percent between 0 and 100")


def test_percent_discount_requires_max_amount(policy):
    assert_rejected(
        new_offer(policy, OfferKind.PERCENT_DISCOUNT, max_amount=None),
        "max_amount",
        "is required for percent_discount",
    )


@pytest.mark.parametrize("max_amount", [None, Decimal("0"), Decimal("25.00")])
def test_refund_max_amount_is_optional(policy, max_amount):
    assert_accepted(new_offer(policy, OfferKind.REFUND, max_amount=max_amount))


# --- Amount kinds ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(AMOUNT_KINDS))
def test_amount_offer_requires_a_value(policy, kind):
    assert_rejected(new_offer(policy, kind, value=None), "value", f"is required for {kind}: the face value")


@pytest.mark.parametrize("kind", sorted(AMOUNT_KINDS))
@pytest.mark.parametrize("value", ["0", "10", "2500.50"])
def test_amount_offer_accepts_any_amount_of_0_or_more(policy, kind, value):
    assert_accepted(new_offer(policy, kind, value=Decimal(value)))


@pytest.mark.parametrize("kind", sorted(AMOUNT_KINDS))
def test_amount_offer_rejects_max_amount(policy, kind):
    assert_rejected(new_offer(policy, kind, max_amount=Decimal("5")), "max_amount", "applies only to percent kinds")


# --- Valueless kinds --------------------------------------------------------------------


def test_personalized_perk_needs_no_value(policy):
    assert_accepted(new_offer(policy, OfferKind.PERSONALIZED_PERK, title="{perk_name} on us", value=None))


@pytest.mark.parametrize(
    ("field", "allowed"),
    [
        ("value", "must be empty for personalized_perk; its value comes from the matched perk"),
        ("max_amount", "must be empty for personalized_perk"),
        ("cost", "must be empty for personalized_perk; the cost is the matched perk's cost"),
    ],
)
def test_personalized_perk_rejects_a_value_of_its_own(policy, field, allowed):
    assert_rejected(new_offer(policy, OfferKind.PERSONALIZED_PERK, **{field: Decimal("5")}), field, allowed)


def test_escalation_requires_a_cost(policy):
    assert_rejected(new_offer(policy, OfferKind.ESCALATION, cost=None), "cost", "is required for escalation")


@pytest.mark.parametrize("cost", ["0", "40.00"])
def test_escalation_with_a_cost_is_valid(policy, cost):
    assert_accepted(new_offer(policy, OfferKind.ESCALATION, cost=Decimal(cost)))


def test_escalation_rejects_a_value(policy):
    assert_rejected(
        new_offer(policy, OfferKind.ESCALATION, value=Decimal("5")), "value", "must be empty for escalation"
    )


@pytest.mark.parametrize("kind", ["voucher", "Refund", "percent"])
def test_unknown_offer_kind_is_rejected_with_the_allowed_kinds(policy, kind):
    offer = OfferTemplate(policy=policy, kind=kind, title="Something", value=Decimal("10"))
    assert_rejected(offer, "kind", f"unknown kind {kind!r}; allowed: percent_discount, refund, fixed_credit, ")


@pytest.mark.parametrize(("days", "ok"), [(None, True), (1, True), (365, True), (0, False)])
def test_offer_expiry_is_at_least_one_day(policy, days, ok):
    offer = new_offer(policy, OfferKind.FIXED_CREDIT, expires_in_days=days)
    if ok:
        assert_accepted(offer)
    else:
        assert_rejected(offer, "expires_in_days", "must be 1 day or more")


# --- Amounts are never negative ------------------------------------------------------


def _offer_with(field: str, kind: str):
    return lambda value: new_offer(PolicyFactory(), kind, **{field: value})


AMOUNT_FIELDS = {
    "offer value": ("value", _offer_with("value", OfferKind.FIXED_CREDIT)),
    "offer max_amount": ("max_amount", _offer_with("max_amount", OfferKind.REFUND)),
    "offer cost": ("cost", _offer_with("cost", OfferKind.GIFT)),
    "escalation cost": ("cost", _offer_with("cost", OfferKind.ESCALATION)),
    "perk cost": ("cost", lambda value: Perk(slug="perk", name="Perk", cost=value)),
    "monthly_cap": ("monthly_cap", lambda value: new_policy(monthly_cap=value)),
    "per_customer_cap_30d": ("per_customer_cap_30d", lambda value: new_policy(per_customer_cap_30d=value)),
    "min_lifetime_value": ("min_lifetime_value", lambda value: new_policy(min_lifetime_value=value)),
    "min_order_value": ("min_order_value", lambda value: new_policy(min_order_value=value)),
}


@pytest.mark.parametrize("target", AMOUNT_FIELDS)
@pytest.mark.parametrize("amount", ["0", "0.01", "12.50", "99999.99"])
def test_amounts_of_0_or_more_are_valid(target, amount):
    _field, build = AMOUNT_FIELDS[target]
    assert_accepted(build(Decimal(amount)))


@pytest.mark.parametrize("target", AMOUNT_FIELDS)
@pytest.mark.parametrize("amount", ["-0.01", "-1", "-500"])
def test_negative_amounts_are_rejected(target, amount):
    field, build = AMOUNT_FIELDS[target]
    assert_rejected(build(Decimal(amount)), field, f"must be 0 or more, got {amount}")


# --- Policy fields ----------------------------------------------------------------------


@pytest.mark.parametrize("priority", [0, 1, 50, 100])
def test_priority_from_0_to_100_is_valid(priority):
    assert_accepted(new_policy(priority=priority))


@pytest.mark.parametrize("priority", [-1, 101, 1000])
def test_priority_outside_0_to_100_is_rejected(priority):
    assert_rejected(new_policy(priority=priority), "priority", f"must be between 0 and 100, got {priority}")


@pytest.mark.parametrize("field", ["severity_min", "severity_max"])
@pytest.mark.parametrize("severity", [None, 1, 3, 5])
def test_severity_from_1_to_5_is_valid(field, severity):
    assert_accepted(new_policy(**{field: severity}))


@pytest.mark.parametrize("field", ["severity_min", "severity_max"])
@pytest.mark.parametrize("severity", [0, 6, 10])
def test_severity_outside_1_to_5_is_rejected(field, severity):
    assert_rejected(new_policy(**{field: severity}), field, f"must be between 1 and 5, got {severity}")


@pytest.mark.parametrize(("severity_min", "severity_max"), [(1, 5), (3, 3), (1, 1), (None, 2), (4, None)])
def test_severity_min_up_to_severity_max_is_valid(severity_min, severity_max):
    assert_accepted(new_policy(severity_min=severity_min, severity_max=severity_max))


@pytest.mark.parametrize(("severity_min", "severity_max"), [(4, 2), (5, 1), (2, 1)])
def test_severity_min_above_severity_max_is_rejected_on_severity_max(severity_min, severity_max):
    assert_rejected(
        new_policy(severity_min=severity_min, severity_max=severity_max),
        "severity_max",
        f"must be at least severity_min ({severity_min}), got {severity_max}",
    )


JAN_1, JAN_2, DEC_31 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 12, 31)


@pytest.mark.parametrize(
    ("valid_from", "valid_until"), [(JAN_1, JAN_2), (JAN_1, DEC_31), (None, JAN_1), (JAN_1, None), (None, None)]
)
def test_valid_from_before_valid_until_is_valid(valid_from, valid_until):
    assert_accepted(new_policy(valid_from=valid_from, valid_until=valid_until))


@pytest.mark.parametrize(("valid_from", "valid_until"), [(JAN_1, JAN_1), (JAN_2, JAN_1), (DEC_31, JAN_1)])
def test_valid_until_not_after_valid_from_is_rejected(valid_from, valid_until):
    assert_rejected(
        new_policy(valid_from=valid_from, valid_until=valid_until),
        "valid_until",
        f"must be after valid_from ({valid_from}), got {valid_until}",
    )


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("faults", []),
        ("faults", ["company"]),
        ("faults", ["company", "customer", "third_party", "unknown"]),
        ("tiers", []),
        ("tiers", ["gold"]),
        ("tiers", ["standard", "silver", "gold", "platinum"]),
    ],
)
def test_known_faults_and_tiers_are_valid(field, values):
    assert_accepted(new_policy(**{field: values}))


@pytest.mark.parametrize(
    ("field", "values", "allowed"),
    [
        ("faults", ["nobody"], "unknown fault 'nobody'; allowed: company, customer, third_party, unknown"),
        ("faults", ["company", "Company"], "unknown fault 'Company'; allowed: company, customer"),
        ("faults", "company", "must be a list of fault: company, customer, third_party, unknown"),
        ("faults", [1], "unknown fault 1; allowed: company"),
        ("faults", [["company"]], "unknown fault ['company']; allowed: company"),
        ("tiers", ["diamond"], "unknown tier 'diamond'; allowed: standard, silver, gold, platinum"),
        ("tiers", "gold", "must be a list of tier: standard, silver, gold, platinum"),
        ("tiers", [{"tier": "gold"}], "allowed: standard, silver, gold, platinum"),
    ],
)
def test_unknown_faults_and_tiers_are_rejected_with_the_allowed_values(field, values, allowed):
    assert_rejected(new_policy(**{field: values}), field, allowed)


# --- Templates ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["title", "message"])
@pytest.mark.parametrize(
    "text",
    [
        "A plain sentence",
        "{value}% off your next order",
        "{customer_name}, we are sorry about {incident}.",
        "{amount} {currency} credit",
        "{perk_name} on us",
        "Use code {{SORRY}} at checkout",
        "{{value}} is shown literally",
        "100% {{guaranteed}} {value}",
    ],
)
def test_templates_with_known_placeholders_and_doubled_braces_are_valid(policy, field, text):
    assert_accepted(new_offer(policy, OfferKind.FIXED_CREDIT, **{field: text}))


@pytest.mark.parametrize("field", ["title", "message"])
@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("{name}, sorry", f"unknown placeholder {{name}}; allowed: {ALLOWED_PLACEHOLDERS}"),
        ("{Value}% off", "unknown placeholder {Value}; allowed: "),
        ("{customer}, sorry", "unknown placeholder {customer}; allowed: "),
        ("{} off", f"unknown placeholder {{}}; allowed: {ALLOWED_PLACEHOLDERS}"),
        ("{0} off", "unknown placeholder {0}; allowed: "),
        ("{customer_name.upper}", "unknown placeholder {customer_name.upper}; allowed: "),
        ("{value[0]}", "unknown placeholder {value[0]}; allowed: "),
        ("{value:.2f}% off", "placeholder {value} takes no format or conversion; write it as {value}"),
        ("{amount:>10}", "placeholder {amount} takes no format or conversion"),
        ("{customer_name!r}", "placeholder {customer_name} takes no format or conversion"),
        ("{value% off", "has an unbalanced brace; placeholders look like {customer_name} and a literal brace"),
        ("value}% off", "has an unbalanced brace"),
        ("{value}} off", "has an unbalanced brace"),
        ("{ off", f"(allowed: {ALLOWED_PLACEHOLDERS})"),
    ],
)
def test_templates_with_unknown_placeholders_or_bad_braces_are_rejected(policy, field, text, allowed):
    assert_rejected(new_offer(policy, OfferKind.FIXED_CREDIT, **{field: text}), field, allowed)


# --- Perk tags -----------------------------------------------------------------------------


@pytest.mark.parametrize("tags", [[], ["sports"], ["sports", "cooking"], ["board-games", "tv_series", "k-pop2"]])
def test_perk_tags_of_lowercase_words_are_valid(tags):
    assert_accepted(Perk(slug="perk", name="Perk", cost=Decimal("5"), tags=tags))


@pytest.mark.parametrize(
    ("tags", "allowed"),
    [
        (["Sports"], "tags are lowercase words without spaces (use - or _), got Sports"),
        (["sports", "Cooking"], "got Cooking"),
        (["sports fans"], "tags are lowercase words without spaces"),
        (["sports\tfans"], "tags are lowercase words without spaces"),
        ([" sports"], "tags are lowercase words without spaces"),
        ([""], "must be a list of interest tags such as sports, cooking"),
        (["  "], "must be a list of interest tags"),
        ([1], "must be a list of interest tags"),
        ("sports", "must be a list of interest tags"),
        ({"sports": True}, "must be a list of interest tags"),
    ],
)
def test_perk_tags_that_are_not_lowercase_words_are_rejected(tags, allowed):
    assert_rejected(Perk(slug="perk", name="Perk", cost=Decimal("5"), tags=tags), "tags", allowed)


# --- Slugs ------------------------------------------------------------------------------------

SLUGGED = {
    "category": lambda slug: Category(slug=slug, name="Some category"),
    "perk": lambda slug: Perk(slug=slug, name="Some perk", cost=Decimal("1")),
    "policy": lambda slug: Policy(slug=slug, name="Some policy"),
}


@pytest.mark.parametrize("model", SLUGGED)
@pytest.mark.parametrize("slug", ["late_delivery", "sports-pass-1m", "a", "a1", "x9-y_z"])
def test_slugs_of_lowercase_words_joined_by_single_dashes_or_underscores_are_valid(model, slug):
    assert_accepted(SLUGGED[model](slug))


@pytest.mark.parametrize("model", SLUGGED)
@pytest.mark.parametrize(
    "slug", ["Late_delivery", "late delivery", "late--delivery", "late-_delivery", "-late", "late_", "late.delivery"]
)
def test_malformed_slugs_are_rejected_with_the_slug_format(model, slug):
    assert_rejected(SLUGGED[model](slug), "slug", "use lowercase letters, digits, and single - or _ between them")


@pytest.mark.parametrize(
    ("factory", "build"),
    [
        (CategoryFactory, SLUGGED["category"]),
        (PerkFactory, SLUGGED["perk"]),
        (PolicyFactory, SLUGGED["policy"]),
    ],
    ids=["category", "perk", "policy"],
)
def test_a_second_object_with_the_same_slug_fails_full_clean(factory, build):
    existing = factory(slug="taken")
    assert_accepted(existing)  # the first one is fine: it does not clash with itself
    assert_rejected(build("taken"), "slug", "already exists")
    assert_accepted(build("free"))


# --- The database backs the rules up -----------------------------------------------------

POLICY_VIOLATIONS = [
    {"priority": 101},
    {"severity_min": 0},
    {"severity_max": 6},
    {"severity_min": 5, "severity_max": 1},
    {"valid_from": JAN_1, "valid_until": JAN_1},
    {"valid_from": JAN_2, "valid_until": JAN_1},
    {"monthly_cap": Decimal("-1")},
    {"per_customer_cap_30d": Decimal("-0.01")},
]
OFFER_VIOLATIONS = [{"value": Decimal("-1")}, {"max_amount": Decimal("-1")}, {"cost": Decimal("-1")}]


@pytest.mark.parametrize("change", POLICY_VIOLATIONS, ids=lambda change: ",".join(change))
def test_database_rejects_a_policy_that_breaks_a_rule_even_past_full_clean(change):
    policy = PolicyFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Policy.objects.filter(pk=policy.pk).update(**change)


@pytest.mark.parametrize("change", OFFER_VIOLATIONS, ids=lambda change: ",".join(change))
def test_database_rejects_an_offer_with_a_negative_amount_even_past_full_clean(change):
    offer = OfferTemplateFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        OfferTemplate.objects.filter(pk=offer.pk).update(**change)


def test_database_accepts_the_edges_of_each_rule():
    # The counterpart of the two tests above: the constraints are not stricter than the rules.
    policy = PolicyFactory()
    Policy.objects.filter(pk=policy.pk).update(
        priority=100,
        severity_min=5,
        severity_max=5,
        valid_from=JAN_1,
        valid_until=JAN_2,
        monthly_cap=Decimal("0"),
        per_customer_cap_30d=Decimal("0"),
    )
    Policy.objects.filter(pk=policy.pk).update(priority=0, severity_min=1, severity_max=1)
    offer = OfferTemplateFactory(policy=policy)
    OfferTemplate.objects.filter(pk=offer.pk).update(value=Decimal("0"), max_amount=Decimal("0"), cost=Decimal("0"))
    policy.refresh_from_db()
    assert (policy.priority, policy.severity_min, policy.valid_until) == (0, 1, JAN_2)
