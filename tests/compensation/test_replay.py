"""The simulation's fast replay (compensation/replay.py) gives exactly the options the full path gives.

The full path is ``engine.replay``: every policy matched, every offer priced and scored by
``ranking.score_all``, the options made by ``ranking.select``, as ``compute_options`` makes them with
exploration off and no budgets (tests/compensation/test_simulations.py holds ``engine.replay`` to
``compute_options``). The fast one prices only what can be shown; a property over random policy sets,
kinds, perks, escalations, conditions, remedies, lead placement, counters and limits holds them together.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from compensation import engine
from compensation.learning import LearningStats, OfferCounts, PositionCounts
from compensation.replay import replay_incident, replay_plan
from policies.index import CompiledPerk
from tests.compensation.test_engine import make_customer, make_incident, make_index, make_offer, make_policy
from tests.compensation.test_learning import KIND_OFFERS

D = Decimal
KINDS = {  # test_learning's kinds, some with a cost of their own (worth up to 2), and the valueless two
    **KIND_OFFERS,
    "personalized_perk": {"value": None},
    "escalation": {"value": None, "cost": D("25.00")},
}
INTERESTS = ["sports", "cooking", "movies", "music"]
PERKS = (
    CompiledPerk(id=1, slug="p1", name="Sports pass", tags=frozenset({"sports"}), cost=D("12.00")),
    CompiledPerk(id=2, slug="p2", name="Cook book", tags=frozenset({"cooking", "books"}), cost=D("20.00")),
    CompiledPerk(id=3, slug="p3", name="Movie night", tags=frozenset({"movies", "music", "sports"}), cost=D("9.00")),
)

policy_strategy = st.tuples(
    st.lists(st.tuples(st.sampled_from(sorted(KINDS)), st.integers(1, 60)), min_size=0, max_size=4),  # offers
    st.integers(0, 100),  # priority
    st.sampled_from([None, 2, 4]),  # lowest severity
    st.sampled_from([(), (1,), (2,), (1, 2)]),  # categories
    st.integers(0, 14).map(lambda n: n == 0),  # lead, now and then: a category with one takes the full path
    st.sampled_from([None, "gift", "refund"]),  # remedy
    st.sampled_from(["0", "0.25"]),  # generosity per severity
)


@given(
    policies=st.lists(policy_strategy, min_size=1, max_size=12),
    counts=st.lists(st.tuples(*[st.integers(0, 60)] * 4), min_size=40, max_size=40),
    positions=st.tuples(st.integers(0, 100), st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)),
    severity=st.integers(1, 5),
    category=st.sampled_from([1, 2]),
    interests=st.sets(st.sampled_from(INTERESTS), max_size=3),
    tier=st.sampled_from(["standard", "gold"]),
    order_value=st.integers(0, 300),
    limit=st.integers(1, 3),
    correction=st.booleans(),
)
@settings(max_examples=400, deadline=None)
def test_the_fast_replay_gives_the_full_paths_options(
    policies: list[Any],
    counts: list[tuple[int, int, int, int]],
    positions: tuple[int, int, int, int],
    severity: int,
    category: int,
    interests: set[str],
    tier: str,
    order_value: int,
    limit: int,
    correction: bool,
) -> None:
    offer_id = 0
    built = []
    for n, (offers, priority, severity_min, categories, lead, remedy, per_severity) in enumerate(policies):
        compiled = []
        for order, (kind, value) in enumerate(offers or [("fixed_credit", 10)]):
            offer_id += 1
            fields = {"value": D(value), **KINDS[kind]}
            compiled.append(make_offer(kind, id=offer_id, order=order, **fields))
        remedies = (make_offer(remedy, id=1000 + n, value=D("5") if remedy == "gift" else D("50")),) if remedy else ()
        built.append(
            make_policy(
                *compiled,
                id=n + 1,
                priority=priority,
                severity_min=severity_min,
                category_ids=categories,
                lead=lead,
                remedies=remedies,
                generosity_per_severity=D(per_severity),
            )
        )
    index = make_index(*built, perks=PERKS)
    outcomes, a, b, c = positions
    stats = LearningStats(
        offers={
            n + 1: OfferCounts(sa, sb, sc, min(chosen, sa + sb + sc)) for n, (sa, sb, sc, chosen) in enumerate(counts)
        },
        positions=PositionCounts(max(outcomes, a + b + c), a, b, c),
    )
    customer = make_customer(interests=interests, tier=tier)
    incident = make_incident(category_id=category, severity=severity, order_value=D(order_value))

    full = engine.replay(index=index, customer=customer, incident=incident, stats=stats, correction=correction)
    full_options = engine.ranking.select(
        engine.ranking.score_all(
            engine.match(index=index, customer=customer, incident=incident, spending=engine.NO_SPENDING).candidates,
            stats=stats,
            allowance=engine.ranking.cost_allowance(customer=customer, incident=incident),
            mode=engine.learning.LearningMode(exploration=False, correction=correction),
            shares=stats.positions.shares,
        ),
        limit=limit,
    )
    plan = replay_plan(index, category, stats, correction=correction)
    unmatched = set(index.policies)
    fast = replay_incident(
        plan, customer, incident, limit=limit, unmatched=unmatched, watched=index.policies_for(category)
    )

    def shown(items: list[Any]) -> list[Any]:
        return [(s.candidate.offer.id, s.candidate.estimated_cost, s.score, s.breakdown, s.leads) for s in items]

    assert shown(fast.options) == shown(full_options)
    assert [c.offer.id for c in fast.remedies] == [c.offer.id for c in full.remedies]
    assert unmatched == set(index.policies) - {p.id for p in full.matched}


def test_an_offer_worth_twice_its_cost_is_not_pruned_by_a_cheaper_bound() -> None:
    """A gift of 60.00 costing 6.00 (worth 2) at priority 20 beats a 10.00 credit at priority 50 (limit 1).

    Allowance 24 (severity 3): the credit scores 1/3 x 1.25 x (10/24)^0.25 = 0.3347; the gift
    1/3 x 0.8 x (6/24)^0.25 x 2 = 0.3771. Had the replay bounded the gift's value by 1, its cap (0.2667)
    would sit below the credit's score and it would never be priced.
    """
    index = make_index(
        make_policy(make_offer("fixed_credit", id=1, value=D("10.00")), id=1, priority=50),
        make_policy(make_offer("gift", id=2, value=D("60.00"), cost=D("6.00")), id=2, priority=20),
    )
    customer, incident = make_customer(), make_incident(severity=3)
    fast = replay_incident(replay_plan(index, 1, LearningStats(), correction=True), customer, incident, limit=1)
    assert [s.candidate.offer.id for s in fast.options] == [2]
    assert fast.options[0].breakdown == {"propensity": 0.3333, "priority_weight": 0.8, "value": 1.414}
