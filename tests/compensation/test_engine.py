"""The engine tested directly, without HTTP: conditions, amounts, perks, budgets, texts, approval.

Most tests build the compiled policy index by hand (``make_policy``, ``make_offer``,
``make_index``); a few create rows with the factories and go through
``policy_index_build`` so the compiled shape is checked against the database too.
The builders are reused by ``test_ranking`` and ``test_engine_properties``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from compensation.engine import (
    best_perk,
    candidate_for,
    compute_options,
    first_failed_condition,
    generosity_multiplier,
    render,
)
from compensation.engine_types import CustomerFacts, EngineResult, IncidentFacts, Spending
from compensation.learning import LearningStats
from policies.conditions import CONDITION_NAMES, conditions_compile
from policies.index import (
    CompiledCategory,
    CompiledOffer,
    CompiledPerk,
    CompiledPolicy,
    PolicyIndex,
    policy_index_build,
    policy_index_get,
)
from tests.factories import CategoryFactory, OfferTemplateFactory, PerkFactory, PolicyFactory

D = Decimal
DAY = date(2026, 11, 20)
CURRENCY = "USD"
TEN = Decimal("10.00")
CATEGORIES = {1: "late delivery", 2: "damaged item", 3: "wrong shipping method"}
PLACEHOLDERS = ("customer_name", "incident", "value", "amount", "currency", "perk_name")
PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")

_offer_ids = itertools.count(10_000)


# --- Builders --------------------------------------------------------------------------


def make_offer(
    kind: str = "fixed_credit",
    *,
    id: int | None = None,
    title: str = "{amount} {currency} credit",
    message: str = "{customer_name}, we are sorry about the {incident}.",
    value: Decimal | None = TEN,
    max_amount: Decimal | None = None,
    cost: Decimal | None = None,
    expires_in_days: int | None = None,
    requires_approval: bool = False,
    order: int = 0,
) -> CompiledOffer:
    return CompiledOffer(
        id=next(_offer_ids) if id is None else id,
        kind=kind,
        title=title,
        message=message,
        value=value,
        max_amount=max_amount,
        cost=cost,
        expires_in_days=expires_in_days,
        requires_approval=requires_approval,
        order=order,
    )


def make_policy(*offers: CompiledOffer, id: int = 1, **overrides: Any) -> CompiledPolicy:
    """A policy that matches everything, gives a 10.00 credit and has no budget, unless told otherwise."""
    fields: dict[str, Any] = {
        "id": id,
        "slug": f"policy-{id}",
        "name": f"Policy {id}",
        "version": 1,
        "priority": 50,
        "valid_from": None,
        "valid_until": None,
        "category_ids": frozenset(),
        "escalate": False,
        "monthly_cap": None,
        "per_customer_cap_30d": None,
        "generosity_per_severity": D("0"),
        "generosity_per_repeat": D("0"),
        "generosity_per_1000_lifetime_value": D("0"),
        "generosity_max_multiplier": D("2.00"),
        "offers": offers or (make_offer(),),
    }
    if "category_ids" in overrides:
        overrides["category_ids"] = frozenset(overrides["category_ids"])
    fields["conditions"] = conditions_compile(
        {name: overrides.pop(name) for name in CONDITION_NAMES if name in overrides}
    )
    fields.update(overrides)
    return CompiledPolicy(**fields)


def make_perk(id: int, tags: Iterable[str], cost: str = "12.00", name: str | None = None) -> CompiledPerk:
    return CompiledPerk(id=id, slug=f"perk-{id}", name=name or f"Perk {id}", tags=frozenset(tags), cost=D(cost))


def make_customer(**overrides: Any) -> CustomerFacts:
    fields: dict[str, Any] = {
        "external_id": "C-1001",
        "name": "Linda Park",
        "tier": "standard",
        "lifetime_value": D("0.00"),
        "interests": frozenset(),
    }
    fields.update(overrides)
    fields["interests"] = frozenset(fields["interests"])
    return CustomerFacts(**fields)


def make_incident(**overrides: Any) -> IncidentFacts:
    fields: dict[str, Any] = {
        "category_id": 1,
        "category_name": CATEGORIES.get(overrides.get("category_id", 1), "category"),
        "severity": 3,
        "fault": "company",
        "correctable": True,
        "order_value": D("120.00"),
        "repeat_count": 1,
        "same_category_repeat_count": 1,
        "occurred_on": DAY,
    }
    fields.update(overrides)
    return IncidentFacts(**fields)


def make_index(
    *policies: CompiledPolicy, perks: Iterable[CompiledPerk] = (), categories: dict[int, str] = CATEGORIES
) -> PolicyIndex:
    """An index shaped like ``policy_index_build``'s: per category, its policies and the any-category ones."""

    def order(p: CompiledPolicy) -> tuple[int, int]:
        return (-p.priority, p.id)

    any_category = tuple(sorted((p for p in policies if not p.category_ids), key=order))
    by_category = {
        cid: tuple(sorted([p for p in policies if cid in p.category_ids or not p.category_ids], key=order))
        for cid in categories
    }
    return PolicyIndex(
        revision=1,
        categories={
            name.replace(" ", "_"): CompiledCategory(id=cid, slug=name.replace(" ", "_"), name=name)
            for cid, name in categories.items()
        },
        policies={p.id: p for p in policies},
        by_category=by_category,
        any_category=any_category,
        perks=tuple(perks),
    )


def run(
    *policies: CompiledPolicy,
    customer: CustomerFacts | None = None,
    incident: IncidentFacts | None = None,
    spending: Spending | None = None,
    stats: dict[int, tuple[int, int]] | None = None,
    perks: Iterable[CompiledPerk] = (),
    approval_limit: Decimal | None = None,
    explain: bool = False,
    index: PolicyIndex | None = None,
) -> EngineResult:
    return compute_options(
        index=index or make_index(*policies, perks=perks),
        customer=customer or make_customer(),
        incident=incident or make_incident(),
        spending=spending or Spending(),
        stats=LearningStats.from_v1(stats or {}),
        currency=CURRENCY,
        approval_limit=approval_limit,
        explain=explain,
    )


def reasons_by_policy(result: EngineResult) -> dict[int, str]:
    """The entries about whole policies (v1); those about one offer have ``offer`` set."""
    return {n.policy.id: n.reason for n in result.not_offered if n.offer is None}


def reasons_by_offer(result: EngineResult) -> dict[int, str]:
    """Why each offer of an applying policy was not shown, by offer id."""
    return {n.offer.id: n.reason for n in result.not_offered if n.offer is not None}


# --- Conditions ------------------------------------------------------------------------

CONDITIONS = [
    # (id, policy conditions, customer overrides, incident overrides, first failed condition or None)
    ("category specific, matching", {"category_ids": {1}}, {}, {"category_id": 1}, None),
    (
        "category specific, other category",
        {"category_ids": {1}},
        {},
        {"category_id": 2},
        "category 'damaged item' is not covered",
    ),
    ("category any, category 1", {}, {}, {"category_id": 1}, None),
    ("category any, category 2", {}, {}, {"category_id": 2}, None),
    ("severity_min, at the minimum", {"severity_min": 5}, {}, {"severity": 5}, None),
    ("severity_min, below", {"severity_min": 5}, {}, {"severity": 3}, "severity 3 is below severity_min 5"),
    ("severity_max, at the maximum", {"severity_max": 2}, {}, {"severity": 2}, None),
    ("severity_max, above", {"severity_max": 2}, {}, {"severity": 3}, "severity 3 is above severity_max 2"),
    ("faults, listed", {"faults": {"company", "third_party"}}, {}, {"fault": "third_party"}, None),
    (
        "faults, not listed",
        {"faults": {"company", "third_party"}},
        {},
        {"fault": "customer"},
        "fault customer is not one of company, third_party",
    ),
    ("tiers, listed", {"tiers": {"gold", "platinum"}}, {"tier": "gold"}, {}, None),
    (
        "tiers, not listed",
        {"tiers": {"gold", "platinum"}},
        {"tier": "silver"},
        {},
        "tier silver is not one of gold, platinum",
    ),
    ("correctable true, correctable", {"correctable": True}, {}, {"correctable": True}, None),
    (
        "correctable true, not correctable",
        {"correctable": True},
        {},
        {"correctable": False},
        "the incident is not correctable",
    ),
    ("correctable false, not correctable", {"correctable": False}, {}, {"correctable": False}, None),
    (
        "correctable false, correctable",
        {"correctable": False},
        {},
        {"correctable": True},
        "the incident is correctable",
    ),
    ("correctable null, correctable", {"correctable": None}, {}, {"correctable": True}, None),
    ("correctable null, not correctable", {"correctable": None}, {}, {"correctable": False}, None),
    ("min_repeat_count, reached", {"min_repeat_count": 2}, {}, {"repeat_count": 2}, None),
    (
        "min_repeat_count, first incident",
        {"min_repeat_count": 2},
        {},
        {"repeat_count": 1},
        "repeat_count 1 is below min_repeat_count 2",
    ),
    (
        "min_same_category_repeat_count, reached",
        {"min_same_category_repeat_count": 2},
        {},
        {"repeat_count": 2, "same_category_repeat_count": 2},
        None,
    ),
    (
        "min_same_category_repeat_count, other categories only",
        {"min_same_category_repeat_count": 2},
        {},
        {"repeat_count": 3, "same_category_repeat_count": 1},
        "same_category_repeat_count 1 is below min_same_category_repeat_count 2",
    ),
    ("min_lifetime_value, exactly", {"min_lifetime_value": D("1000.00")}, {"lifetime_value": D("1000.00")}, {}, None),
    (
        "min_lifetime_value, a cent short",
        {"min_lifetime_value": D("1000.00")},
        {"lifetime_value": D("999.99")},
        {},
        "lifetime value 999.99 is below min_lifetime_value 1000.00",
    ),
    ("min_order_value, exactly", {"min_order_value": D("50.00")}, {}, {"order_value": D("50.00")}, None),
    (
        "min_order_value, a cent short",
        {"min_order_value": D("50.00")},
        {},
        {"order_value": D("49.99")},
        "order value 49.99 is below min_order_value 50.00",
    ),
    ("valid_from, on the first day", {"valid_from": DAY}, {}, {"occurred_on": DAY}, None),
    (
        "valid_from, the day before",
        {"valid_from": DAY},
        {},
        {"occurred_on": DAY - timedelta(days=1)},
        "not valid until 2026-11-20",
    ),
    (
        "valid_until, the day before (exclusive end)",
        {"valid_until": DAY},
        {},
        {"occurred_on": DAY - timedelta(1)},
        None,
    ),
    (
        "valid_until, on the day (exclusive end)",
        {"valid_until": DAY},
        {},
        {"occurred_on": DAY},
        "expired on 2026-11-20",
    ),
]


@pytest.mark.parametrize(
    ("conditions", "customer_kw", "incident_kw", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in CONDITIONS],
)
def test_each_condition_matches_or_fails_with_a_readable_reason(conditions, customer_kw, incident_kw, expected):
    policy = make_policy(**conditions)
    customer = make_customer(**customer_kw)
    incident = make_incident(**incident_kw)

    assert first_failed_condition(policy, customer, incident) == expected

    result = run(policy, customer=customer, incident=incident, explain=True)
    if expected is None:
        assert [o.candidate.policy.id for o in result.options] == [policy.id]
        assert result.not_offered == []
    else:
        assert result.options == []


@pytest.mark.parametrize(
    ("conditions", "customer_kw", "incident_kw", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in CONDITIONS if row[4] is not None],
)
def test_explain_names_the_first_failed_condition(conditions, customer_kw, incident_kw, expected):
    result = run(
        make_policy(**conditions),
        customer=make_customer(**customer_kw),
        incident=make_incident(**incident_kw),
        explain=True,
    )
    assert [(n.policy.id, n.reason) for n in result.not_offered] == [(1, expected)]


def test_dates_compare_with_the_day_the_incident_occurred_not_today():
    long_ago = date(2020, 1, 1)
    policy = make_policy(valid_from=date(2019, 6, 1), valid_until=date(2020, 1, 2))
    assert first_failed_condition(policy, make_customer(), make_incident(occurred_on=long_ago)) is None
    assert (
        first_failed_condition(policy, make_customer(), make_incident(occurred_on=date(2020, 1, 2)))
        == "expired on 2020-01-02"
    )


def test_first_failed_condition_reports_the_first_in_order_when_several_fail():
    policy = make_policy(severity_min=4, tiers={"gold"}, min_order_value=D("500.00"))
    reason = first_failed_condition(policy, make_customer(tier="standard"), make_incident(severity=2))
    assert reason == "severity 2 is below severity_min 4"


def test_explain_lists_a_policy_of_another_category_as_not_covered():
    other = make_policy(id=1, category_ids={1})
    shown = make_policy(id=2)
    result = run(other, shown, incident=make_incident(category_id=2), explain=True)
    assert [o.candidate.policy.id for o in result.options] == [2]
    assert reasons_by_policy(result) == {1: "category 'damaged item' is not covered"}


# --- Through the database: policy_index_build --------------------------------------------


@pytest.mark.django_db
def test_index_built_from_database_keeps_active_policies_only():
    late = CategoryFactory(slug="late_delivery", name="late delivery")
    active = PolicyFactory(categories=[late])
    inactive = PolicyFactory(active=False, categories=[late])
    inactive_any = PolicyFactory(active=False)
    OfferTemplateFactory(policy=active)
    OfferTemplateFactory(policy=inactive)
    OfferTemplateFactory(policy=inactive_any)

    index = policy_index_build(revision=1)

    assert set(index.policies) == {active.id}
    assert [p.id for p in index.policies_for(late.id)] == [active.id]
    assert index.any_category == ()
    result = run(index=index, incident=make_incident(category_id=late.id, category_name="late delivery"), explain=True)
    assert [o.candidate.policy.id for o in result.options] == [active.id]
    assert {n.policy.id for n in result.not_offered} == set()


@pytest.mark.django_db
def test_index_built_from_database_matches_conditions_and_prices_offers():
    late = CategoryFactory(slug="late_delivery", name="late delivery")
    damaged = CategoryFactory(slug="damaged_item", name="damaged item")
    strict = PolicyFactory(name="Severe only", severity_min=4, categories=[late])
    anywhere = PolicyFactory(name="Goodwill", faults=["company"], priority=10)
    OfferTemplateFactory(policy=strict, kind="refund", value=D("50"), max_amount=D("40.00"), title="{value}% back")
    OfferTemplateFactory(policy=anywhere, kind="fixed_credit", value=D("12.50"), cost=D("5.00"), title="{value} off")

    index = policy_index_build(revision=7)
    assert index.revision == 7
    assert {p.id for p in index.policies_for(late.id)} == {strict.id, anywhere.id}
    assert [p.id for p in index.policies_for(damaged.id)] == [anywhere.id]
    assert [(c.name, value) for c, value in index.policies[anywhere.id].conditions] == [
        ("faults", frozenset({"company"}))
    ]

    mild = make_incident(category_id=late.id, category_name="late delivery", severity=3)
    result = run(index=index, incident=mild, explain=True)
    assert [(o.candidate.kind, o.title, o.candidate.estimated_cost) for o in result.options] == [
        ("fixed_credit", "12.5 off", D("5.00"))
    ]
    assert reasons_by_policy(result) == {strict.id: "severity 3 is below severity_min 4"}

    severe = make_incident(category_id=late.id, category_name="late delivery", severity=4)
    result = run(index=index, incident=severe)
    assert {(o.candidate.kind, o.title, o.candidate.amount) for o in result.options} == {
        ("fixed_credit", "12.5 off", D("12.50")),
        ("refund", "50% back", D("40.00")),
    }


@pytest.mark.django_db
def test_index_built_from_database_keeps_offer_order_and_active_perks_and_categories():
    CategoryFactory(slug="late_delivery")
    CategoryFactory(slug="retired", active=False)
    policy = PolicyFactory()
    second = OfferTemplateFactory(policy=policy, order=2, kind="gift", value=D("5"))
    first = OfferTemplateFactory(policy=policy, order=1, kind="fixed_credit", value=D("5"))
    kept = PerkFactory(tags=["sports", "cooking"])
    PerkFactory(active=False)

    index = policy_index_build(revision=1)

    assert set(index.categories) == {"late_delivery"}
    assert [o.id for o in index.policies[policy.id].offers] == [first.id, second.id]
    assert [(k.id, k.tags) for k in index.perks] == [(kept.id, frozenset({"sports", "cooking"}))]


@pytest.mark.django_db
def test_index_get_rebuilds_when_a_policy_changes():
    CategoryFactory(slug="late_delivery")
    before = policy_index_get()
    assert policy_index_get() is before  # nothing changed: the same object, no rebuild

    policy = PolicyFactory()
    after = policy_index_get()
    assert after.revision != before.revision
    assert policy.id in after.policies

    policy.active = False
    policy.save()
    assert policy.id not in policy_index_get().policies


# --- Offer kinds: value, unit, amount and estimated cost -----------------------------------

KINDS = [
    # (id, offer kwargs, order value, value, unit, amount, estimated cost)
    (
        "percent_discount below the cap",
        {"kind": "percent_discount", "value": D("30"), "max_amount": D("50.00")},
        "120.00",
        "30.00",
        "percent",
        "36.00",
        "36.00",
    ),
    (
        "percent_discount capped by max_amount",
        {"kind": "percent_discount", "value": D("30"), "max_amount": D("20.00")},
        "120.00",
        "30.00",
        "percent",
        "20.00",
        "20.00",
    ),
    (
        "percent_discount with order value 0 costs max_amount",
        {"kind": "percent_discount", "value": D("30"), "max_amount": D("50.00")},
        "0.00",
        "30.00",
        "percent",
        "50.00",
        "50.00",
    ),
    (
        "refund without max_amount",
        {"kind": "refund", "value": D("50")},
        "120.00",
        "50.00",
        "percent",
        "60.00",
        "60.00",
    ),
    (
        "refund capped by max_amount",
        {"kind": "refund", "value": D("50"), "max_amount": D("40.00")},
        "120.00",
        "50.00",
        "percent",
        "40.00",
        "40.00",
    ),
    (
        "refund under a high max_amount",
        {"kind": "refund", "value": D("50"), "max_amount": D("100.00")},
        "120.00",
        "50.00",
        "percent",
        "60.00",
        "60.00",
    ),
    (
        "refund rounds half up to cents",
        {"kind": "refund", "value": D("33.33")},
        "10.01",
        "33.33",
        "percent",
        "3.34",
        "3.34",
    ),
    (
        "refund of an order worth 0",
        {"kind": "refund", "value": D("50")},
        "0.00",
        "50.00",
        "percent",
        "0.00",
        "0.00",
    ),
    (
        "fixed_credit costs its value",
        {"kind": "fixed_credit", "value": D("25.00")},
        "120.00",
        "25.00",
        "amount",
        "25.00",
        "25.00",
    ),
    (
        "fixed_credit costs its cost when given",
        {"kind": "fixed_credit", "value": D("25.00"), "cost": D("10.00")},
        "120.00",
        "25.00",
        "amount",
        "25.00",
        "10.00",
    ),
    (
        "free_shipping costs its value",
        {"kind": "free_shipping", "value": D("8.00")},
        "120.00",
        "8.00",
        "amount",
        "8.00",
        "8.00",
    ),
    (
        "free_shipping costs its cost when given",
        {"kind": "free_shipping", "value": D("8.00"), "cost": D("3.50")},
        "120.00",
        "8.00",
        "amount",
        "8.00",
        "3.50",
    ),
    (
        "expedited_replacement costs its value",
        {"kind": "expedited_replacement", "value": D("30.00")},
        "120.00",
        "30.00",
        "amount",
        "30.00",
        "30.00",
    ),
    (
        "expedited_replacement costs its cost when given",
        {"kind": "expedited_replacement", "value": D("30.00"), "cost": D("22.00")},
        "120.00",
        "30.00",
        "amount",
        "30.00",
        "22.00",
    ),
    ("gift costs its value", {"kind": "gift", "value": D("15.00")}, "120.00", "15.00", "amount", "15.00", "15.00"),
    (
        "gift costs its cost when given",
        {"kind": "gift", "value": D("15.00"), "cost": D("9.00")},
        "120.00",
        "15.00",
        "amount",
        "15.00",
        "9.00",
    ),
    (
        "personalized_perk costs the perk's cost",
        {"kind": "personalized_perk", "value": None},
        "120.00",
        "12.00",
        "amount",
        "12.00",
        "12.00",
    ),
    (
        "escalation costs its cost and has no value",
        {"kind": "escalation", "value": None, "cost": D("40.00")},
        "120.00",
        None,
        None,
        "0.00",
        "40.00",
    ),
]


@pytest.mark.parametrize(
    ("offer_kw", "order_value", "value", "unit", "amount", "cost"),
    [pytest.param(*row[1:], id=row[0]) for row in KINDS],
)
def test_offer_kind_value_amount_and_estimated_cost(offer_kw, order_value, value, unit, amount, cost):
    policy = make_policy(make_offer(**offer_kw))
    result = run(
        policy,
        customer=make_customer(interests={"sports"}),
        incident=make_incident(order_value=D(order_value)),
        perks=[make_perk(1, ["sports"], cost="12.00")],
    )
    [option] = result.options
    candidate = option.candidate
    assert candidate.kind == offer_kw["kind"]
    assert candidate.value == (None if value is None else D(value))
    assert candidate.unit == unit
    assert candidate.amount == D(amount)
    assert candidate.estimated_cost == D(cost)


def test_candidate_for_personalized_perk_without_a_perk_gives_nothing():
    offer = make_offer("personalized_perk", value=None)
    policy = make_policy(offer)
    assert candidate_for(policy, offer, make_customer(), make_incident(), D("1"), None) is None


# --- Generosity -----------------------------------------------------------------------------

GENEROSITY = [
    # (id, policy generosity, customer overrides, incident overrides, multiplier)
    ("no generosity configured", {}, {"lifetime_value": D("9000")}, {"severity": 5}, "1"),
    ("per severity step above 1", {"generosity_per_severity": D("0.10")}, {}, {"severity": 3}, "1.20"),
    ("severity 1 adds nothing", {"generosity_per_severity": D("0.10")}, {}, {"severity": 1}, "1"),
    (
        "per earlier same-category incident",
        {"generosity_per_repeat": D("0.25")},
        {},
        {"repeat_count": 3, "same_category_repeat_count": 3},
        "1.50",
    ),
    (
        "other-category repeats do not count",
        {"generosity_per_repeat": D("0.25")},
        {},
        {"repeat_count": 3, "same_category_repeat_count": 1},
        "1",
    ),
    (
        "per whole 1000 of lifetime value",
        {"generosity_per_1000_lifetime_value": D("0.05")},
        {"lifetime_value": D("2999.99")},
        {},
        "1.10",
    ),
    (
        "all three add up",
        {
            "generosity_per_severity": D("0.10"),
            "generosity_per_repeat": D("0.25"),
            "generosity_per_1000_lifetime_value": D("0.05"),
        },
        {"lifetime_value": D("1000")},
        {"severity": 2, "repeat_count": 2, "same_category_repeat_count": 2},
        "1.40",
    ),
    (
        "capped by the max multiplier",
        {
            "generosity_per_severity": D("0.10"),
            "generosity_per_repeat": D("0.25"),
            "generosity_max_multiplier": D("1.50"),
        },
        {},
        {"severity": 5, "repeat_count": 3, "same_category_repeat_count": 3},
        "1.50",
    ),
]


@pytest.mark.parametrize(
    ("generosity", "customer_kw", "incident_kw", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in GENEROSITY],
)
def test_generosity_multiplier(generosity, customer_kw, incident_kw, expected):
    policy = make_policy(**generosity)
    multiplier = generosity_multiplier(policy, make_customer(**customer_kw), make_incident(**incident_kw))
    assert multiplier == D(expected)


def test_generosity_scales_credits_discounts_and_refunds():
    policy = make_policy(
        make_offer("fixed_credit", value=D("10.00"), cost=D("6.00")),
        make_offer("percent_discount", value=D("20"), max_amount=D("500.00")),
        make_offer("refund", value=D("10")),
        generosity_per_severity=D("0.25"),
    )
    result = run(policy, incident=make_incident(severity=3, order_value=D("100.00")))  # multiplier 1.5
    by_kind = {o.candidate.kind: o.candidate for o in result.options}
    assert (by_kind["fixed_credit"].amount, by_kind["fixed_credit"].estimated_cost) == (D("15.00"), D("9.00"))
    assert (by_kind["percent_discount"].value, by_kind["percent_discount"].amount) == (D("30.00"), D("30.00"))
    assert (by_kind["refund"].value, by_kind["refund"].amount) == (D("15.00"), D("15.00"))
    assert {c.multiplier for c in by_kind.values()} == {D("1.5")}


def test_generosity_never_takes_a_percent_above_100():
    policy = make_policy(
        make_offer("refund", value=D("80")),
        make_offer("percent_discount", value=D("90"), max_amount=D("1000.00")),
        generosity_per_severity=D("0.50"),
        generosity_max_multiplier=D("3.00"),
    )
    result = run(policy, incident=make_incident(severity=5, order_value=D("200.00")))  # multiplier 3
    by_kind = {o.candidate.kind: o.candidate for o in result.options}
    assert by_kind["refund"].value == D("100.00")
    assert by_kind["refund"].amount == D("200.00")
    assert by_kind["percent_discount"].value == D("100.00")
    assert by_kind["percent_discount"].amount == D("200.00")


def test_generosity_does_not_change_perk_or_escalation_costs():
    policy = make_policy(
        make_offer("personalized_perk", value=None, title="{perk_name}"),
        make_offer("escalation", value=None, cost=D("40.00"), title="A manager calls"),
        generosity_per_severity=D("0.25"),
    )
    result = run(
        policy,
        customer=make_customer(interests={"sports"}),
        incident=make_incident(severity=5),
        perks=[make_perk(1, ["sports"], cost="12.00")],
    )
    assert {o.candidate.kind: o.candidate.estimated_cost for o in result.options} == {
        "personalized_perk": D("12.00"),
        "escalation": D("40.00"),
    }


# --- Perks ------------------------------------------------------------------------------------

PERKS = [
    # (id, perks (id, tags, cost), interests, recent perk ids, chosen perk id or None)
    (
        "the biggest overlap wins",
        [(1, ["sports"], "5.00"), (2, ["sports", "cooking"], "20.00")],
        {"sports", "cooking"},
        set(),
        2,
    ),
    (
        "a tie goes to the cheaper perk",
        [(1, ["sports"], "12.00"), (2, ["cooking"], "8.00")],
        {"sports", "cooking"},
        set(),
        2,
    ),
    (
        "a tie at equal cost goes to the older perk",
        [(2, ["cooking"], "8.00"), (1, ["sports"], "8.00")],
        {"sports", "cooking"},
        set(),
        1,
    ),
    (
        "a perk received recently is skipped",
        [(1, ["sports", "cooking"], "5.00"), (2, ["sports"], "9.00")],
        {"sports", "cooking"},
        {1},
        2,
    ),
    ("no shared interest means no perk", [(1, ["gaming"], "5.00")], {"sports"}, set(), None),
    ("a customer without interests gets none", [(1, ["sports"], "5.00")], set(), set(), None),
    ("every matching perk received recently", [(1, ["sports"], "5.00")], {"sports"}, {1}, None),
]


@pytest.mark.parametrize(
    ("perks", "interests", "recent", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in PERKS],
)
def test_best_perk_by_interest(perks, interests, recent, expected):
    compiled = [make_perk(pid, tags, cost) for pid, tags, cost in perks]
    choice = best_perk(compiled, frozenset(interests), frozenset(recent))
    assert (choice[0].id if choice else None) == expected
    if choice:
        assert choice[1] == tuple(sorted(choice[0].tags & interests))

    result = run(
        make_policy(make_offer("personalized_perk", value=None, title="{perk_name} on us")),
        customer=make_customer(interests=interests),
        spending=Spending(recent_perk_ids=frozenset(recent)),
        perks=compiled,
        explain=True,
    )
    if expected is None:
        assert result.options == []
        if not interests:
            reason = "the customer has no interests to match a perk"
        elif recent:  # no date known here: the engine was not given when it was granted
            reason = "the matching perk 'Perk 1' was given to this customer recently"
        else:
            reason = "no active perk matches the customer's interests"
        assert reasons_by_policy(result) == {1: reason}
        assert list(reasons_by_offer(result).values()) == [reason]
    else:
        [option] = result.options
        assert option.candidate.perk.id == expected
        assert option.title == f"Perk {expected} on us"


# --- Budgets ----------------------------------------------------------------------------------

BUDGETS = [
    # (id, policy caps, spending, offer value, kept, explain reason when dropped)
    (
        "monthly: exactly the remaining budget is kept",
        {"monthly_cap": D("100.00")},
        {"month_spent": {1: D("70.00")}},
        "30.00",
        True,
        None,
    ),
    (
        "monthly: a cent more is dropped",
        {"monthly_cap": D("100.00")},
        {"month_spent": {1: D("70.00")}},
        "30.01",
        False,
        "monthly budget has 30.00 left, fixed_credit costs 30.01",
    ),
    (
        "monthly: overspent budget shows 0.00 left",
        {"monthly_cap": D("100.00")},
        {"month_spent": {1: D("120.00")}},
        "1.00",
        False,
        "monthly budget has 0.00 left, fixed_credit costs 1.00",
    ),
    (
        "monthly: another policy's spending does not count",
        {"monthly_cap": D("100.00")},
        {"month_spent": {2: D("100.00")}},
        "100.00",
        True,
        None,
    ),
    ("monthly: nothing spent yet", {"monthly_cap": D("50.00")}, {}, "50.00", True, None),
    (
        "customer: exactly the remaining cap is kept",
        {"per_customer_cap_30d": D("50.00")},
        {"customer_spent_30d": {1: D("20.00")}},
        "30.00",
        True,
        None,
    ),
    (
        "customer: a cent more is dropped",
        {"per_customer_cap_30d": D("50.00")},
        {"customer_spent_30d": {1: D("20.00")}},
        "30.01",
        False,
        "per-customer cap has 30.00 left for this customer, fixed_credit costs 30.01",
    ),
    (
        "customer cap binds under a roomy monthly budget",
        {"monthly_cap": D("1000.00"), "per_customer_cap_30d": D("25.00")},
        {"month_spent": {1: D("10.00")}, "customer_spent_30d": {1: D("5.00")}},
        "20.01",
        False,
        "per-customer cap has 20.00 left for this customer, fixed_credit costs 20.01",
    ),
    (
        "no caps: unlimited",
        {},
        {"month_spent": {1: D("99999.00")}, "customer_spent_30d": {1: D("99999.00")}},
        "500.00",
        True,
        None,
    ),
]


@pytest.mark.parametrize(
    ("caps", "spent", "value", "kept", "reason"),
    [pytest.param(*row[1:], id=row[0]) for row in BUDGETS],
)
def test_budget_and_customer_cap_exclude_what_they_cannot_cover(caps, spent, value, kept, reason):
    policy = make_policy(make_offer("fixed_credit", value=D(value)), **caps)
    result = run(policy, spending=Spending(**spent), explain=True)
    assert len(result.options) == (1 if kept else 0)
    assert reasons_by_policy(result) == ({} if kept else {1: reason})


def test_budget_drops_only_the_offers_it_cannot_cover():
    policy = make_policy(
        make_offer("fixed_credit", value=D("40.00")),
        make_offer("gift", value=D("15.00")),
        make_offer("escalation", value=None, cost=D("0.00"), title="A manager calls"),
        monthly_cap=D("100.00"),
    )
    result = run(policy, spending=Spending(month_spent={1: D("80.00")}), explain=True)
    assert {o.candidate.kind for o in result.options} == {"gift", "escalation"}
    assert reasons_by_policy(result) == {}  # the policy did produce options
    [credit] = [o for o in policy.offers if o.kind == "fixed_credit"]
    assert reasons_by_offer(result) == {credit.id: "monthly budget has 20.00 left, fixed_credit costs 40.00"}


def test_budget_counts_the_offers_cost_not_its_face_value():
    policy = make_policy(make_offer("gift", value=D("50.00"), cost=D("20.00")), monthly_cap=D("20.00"))
    [option] = run(policy).options
    assert (option.candidate.amount, option.candidate.estimated_cost) == (D("50.00"), D("20.00"))


# --- Texts ------------------------------------------------------------------------------------


def only_option(offer: CompiledOffer, **kw: Any):
    [option] = run(make_policy(offer), **kw).options
    return option


@pytest.mark.parametrize(
    ("offer_kw", "expected"),
    [
        pytest.param({"kind": "percent_discount", "value": D("30.00"), "max_amount": D("50")}, "30", id="30"),
        pytest.param({"kind": "percent_discount", "value": D("12.50"), "max_amount": D("50")}, "12.5", id="12.5"),
        pytest.param({"kind": "refund", "value": D("100")}, "100", id="100"),
        pytest.param({"kind": "fixed_credit", "value": D("20.00")}, "20", id="20.00"),
        pytest.param({"kind": "gift", "value": D("7.25")}, "7.25", id="7.25"),
        pytest.param({"kind": "free_shipping", "value": D("0.50")}, "0.5", id="0.50"),
    ],
)
def test_value_placeholder_drops_trailing_zeros(offer_kw, expected):
    option = only_option(make_offer(title="[{value}]", **offer_kw))
    assert option.title == f"[{expected}]"


def test_every_placeholder_is_rendered():
    template = "{customer_name}|{incident}|{value}|{amount}|{currency}|{perk_name}"
    option = only_option(
        make_offer("personalized_perk", value=None, title=template, message="Dear " + template),
        customer=make_customer(name="Linda Park", interests={"sports"}),
        perks=[make_perk(3, ["sports"], cost="12.50", name="Premium Sports Pass")],
    )
    expected = "Linda Park|late delivery|12.5|12.50|USD|Premium Sports Pass"
    assert option.title == expected
    assert option.message == "Dear " + expected


def test_amount_has_two_decimals_and_value_none_renders_empty_for_escalation():
    option = only_option(
        make_offer("escalation", value=None, cost=D("40"), title="[{value}] {amount} {currency}", message="")
    )
    assert option.title == "[] 0.00 USD"
    assert not PLACEHOLDER_RE.search(option.message)


def test_percent_amount_placeholder_is_the_money_value():
    option = only_option(
        make_offer("percent_discount", value=D("30"), max_amount=D("50"), title="{value}% ({amount} {currency})"),
        incident=make_incident(order_value=D("120.00")),
    )
    assert option.title == "30% (36.00 USD)"


ODD_NAMES = [
    pytest.param("{x}", id="braces"),
    pytest.param("%s", id="percent-s"),
    pytest.param("%(name)s", id="percent-mapping"),
    pytest.param("Zoë 李 😀", id="unicode"),
    pytest.param("{0}", id="positional-field"),
    pytest.param("a{b", id="lone-open-brace"),
    pytest.param("}", id="lone-close-brace"),
    pytest.param("{x.y}", id="attribute-field"),
    pytest.param("{amount}", id="a-placeholder-name"),
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_customer_names_render_literally(name):
    option = only_option(
        make_offer(title="Credit for {customer_name}", message="{customer_name}, sorry about the {incident}."),
        customer=make_customer(name=name),
    )
    assert option.title == f"Credit for {name}"
    assert option.message == f"{name}, sorry about the late delivery."


def test_empty_customer_name_does_not_crash_or_leave_placeholders():
    option = only_option(
        make_offer(title="Credit for {customer_name}", message="{customer_name}, sorry about the {incident}."),
        customer=make_customer(name=""),
    )
    assert not PLACEHOLDER_RE.search(option.title + option.message)
    assert not option.message.startswith(",")
    assert option.message.endswith(", sorry about the late delivery.")


def test_empty_message_gets_a_default_sentence_from_the_title():
    option = only_option(make_offer(title="{amount} {currency} credit", message=""))
    assert option.title == "10.00 USD credit"
    assert "Linda Park" in option.message
    assert "late delivery" in option.message
    assert "10.00 USD credit" in option.message
    assert not PLACEHOLDER_RE.search(option.message)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("{x}", id="braces"),
        pytest.param("%s", id="percent-s"),
        pytest.param("Zoë 李 😀", id="unicode"),
        pytest.param("", id="empty"),
    ],
)
def test_default_message_with_odd_names(name):
    option = only_option(make_offer(title="Credit for {customer_name}", message=""), customer=make_customer(name=name))
    assert not PLACEHOLDER_RE.search(option.message)
    assert option.message.endswith(f"I'm sorry about the late delivery: {option.title}")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("{0}", id="positional-field"),
        pytest.param("a{b", id="lone-open-brace"),
        pytest.param("}", id="lone-close-brace"),
        pytest.param("{x.y}", id="attribute-field"),
        pytest.param("{currency}", id="a-placeholder-name"),
    ],
)
def test_default_message_renders_brace_names_literally(name):
    option = only_option(make_offer(title="Credit for {customer_name}", message=""), customer=make_customer(name=name))
    assert option.title == f"Credit for {name}"
    assert option.message == f"{name}, I'm sorry about the late delivery: Credit for {name}"


def test_render_does_not_crash_on_a_broken_template():
    option = only_option(make_offer(title="Credit {amount"))
    assert option.title == "Credit {amount"
    assert render("{customer_name}", option.candidate, make_customer(name="Bo"), make_incident(), CURRENCY) == "Bo"


# --- Approval and escalation -------------------------------------------------------------------

APPROVAL = [
    # (id, requires_approval flag, estimated cost, approval limit, requires approval)
    ("flagged, cheap", True, "10.00", D("100.00"), True),
    ("not flagged, at the limit", False, "100.00", D("100.00"), False),
    ("not flagged, a cent above the limit", False, "100.01", D("100.00"), True),
    ("manager (no limit), costly", False, "5000.00", None, False),
    ("manager (no limit), flagged", True, "10.00", None, True),
]


@pytest.mark.parametrize(
    ("flag", "cost", "limit", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in APPROVAL],
)
def test_requires_approval(flag, cost, limit, expected):
    option = only_option(
        make_offer("gift", value=D("1.00"), cost=D(cost), requires_approval=flag), approval_limit=limit
    )
    assert option.requires_approval is expected


def test_escalating_policies_lists_matching_policies_that_escalate():
    escalates = make_policy(id=1, escalate=True, severity_min=5)
    quiet = make_policy(id=2, severity_min=5)
    escalates_elsewhere = make_policy(id=3, escalate=True, severity_max=2)
    escalates_too = make_policy(id=4, escalate=True, correctable=False, priority=90)
    result = run(
        escalates,
        quiet,
        escalates_elsewhere,
        escalates_too,
        incident=make_incident(severity=5, correctable=False),
    )
    assert [p.id for p in result.escalating_policies] == [4, 1]

    calm = run(escalates, quiet, escalates_elsewhere, escalates_too, incident=make_incident(severity=3))
    assert calm.escalating_policies == []


def test_explain_names_policies_ranked_below_the_shown_options():
    policies = [
        make_policy(make_offer(kind, value=D("10.00")), id=pid, priority=priority)
        for pid, kind, priority in [
            (1, "fixed_credit", 90),
            (2, "gift", 80),
            (3, "free_shipping", 70),
            (4, "expedited_replacement", 10),
        ]
    ]
    result = run(*policies, explain=True)
    assert [o.candidate.policy.id for o in result.options] == [1, 2, 3]
    assert reasons_by_policy(result) == {4: "ranked below the options shown"}
    [why] = reasons_by_offer(result).values()
    assert re.fullmatch(r"ranked below the options shown \(score 0\.\d+ < 0\.\d+ of option c\)", why), why


@pytest.mark.django_db
def test_index_precomputes_what_a_category_must_read_about_budgets_and_perks():
    from policies.index import budget_scope_of

    late = CategoryFactory(slug="late_delivery", name="late delivery")
    capped = PolicyFactory(monthly_cap=D("100.00"), categories=[late])
    per_customer = PolicyFactory(per_customer_cap_30d=D("30.00"))
    OfferTemplateFactory(policy=capped)
    OfferTemplateFactory(policy=per_customer, kind="personalized_perk", title="{perk_name}", value=None)

    index = policy_index_build(revision=1)
    scope = index.budget_scope(late.id)

    assert (scope.monthly_capped, scope.customer_capped, scope.wants_perks) == ((capped.id,), (per_customer.id,), True)
    assert scope == budget_scope_of(index.policies_for(late.id))


# --- Remedy and lead placement -----------------------------------------------------------------


def test_a_remedy_is_priced_as_written_not_scaled_by_generosity_and_not_ranked():
    policy = make_policy(
        make_offer("gift", value=D("5.00")),
        remedies=(make_offer("refund", value=D("100"), max_amount=D("90.00"), title="{money} back"),),
        generosity_per_severity=D("0.50"),
    )

    result = run(policy, incident=make_incident(severity=5, order_value=D("120.00")))

    [item] = result.remedy
    assert (item.candidate.value, item.candidate.amount, item.candidate.estimated_cost) == (
        D("100"),
        D("90.00"),
        D("90.00"),
    )
    assert item.title == "$90.00 back"
    assert [o.candidate.kind for o in result.options] == ["gift"]
    assert result.options[0].candidate.amount == D("10.00")  # the option is scaled: 5 × min(1 + 0.5 × 4, 2)


def test_a_refund_remedy_of_nothing_is_left_out():
    policy = make_policy(remedies=(make_offer("refund", value=D("100")), make_offer("gift", value=D("3.00"))))

    result = run(policy, incident=make_incident(order_value=D("0")))

    assert [item.candidate.kind for item in result.remedy] == ["gift"]


def test_a_policy_that_does_not_apply_gives_no_remedy():
    policy = make_policy(remedies=(make_offer("gift", value=D("3.00")),), severity_min=5)

    assert run(policy, incident=make_incident(severity=2)).remedy == []


def test_of_two_lead_policies_of_equal_priority_the_older_leads():
    def lead(pid: int, kind: str) -> CompiledPolicy:
        return make_policy(make_offer(kind, value=D("1.00")), id=pid, priority=40, lead=True)

    generous = make_policy(
        make_offer("fixed_credit", value=D("30.00")), make_offer("gift", value=D("25.00")), id=1, priority=90
    )

    result = run(generous, lead(7, "free_shipping"), lead(4, "expedited_replacement"))

    assert [(o.label, o.candidate.policy.id) for o in result.options] == [("a", 4), ("b", 1), ("c", 1)]
    assert result.options[0].reasons[-1].startswith("leads: policy 'Policy 4' was written for this case")


def test_an_offer_of_the_leading_options_kind_says_the_option_leads():
    lead = make_policy(make_offer("fixed_credit", value=D("1.00"), title="lead credit"), id=2, priority=10, lead=True)
    generous = make_policy(make_offer("fixed_credit", value=D("30.00"), title="big credit"), id=1, priority=90)

    result = run(generous, lead, explain=True)

    assert [o.candidate.policy.id for o in result.options] == [2, 1]  # two candidates, one kind: both shown
    three = make_policy(
        make_offer("fixed_credit", value=D("25.00"), title="other credit"),
        make_offer("gift", value=D("20.00")),
        make_offer("free_shipping", value=D("20.00")),
        id=3,
        priority=80,
    )
    result = run(generous, lead, three, explain=True)
    assert result.options[0].candidate.policy.id == 2
    why = {n.offer.title: n.reason for n in result.not_offered if n.offer is not None}
    assert why == {
        "big credit": "same kind as option a, which leads: its policy was written for this case",
        "other credit": "same kind as option a, which leads: its policy was written for this case",
    }
