"""Ranking: order, score breakdown, diversity of kinds, ties, propensity, priority, value and reasons."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import pytest

from compensation import learning, ranking
from compensation.engine import candidate_for
from compensation.engine_types import Spending
from compensation.learning import OfferCounts
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


def run_scenario(scenario: str):
    kw = {"customer": make_customer(interests={"sports"}), **SCENARIOS[scenario]}
    return run(*mixed_policies(), perks=[make_perk(1, ["sports"])], **kw)


# --- The options of each scenario, worked out by hand --------------------------------------------
#
# The formula, read from compensation/ranking.py's docstring and constants:
#   score = propensity × priority_weight × value; each factor is shown to 4 significant digits
#   and the shown score is the product of the shown factors, to 6 significant digits.
#   propensity = (chosen + 6 × 1/3) / (offered + 6), so 1/3 = 0.3333 for a new offer.
#   priority_weight = 0.5 + 1.5 × priority / 100:
#     policy 1 (70) 1.55, policy 2 (40) 1.1, policy 3 (90) 1.85, policy 4 (60) 1.4, policy 5 (20) 0.8.
#   allowance = 8 × severity × repeats × lifetime × tier, where
#     repeats = 1 + 0.5 × (same-category count − 1) + 0.2 × (incident count − 1),
#     lifetime = 1 + min(lifetime value, 20000) / 5000, tier = 1 standard, 1.25 gold, 1.5 platinum.
#   value = fit × worth × (1 + 0.3 per matched interest), r = max(cost, 1) / allowance,
#     fit = r^0.25 when r ≤ 1, else r^-0.75; worth = amount / cost within 0.5..2, 1.5 for a perk;
#     an escalation's value is 1 whatever it costs.
# The offers of mixed_policies() (README, "Offer kinds"), the order worth 120.00 unless told:
#   11 credit 15.00 (cost 15, worth 1); 12 discount 20 % capped at 30 (cost 20 % of the order, worth 1);
#   21 gift worth 40.00 costing 12.00 (worth 40 / 12 → 2); 31 refund 50 % (cost 50 % of the order, worth 1);
#   41 perk 1 (cost 12, worth 1.5, "sports" matched → × 1.3); 51 escalation (value 1).
# The best three are distinct in kind in every scenario, so a, b, c are simply the top three.
#
# "new offers": allowance 8 × 3 = 24; every propensity 0.3333.
#   41 perk      (12/24)^0.25 × 1.5 × 1.3 = 0.8409 × 1.95 = 1.640  → 0.3333 × 1.4  × 1.64  = 0.765257  a
#   21 gift      (12/24)^0.25 × 2         = 0.8409 × 2    = 1.682  → 0.3333 × 1.1  × 1.682 = 0.616672  b
#   12 discount  24 (20 % of 120) / 24 = 1                = 1      → 0.3333 × 1.55 × 1     = 0.516615  c
#   11 credit    (15/24)^0.25             = 0.8891                 → 0.3333 × 1.55 × 0.8891 = 0.459322
#   31 refund    (60/24)^-0.75            = 0.503                  → 0.3333 × 1.85 × 0.503  = 0.310152
#   51 escalation                            1                     → 0.3333 × 0.8  × 1      = 0.26664
# "with stats": the same values; propensities 11: (30 + 2) / (40 + 6) = 0.6957, 21: 2 / 16 = 0.125,
#   31: 7 / 106 = 0.06604, 41: 5 / 9 = 0.5556, the rest 0.3333.
#   41 perk      0.5556 × 1.4  × 1.64   = 1.27566   a
#   11 credit    0.6957 × 1.55 × 0.8891 = 0.958748  b (its outcomes lift it from fourth)
#   12 discount  0.3333 × 1.55 × 1      = 0.516615  c
#   51 escalation 0.26664; 21 gift 0.125 × 1.1 × 1.682 = 0.231275; 31 refund 0.06604 × 1.85 × 0.503 = 0.0614535
# "loyal repeat customer": allowance 8 × 4 × (1 + 0.5 × 1 + 0.2 × 2) × (1 + 12000/5000) × 1.5
#   = 32 × 1.9 × 3.4 × 1.5 = 310.08; every propensity 0.3333; nothing costs near the allowance.
#   31 refund    (60/310.08)^0.25 = 0.6632                          → 0.3333 × 1.85 × 0.6632 = 0.408932  a
#   41 perk      (12/310.08)^0.25 × 1.5 × 1.3 = 0.4435 × 1.95 = 0.8649 → 0.3333 × 1.4 × 0.8649 = 0.40358   b
#   21 gift      (12/310.08)^0.25 × 2 = 0.8871                      → 0.3333 × 1.1  × 0.8871 = 0.325237  c
#   12 discount  (24/310.08)^0.25 = 0.5275 → 0.272514; 51 escalation 0.26664;
#   11 credit    (15/310.08)^0.25 = 0.469  → 0.242292
# "cheap order": allowance 8 × 1 = 8; the order is worth 5.00; every propensity 0.3333.
#   41 perk      (12/8)^-0.75 × 1.5 × 1.3 = 0.7378 × 1.95 = 1.439 → 0.3333 × 1.4  × 1.439  = 0.671466  a
#   21 gift      (12/8)^-0.75 × 2 = 1.476                          → 0.3333 × 1.1  × 1.476  = 0.541146  b
#   31 refund    2.50 (50 % of 5) → (2.5/8)^0.25 = 0.7477          → 0.3333 × 1.85 × 0.7477 = 0.461036  c
#   11 credit    (15/8)^-0.75 = 0.6241 → 0.322419;
#   12 discount  1.00 (20 % of 5) → (1/8)^0.25 = 0.5946 → 0.307179; 51 escalation 0.26664
EXPECTED = {
    # scenario: [(offer id, (propensity, priority_weight, value), score) for a, b, c]
    "new offers": [
        (41, (0.3333, 1.4, 1.64), 0.765257),
        (21, (0.3333, 1.1, 1.682), 0.616672),
        (12, (0.3333, 1.55, 1.0), 0.516615),
    ],
    "with stats": [
        (41, (0.5556, 1.4, 1.64), 1.27566),
        (11, (0.6957, 1.55, 0.8891), 0.958748),
        (12, (0.3333, 1.55, 1.0), 0.516615),
    ],
    "loyal repeat customer": [
        (31, (0.3333, 1.85, 0.6632), 0.408932),
        (41, (0.3333, 1.4, 0.8649), 0.40358),
        (21, (0.3333, 1.1, 0.8871), 0.325237),
    ],
    "cheap order": [
        (41, (0.3333, 1.4, 1.439), 0.671466),
        (21, (0.3333, 1.1, 1.476), 0.541146),
        (31, (0.3333, 1.85, 0.7477), 0.461036),
    ],
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scores_never_increase_from_a_to_c(scenario):
    result = run_scenario(scenario)
    expected = EXPECTED[scenario]
    assert [(o.label, o.candidate.offer.id) for o in result.options] == [
        ("a", expected[0][0]),
        ("b", expected[1][0]),
        ("c", expected[2][0]),
    ]
    scores = [o.score for o in result.options]
    assert scores == [score for _, _, score in expected]
    assert scores[0] > scores[1] > scores[2]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_score_is_the_product_of_its_breakdown(scenario):
    result = run_scenario(scenario)
    for option, (offer_id, (propensity, weight, value), score) in zip(result.options, EXPECTED[scenario], strict=True):
        assert option.candidate.offer.id == offer_id
        assert option.score_breakdown == {"propensity": propensity, "priority_weight": weight, "value": value}
        # The hand-computed score above is the product of these three, to 6 significant digits.
        assert option.score == score
        assert score == pytest.approx(propensity * weight * value, rel=5e-6)


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
    # Two perks tie (one interest each, both 12.00): the older, perk 1, must win every time.
    def once(perks):
        return run(
            *mixed_policies(),
            perks=perks,
            customer=make_customer(tier="gold", lifetime_value=D("3000"), interests={"sports", "cooking"}),
            incident=make_incident(severity=4, repeat_count=2, same_category_repeat_count=2),
            stats={11: (20, 8), 31: (20, 2)},
            spending=Spending(month_spent={2: D("10.00")}),
            explain=True,
        )

    first = once([make_perk(1, ["sports"]), make_perk(2, ["cooking"])])
    second = once([make_perk(1, ["sports"]), make_perk(2, ["cooking"])])
    listed_the_other_way = once([make_perk(2, ["cooking"]), make_perk(1, ["sports"])])
    assert first == second == listed_the_other_way

    # By hand (the formula above): allowance 8 × 4 × (1 + 0.5 × 1 + 0.2 × 1) × (1 + 3000/5000) × 1.25
    # = 32 × 1.7 × 1.6 × 1.25 = 108.8; propensity 11: (8 + 2) / (20 + 6) = 0.3846, 31: 4 / 26 = 0.1538.
    #   41 perk 1   (12/108.8)^0.25 × 1.5 × 1.3 = 0.5763 × 1.95 = 1.124 → 0.3333 × 1.4  × 1.124  = 0.524481  a
    #   21 gift     (12/108.8)^0.25 × 2 = 1.153                         → 0.3333 × 1.1  × 1.153  = 0.422724  b
    #   11 credit   (15/108.8)^0.25 = 0.6093                            → 0.3846 × 1.55 × 0.6093 = 0.363222  c
    #   12 discount (24/108.8)^0.25 = 0.6853 → 0.354036; 51 escalation 0.26664;
    #   31 refund   (60/108.8)^0.25 = 0.8617 → 0.1538 × 1.85 × 0.8617 = 0.24518
    # b against a: equal propensity, value 1.153 / 1.124 > 1, priority weight 1.1 / 1.4 < 1: its priority.
    # c against b: propensity and weight higher, value 0.6093 / 1.153 ≈ 0.53: its value.
    assert [
        (o.label, o.candidate.offer.id, o.candidate.perk and o.candidate.perk.id, o.title, o.score_breakdown, o.score)
        for o in first.options
    ] == [
        ("a", 41, 1, "Perk 1", {"propensity": 0.3333, "priority_weight": 1.4, "value": 1.124}, 0.524481),
        ("b", 21, None, "40.00 USD credit", {"propensity": 0.3333, "priority_weight": 1.1, "value": 1.153}, 0.422724),
        ("c", 11, None, "15.00 USD credit", {"propensity": 0.3846, "priority_weight": 1.55, "value": 0.6093}, 0.363222),
    ]
    assert [o.reasons[-1] for o in first.options] == [
        "ranked first: highest score (0.524), priority 60",
        "ranked second: lower policy priority than the option above",
        "ranked third: lower value for its cost than the option above",
    ]
    # Every policy matches; the refund (policy 3) and the escalation (policy 5) ranked below; so did the
    # discount of policy 1, whose credit is option c. Each offer not shown says by how much, against c's 0.363.
    assert [(n.policy.id, n.offer and n.offer.id, n.reason) for n in first.not_offered] == [
        (3, None, "ranked below the options shown"),
        (5, None, "ranked below the options shown"),
        (1, 12, "ranked below the options shown (score 0.354 < 0.363 of option c)"),
        (5, 51, "ranked below the options shown (score 0.267 < 0.363 of option c)"),
        (3, 31, "ranked below the options shown (score 0.245 < 0.363 of option c)"),
    ]


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
    return ranking.Scored(candidate, score, 1.0, 1.0, score, OfferCounts(), 10.0)


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
    assert (value > learning.PRIOR_ACCEPTANCE + 1e-9) - (value < learning.PRIOR_ACCEPTANCE - 1e-9) == direction


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
