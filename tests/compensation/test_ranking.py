"""Ranking: order, score breakdown, diversity of kinds, ties, propensity, priority, value and reasons."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import pytest

from compensation import ranking
from compensation.engine import candidate_for
from compensation.engine_types import Spending
from tests.compensation.test_engine import (
    make_customer,
    make_incident,
    make_offer,
    make_perk,
    make_policy,
    run,
)

D = Decimal


def credit_policy(pid: int, *, priority: int = 50, value: str = "10.00", kind: str = "fixed_credit", **kw):
    """A policy with one offer whose id is ``pid * 10``, so stats can address it."""
    return make_policy(make_offer(kind, id=pid * 10, value=D(value)), id=pid, priority=priority, **kw)


def mixed_policies():
    return [
        make_policy(
            make_offer("fixed_credit", id=11, value=D("15.00")),
            make_offer("percent_discount", id=12, value=D("20"), max_amount=D("30.00")),
            id=1,
            priority=70,
        ),
        make_policy(make_offer("gift", id=21, value=D("40.00"), cost=D("12.00")), id=2, priority=40),
        make_policy(make_offer("refund", id=31, value=D("50")), id=3, priority=90),
        make_policy(make_offer("personalized_perk", id=41, value=None, title="{perk_name}"), id=4, priority=60),
        make_policy(make_offer("escalation", id=51, value=None, cost=D("40.00"), title="Call"), id=5, priority=20),
    ]


SCENARIOS = {
    "new offers": {},
    "with stats": {"stats": {11: (40, 30), 21: (10, 0), 31: (100, 5), 41: (3, 3)}},
    "loyal repeat customer": {
        "customer": make_customer(tier="platinum", lifetime_value=D("12000"), interests={"sports"}),
        "incident": make_incident(severity=4, repeat_count=3, same_category_repeat_count=2),
    },
    "cheap order": {"incident": make_incident(order_value=D("5.00"), severity=1)},
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scores_never_increase_from_a_to_c(scenario):
    kw = {"customer": make_customer(interests={"sports"}), **SCENARIOS[scenario]}
    result = run(*mixed_policies(), perks=[make_perk(1, ["sports"])], **kw)
    assert [o.label for o in result.options] == ["a", "b", "c"]
    scores = [o.score for o in result.options]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_score_is_the_product_of_its_breakdown(scenario):
    kw = {"customer": make_customer(interests={"sports"}), **SCENARIOS[scenario]}
    result = run(*mixed_policies(), perks=[make_perk(1, ["sports"])], **kw)
    for option in result.options:
        assert {"propensity", "priority_weight", "value"} <= set(option.score_breakdown)
        assert option.score == pytest.approx(math.prod(option.score_breakdown.values()), rel=1e-5)


def test_score_is_the_product_of_its_breakdown_for_a_low_score():
    # A new offer from a priority-0 policy, costing far more than a severity-1 incident warrants.
    result = run(credit_policy(1, priority=0, value="300.00"), incident=make_incident(severity=1))
    [option] = result.options
    assert option.score == pytest.approx(math.prod(option.score_breakdown.values()), rel=1e-5)


# --- Diversity ------------------------------------------------------------------------------


def test_three_or_more_kinds_give_three_different_kinds():
    # Four credits outrank everything else; diversity still brings two other kinds in.
    credits = [credit_policy(pid, priority=100) for pid in (1, 2, 3, 4)]
    others = [
        credit_policy(5, priority=10, kind="gift"),
        credit_policy(6, priority=5, kind="free_shipping"),
        credit_policy(7, priority=0, kind="expedited_replacement"),
    ]
    result = run(*credits, *others)
    assert [o.candidate.kind for o in result.options] == ["fixed_credit", "gift", "free_shipping"]
    assert [o.candidate.policy.id for o in result.options] == [1, 5, 6]


def test_two_kinds_both_appear():
    credits = [credit_policy(pid, priority=100) for pid in (1, 2, 3, 4)]
    result = run(*credits, credit_policy(5, priority=0, kind="gift"))
    assert [(o.candidate.kind, o.candidate.policy.id) for o in result.options] == [
        ("fixed_credit", 1),
        ("fixed_credit", 2),
        ("gift", 5),
    ]


def test_one_kind_gives_up_to_three_options_of_that_kind_best_first():
    policies = [credit_policy(pid, priority=priority) for pid, priority in [(1, 10), (2, 90), (3, 50), (4, 70), (5, 0)]]
    result = run(*policies)
    assert [(o.label, o.candidate.kind, o.candidate.policy.id) for o in result.options] == [
        ("a", "fixed_credit", 2),
        ("b", "fixed_credit", 4),
        ("c", "fixed_credit", 3),
    ]


def test_fewer_candidates_than_three_give_fewer_options():
    result = run(credit_policy(1), credit_policy(2))
    assert [o.label for o in result.options] == ["a", "b"]
    assert run(credit_policy(1, severity_min=5)).options == []


# --- Determinism and ties --------------------------------------------------------------------


def test_same_input_gives_identical_output():
    kw = {
        "customer": make_customer(tier="gold", lifetime_value=D("3000"), interests={"sports", "cooking"}),
        "incident": make_incident(severity=4, repeat_count=2, same_category_repeat_count=2),
        "stats": {11: (20, 8), 31: (20, 2)},
        "spending": Spending(month_spent={2: D("10.00")}),
        "explain": True,
    }
    first = run(*mixed_policies(), perks=[make_perk(1, ["sports"]), make_perk(2, ["cooking"])], **kw)
    second = run(*mixed_policies(), perks=[make_perk(1, ["sports"]), make_perk(2, ["cooking"])], **kw)
    assert first == second
    assert [o.candidate.offer.id for o in first.options] == [o.candidate.offer.id for o in second.options]


def test_identical_policies_tie_break_by_policy_id():
    result = run(credit_policy(7), credit_policy(3), credit_policy(5))
    assert len({o.score for o in result.options}) == 1
    assert [o.candidate.policy.id for o in result.options] == [3, 5, 7]


def test_identical_policies_differing_in_priority_rank_the_higher_priority_first():
    result = run(credit_policy(1, priority=40), credit_policy(2, priority=60))
    assert [o.candidate.policy.id for o in result.options] == [2, 1]
    assert result.options[0].score > result.options[1].score


def _scored(pid: int, priority: int, score: float = 0.5) -> ranking.Scored:
    policy = credit_policy(pid, priority=priority)
    candidate = candidate_for(policy, policy.offers[0], make_customer(), make_incident(), D("1"), None)
    return ranking.Scored(candidate, score, 1.0, 1.0, score, (0, 0), 10.0)


def test_equal_scores_break_by_policy_priority_then_policy_id():
    items = [_scored(9, 40), _scored(4, 60), _scored(2, 40), _scored(1, 10, score=0.6)]
    chosen = ranking.select(items, limit=3)
    assert [(s.candidate.policy.id, s.candidate.policy.priority) for s in chosen] == [(1, 10), (4, 60), (2, 40)]
    assert [s.candidate.policy.id for s in ranking.select(list(reversed(items)), limit=3)] == [1, 4, 2]


# --- Propensity --------------------------------------------------------------------------------


def test_propensity_of_a_new_offer_is_the_prior_not_zero():
    assert ranking.propensity(0, 0) == pytest.approx(1 / 3)
    [option] = run(credit_policy(1)).options
    assert option.score_breakdown["propensity"] == pytest.approx(1 / 3, rel=1e-3)
    assert any("new option" in r for r in option.reasons)


@pytest.mark.parametrize(
    ("offered", "chosen", "direction"),
    [(30, 20, 1), (30, 0, -1), (6, 2, 0), (300, 100, 0), (3, 3, 1), (3, 0, -1)],
)
def test_propensity_moves_with_outcomes(offered, chosen, direction):
    value = ranking.propensity(offered, chosen)
    assert 0 < value < 1
    assert (value > ranking.PRIOR_ACCEPTANCE + 1e-9) - (value < ranking.PRIOR_ACCEPTANCE - 1e-9) == direction


def test_propensity_rises_with_choices_and_falls_with_passes():
    assert ranking.propensity(10, 5) < ranking.propensity(10, 8)
    assert ranking.propensity(10, 2) > ranking.propensity(40, 2)


def test_an_often_chosen_offer_ranks_above_an_otherwise_identical_one():
    # Policy 2 would lose the tie by id; its outcomes lift it.
    result = run(credit_policy(1), credit_policy(2), stats={20: (30, 20)})
    assert [o.candidate.policy.id for o in result.options] == [2, 1]
    assert result.options[0].score_breakdown["propensity"] > result.options[1].score_breakdown["propensity"]


def test_an_offer_passed_over_ranks_below_an_otherwise_identical_new_one():
    # Policy 1 would win the tie by id; being passed over sinks it.
    result = run(credit_policy(1), credit_policy(2), stats={10: (30, 0)})
    assert [o.candidate.policy.id for o in result.options] == [2, 1]


# --- Priority -----------------------------------------------------------------------------------


def test_priority_weight_grows_with_priority():
    weights = [ranking.priority_weight(p) for p in range(101)]
    assert all(a < b for a, b in itertools.pairwise(weights))
    assert weights[0] == pytest.approx(0.5)
    assert weights[100] == pytest.approx(2.0)


# --- Value --------------------------------------------------------------------------------------

ALLOWANCE = [
    # (id, customer overrides, incident overrides) each warranting more than the base case
    ("more lifetime value", {"lifetime_value": D("5000")}, {}),
    ("a same-category repeat", {}, {"repeat_count": 2, "same_category_repeat_count": 2}),
    ("an other-category repeat", {}, {"repeat_count": 2}),
    ("higher severity", {}, {"severity": 4}),
    ("gold tier", {"tier": "gold"}, {}),
]


@pytest.mark.parametrize(("customer_kw", "incident_kw"), [pytest.param(*row[1:], id=row[0]) for row in ALLOWANCE])
def test_cost_allowance_grows(customer_kw, incident_kw):
    base = ranking.cost_allowance(customer=make_customer(), incident=make_incident())
    more = ranking.cost_allowance(customer=make_customer(**customer_kw), incident=make_incident(**incident_kw))
    assert more > base


def value_pair():
    return [credit_policy(1, value="10.00"), credit_policy(2, value="60.00", kind="gift")]


def test_a_small_incident_prefers_the_cheaper_option():
    result = run(*value_pair(), incident=make_incident(severity=2))
    assert [o.candidate.policy.id for o in result.options] == [1, 2]


@pytest.mark.parametrize(
    ("customer_kw", "incident_kw"),
    [
        pytest.param({"lifetime_value": D("20000")}, {}, id="lifetime value"),
        pytest.param({}, {"repeat_count": 5, "same_category_repeat_count": 5}, id="repeats"),
    ],
)
def test_lifetime_value_or_repeats_let_the_costlier_option_rank_higher(customer_kw, incident_kw):
    result = run(
        *value_pair(), customer=make_customer(**customer_kw), incident=make_incident(severity=2, **incident_kw)
    )
    assert [o.candidate.policy.id for o in result.options] == [2, 1]
    assert result.options[0].score_breakdown["value"] > result.options[1].score_breakdown["value"]


def test_an_option_worth_more_than_it_costs_scores_higher():
    face = credit_policy(1, value="20.00")
    discounted = make_policy(make_offer("fixed_credit", id=20, value=D("20.00"), cost=D("10.00")), id=2)
    result = run(face, discounted)
    assert [o.candidate.policy.id for o in result.options] == [2, 1]


# --- Reasons ------------------------------------------------------------------------------------


def test_reasons_are_plain_non_empty_strings_naming_the_rank():
    result = run(
        *mixed_policies(),
        customer=make_customer(interests={"sports"}),
        perks=[make_perk(1, ["sports"])],
        stats={11: (10, 4)},
    )
    assert len(result.options) == 3
    for option, ordinal in zip(result.options, ["first", "second", "third"], strict=True):
        assert option.reasons
        assert all(isinstance(r, str) and r.strip() and "\n" not in r and "{" not in r for r in option.reasons)
        assert sum(r.startswith(f"ranked {ordinal}") for r in option.reasons) == 1


def test_reasons_mention_the_same_mistake_twice():
    [option] = run(credit_policy(1), incident=make_incident(repeat_count=2, same_category_repeat_count=2)).options
    assert any("same mistake twice" in r for r in option.reasons)

    [first_time] = run(credit_policy(1)).options
    assert not any("same mistake" in r for r in first_time.reasons)


def test_reasons_mention_the_matched_interest_for_a_perk():
    [option] = run(
        make_policy(make_offer("personalized_perk", value=None, title="{perk_name}")),
        customer=make_customer(interests={"sports", "cooking"}),
        perks=[make_perk(1, ["cooking", "gaming"])],
    ).options
    assert any("interest" in r and "cooking" in r for r in option.reasons)
    assert not any("sports" in r for r in option.reasons)
