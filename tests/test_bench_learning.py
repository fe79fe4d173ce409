"""``python -m bench learning``'s simulation (bench/learning_bench.py): its counters, its customers' choices,
its oracle's candidates and its figures, on small worlds and hand-computed tables. No timing."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from bench import learning_bench as lb
from compensation import learning, ranking
from compensation.engine import compute_options
from compensation.learning import LearningMode, LearningStats, OfferCounts, PositionCounts, StatisticsDelta
from compensation.selectors import request_facts
from compensation.services.learning import learning_counters_add
from policies.index import policy_index_build
from policies.models import Category, OfferTemplate

NOW = datetime(2025, 3, 3, 12, tzinfo=UTC)


def two_sets(category: int, t1: int, t2: int, t3: int, t4: int) -> list[StatisticsDelta]:
    """Set 1 shows t1, t2, t3 at a, b, c and the customer chooses c; set 2 shows t2, t1, t4 and is declined."""
    first, second = StatisticsDelta(), StatisticsDelta()
    first.add(category_id=category, shown=[(t1, 0), (t2, 1), (t3, 2)], chosen_rank=2)
    second.add(category_id=category, shown=[(t2, 0), (t1, 1), (t4, 2)], chosen_rank=None)
    return [first, second]


def test_counters_add_two_recorded_sets_as_a_hand_computed_table() -> None:
    counters = lb.Counters()
    for delta in two_sets(7, 11, 12, 13, 14):
        counters.add(delta)
    #                  offered, shown_a, shown_b, shown_c, chosen
    assert counters.offers == {7: {11: [2, 1, 1, 0, 0], 12: [2, 1, 1, 0, 0], 13: [1, 0, 0, 1, 1], 14: [1, 0, 0, 1, 0]}}
    assert counters.positions == {7: [2, 0, 0, 1]}  # two outcomes, one chose c
    assert counters.stats(7) == LearningStats(
        offers={
            11: OfferCounts(1, 1, 0, 0),
            12: OfferCounts(1, 1, 0, 0),
            13: OfferCounts(0, 0, 1, 1),
            14: OfferCounts(0, 0, 1, 0),
        },
        positions=PositionCounts(2, 0, 0, 1),
    )
    assert counters.stats(8) == LearningStats()  # nothing recorded in that category


@pytest.mark.django_db
def test_counters_read_back_as_the_tables_do(demo_pack: None) -> None:
    """The same two sets through the worker's upsert (in two shards) and ``request_facts``, beside memory."""
    category = Category.objects.get(slug="late_delivery").id
    t1, t2, t3, t4 = OfferTemplate.objects.order_by("id").values_list("id", flat=True)[:4]
    counters = lb.Counters()
    for shard, delta in enumerate(two_sets(category, t1, t2, t3, t4)):
        learning_counters_add(delta=delta, shard=shard)
        counters.add(delta)
    facts = request_facts(
        customer_id=0,
        customer_is_new=True,
        count_repeats=False,
        category_id=category,
        occurred_at=NOW,
        window_days=90,
        monthly_capped=(),
        customer_capped=(),
        wants_perks=False,
        now=NOW,
    )
    assert facts.stats == counters.stats(category)
    assert facts.stats.offers[t1] == OfferCounts(1, 1, 0, 0)


def test_choose_takes_each_positions_slice_in_turn() -> None:
    chances = [0.3, 0.2, 0.1]  # a takes [0, 0.3), b [0.3, 0.5), c [0.5, 0.6), declined from 0.6
    assert [lb.choose(u, chances) for u in (0.0, 0.29, 0.3, 0.49, 0.55, 0.61, 0.99)] == [0, 0, 1, 1, 2, None, None]
    assert lb.choose(0.2, []) is None


def test_choices_follow_the_examination_model() -> None:
    """q = 0.4, 0.3, 0.2 at a, b, c: chosen 0.4, 0.21 and 0.1 of the time, declined 0.29 (seeded draws)."""
    q = [0.4, 0.3, 0.2]
    chances = [e * p for e, p in zip(lb.POSITION_EFFECT, q, strict=True)]
    rng = random.Random(5)
    draws = 40_000
    counts = {0: 0, 1: 0, 2: 0, None: 0}
    for _ in range(draws):
        counts[lb.choose(rng.random(), chances)] += 1
    for key, expected in ((0, 0.40), (1, 0.21), (2, 0.10), (None, 0.29)):
        assert abs(counts[key] / draws - expected) < 0.01  # about four standard errors


def test_the_world_keeps_choices_below_one() -> None:
    assert lb.ACCEPTANCE_RANGE[1] * sum(lb.POSITION_EFFECT) < 1


def test_rank_correlation_and_crossing_by_hand() -> None:
    assert lb.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert lb.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 − 6 × 2 / (4 × 15)
    assert lb.spearman([1, 1, 1], [1, 2, 3]) is None
    # cumulative 1, 2, 2, 2 against 0, 0, 2, 4: below only after the fourth set
    assert lb.stays_below([1, 1, 0, 0], [0, 0, 2, 2]) == 4
    assert lb.stays_below([0, 0, 1], [1, 1, 0]) == 1
    assert lb.stays_below([1, 1], [1, 1]) is None


def test_estimate_error_normalises_per_category() -> None:
    """Without correction: (2 + 2) / (4 + 6) = 0.4 and (0 + 2) / (4 + 6) = 0.2 against truths 0.3 and 0.1:
    divided by their means (0.3 and 0.2): 4/3 and 2/3 against 1.5 and 0.5, each off by 1/6."""
    outcome = lb.Outcome("v1", learning.V1)
    outcome.counters.offers = {1: {10: [4, 4, 0, 0, 2], 20: [4, 0, 4, 0, 0]}}
    outcome.counters.positions = {1: [8, 2, 0, 0]}
    estimates = lb.estimate_error(outcome, {(10, 1): 0.3, (20, 1): 0.1})
    assert estimates.error == pytest.approx(1 / 6)
    assert estimates.pairs == 2
    assert estimates.correlation is None  # fewer than three pairs


@pytest.fixture
def index(demo_pack: None):
    return policy_index_build(revision=-1)


@pytest.mark.django_db
def test_the_oracle_sees_the_candidates_the_engine_ranks(index) -> None:
    """Ranking ``candidates()`` as the engine does gives exactly the engine's options, whatever was learned."""
    _, prepared = lb.world(index, incidents=150, seed=3)
    learned = lb.simulate(index, prepared, name="both on", mode=LearningMode()).counters
    for mode in (learning.V1, LearningMode(exploration=True, correction=False), LearningMode()):
        for item in prepared:
            case = item.case
            stats = learned.stats(case.incident.category_id)
            result = compute_options(
                index=index,
                customer=case.customer,
                incident=case.incident,
                spending=lb.NO_SPENDING,
                stats=stats,
                currency="USD",
                approval_limit=None,
                mode=mode,
                seed=case.seed,
            )
            allowance = ranking.cost_allowance(customer=case.customer, incident=case.incident)
            shares = stats.positions.shares
            scored = ranking.score_all(
                lb.candidates(index, case.customer, case.incident),
                stats=stats,
                allowance=allowance,
                mode=mode,
                shares=shares,
            )
            if mode.exploration:
                scored = ranking.explore(
                    scored, seed=case.seed, shares=shares, correction=mode.correction, everyone=True
                )
            mine = [(s.candidate.offer.id, s.score) for s in ranking.select(scored)]
            assert mine == [(o.candidate.offer.id, o.score) for o in result.options]
            assert set(item.acceptance) == {c.offer.id for c in lb.candidates(index, case.customer, case.incident)}


@pytest.mark.django_db
def test_a_small_world_repeats_and_its_counters_add_up(index) -> None:
    truth, prepared = lb.world(index, incidents=300, seed=13)
    assert all(lb.ACCEPTANCE_RANGE[0] <= q <= lb.ACCEPTANCE_RANGE[1] for q in truth.values())
    assert sum(p.leads for p in prepared) > 0  # the demo pack's repeat-mistake leads where it applies
    for name, mode in lb.SETTINGS:
        outcome = lb.simulate(index, prepared, name=name, mode=mode)
        again = lb.simulate(index, lb.world(index, incidents=300, seed=13)[1], name=name, mode=mode)
        assert again.regrets == outcome.regrets
        assert again.counters == outcome.counters
        assert sum(outcome.regrets) == pytest.approx(outcome.oracle_reward - outcome.reward)
        positions = [sum(row[i] for row in outcome.counters.positions.values()) for i in range(4)]
        assert positions[0] == 300  # every demo set has options, and each has an outcome
        assert sum(positions[1:]) == outcome.choices
        offers = [row for by_template in outcome.counters.offers.values() for row in by_template.values()]
        assert sum(row[1] for row in offers) == 300  # one offer at a per set
        assert sum(row[4] for row in offers) == outcome.choices
        assert all(row[0] == row[1] + row[2] + row[3] for row in offers)
