"""``python -m bench learning``: does the ranking learn the truth? A simulated world that knows it (issue 13).

The engine and ranking run in-process (``compensation.engine.compute_options``
over the compiled demo pack, fixtures/demo_pack.yaml) for a stream of random
incidents, under three settings: both off (v1), Thompson sampling without
position correction, and both on. The simulated customers choose by a world
whose truth the learner never sees, and every choice is recorded through the
worker's own statistics code (``learning.StatisticsDelta``), added to
in-memory counters exactly as ``services.learning.learning_counters_add`` adds
them to the tables (:class:`Counters`), and read back as
``selectors.request_facts`` reads them.

The world:

- **Acceptance.** Per offer template and category, a true acceptance ``q``,
  drawn once, uniform in 0.05–0.45, in a fixed order (category slug, policy
  slug, offer order), so it does not depend on database ids.
- **Position.** Agents read a, b, c in that order; the customer examines
  position p with probability ``e_p`` = 1.0 / 0.7 / 0.5 and chooses the
  option there with probability ``q × e_p`` (the examination model): at most
  one choice per set (``Σ e_p × q ≤ 2.2 × 0.45 < 1``), otherwise a decline.
  Declines are recorded too, as the worker records them.
- **Incidents.** Customers (tier, lifetime value, interests) and incidents
  (category, severity, fault, correctable, order value, repeats) drawn with
  demo-like frequencies; each set's seed is ``learning.seed_of`` of a UUID
  drawn from the same generator. All three settings see the same incidents,
  seeds and customers' random numbers (common random numbers), so their
  differences are the learners' own. Budgets are left out (an empty
  ``Spending``): they would make what is on offer drift with the spend.

The oracle knows ``q``: a candidate's true score is the ranking's score with
``q`` in place of the learned propensity (same priority weight and value
factor), and its options are ``ranking.select`` over candidates scored that
way, so the rules of selection (distinct kinds, a ``lead`` policy's best offer
first) are the same for both. A set's reward is its expected score-weighted
choices, ``Σ_p e_p × q × priority_weight × value`` over the options shown;
regret is the oracle's reward minus the learner's (expected, not sampled, so
no choice noise), summed over the run.

"Truly best" is the candidate with the highest true score among those the
ranking may put first: every candidate, or, when a ``lead`` policy applies,
that policy's candidates (its best comes first whatever the others score,
for learner and oracle alike); that is the oracle's ``a``.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from compensation import learning, ranking
from compensation.engine import (
    best_perk,
    candidate_for,
    compute_options,
    first_failed_condition,
    generosity_multiplier,
)
from compensation.engine_types import Candidate, CustomerFacts, IncidentFacts, Spending
from compensation.learning import LearningMode, LearningStats, OfferCounts, PositionCounts, StatisticsDelta
from policies.choices import OfferKind
from policies.index import CompiledPerk, PolicyIndex

T = TypeVar("T")

DEMO_PACK = Path(__file__).resolve().parent.parent / "fixtures" / "demo_pack.yaml"
POSITION_EFFECT = (1.0, 0.7, 0.5)  # e_p: how often a customer reads position a, b, c
ACCEPTANCE_RANGE = (0.05, 0.45)  # the spread of true acceptances
LAST = 1000  # the sets the "first" shares are taken over
CLEAR_GAP = 1.10  # "best beats the runner-up by 10% or more"
CLEAR_TARGET = 0.90
OCCURRED_ON = date(2025, 3, 3)  # fixed: no figure depends on today
SETTINGS: tuple[tuple[str, LearningMode], ...] = (
    ("v1 (both off)", learning.V1),
    ("thompson, no correction", LearningMode(exploration=True, correction=False)),
    ("both on", LearningMode(exploration=True, correction=True)),
)
NO_SPENDING = Spending()
NOTHING_LEARNED = LearningStats()

TIERS = (("standard", 55), ("silver", 25), ("gold", 14), ("platinum", 6))
TIER_LIFETIME = {"standard": 600.0, "silver": 1500.0, "gold": 4000.0, "platinum": 9000.0}  # mean lifetime value
INTERESTS = (
    "sports",
    "cooking",
    "food",
    "movies",
    "music",
    "books",
    "gaming",
    "travel",
    "fitness",
    "kids",
    "gardening",
    "coffee",
    "pets",
    "photography",
    "art",
    "cars",
)
CATEGORY_WEIGHTS = {  # demo-like: late deliveries are the most common incident, wrong shipping the rarest
    "late_delivery": 22,
    "missed_delivery": 8,
    "wrong_item": 10,
    "damaged_item": 12,
    "wrong_shipping_method": 4,
    "double_charge": 5,
    "billing_error": 8,
    "service_outage": 10,
    "missed_appointment": 6,
    "out_of_stock": 8,
    "customer_error": 7,
}
SEVERITIES = ((1, 25), (2, 30), (3, 25), (4, 13), (5, 7))
FAULTS = (("company", 75), ("customer", 12), ("third_party", 10), ("unknown", 3))


# --- Counters in memory ----------------------------------------------------------------


@dataclass
class Counters:
    """The learning counters of every category in memory: what the tables hold, summed over shards.

    ``add`` is ``services.learning.learning_counters_add`` without a database: per (category, template)
    ``offered += shown_a + shown_b + shown_c``, each ``shown_p`` and ``chosen`` added; per category
    ``outcomes`` and ``chosen_a/b/c`` added. ``stats`` is what ``selectors.request_facts`` reads back for
    a category (no position row yet: all zero).
    """

    offers: dict[int, dict[int, list[int]]] = field(default_factory=dict)  # category -> template -> [offered,
    # shown_a, shown_b, shown_c, chosen]
    positions: dict[int, list[int]] = field(default_factory=dict)  # category -> [outcomes, chosen_a, _b, _c]

    def add(self, delta: StatisticsDelta) -> None:
        for (category_id, template_id), (shown_a, shown_b, shown_c, chosen) in delta.offers.items():
            row = self.offers.setdefault(category_id, {}).setdefault(template_id, [0, 0, 0, 0, 0])
            row[0] += shown_a + shown_b + shown_c
            row[1] += shown_a
            row[2] += shown_b
            row[3] += shown_c
            row[4] += chosen
        for category_id, (outcomes, chosen_a, chosen_b, chosen_c) in delta.positions.items():
            row = self.positions.setdefault(category_id, [0, 0, 0, 0])
            row[0] += outcomes
            row[1] += chosen_a
            row[2] += chosen_b
            row[3] += chosen_c

    def stats(self, category_id: int) -> LearningStats:
        offers = self.offers.get(category_id, {})
        return LearningStats(
            offers={template_id: OfferCounts(*row[1:]) for template_id, row in offers.items()},
            positions=PositionCounts(*self.positions.get(category_id, (0, 0, 0, 0))),
        )


# --- The world -----------------------------------------------------------------------------


def choose(uniform: float, chances: Sequence[float]) -> int | None:
    """The position the customer chooses, given ``uniform`` in [0, 1) and each position's ``e_p × q``;
    None: declined. Position p takes the slice of [0, 1) after the slices of the positions before it."""
    edge = 0.0
    for position, chance in enumerate(chances):
        edge += chance
        if uniform < edge:
            return position
    return None


def world_truth(index: PolicyIndex, *, seed: int) -> dict[tuple[int, int], float]:
    """The true acceptance ``q`` per (offer template id, category id), drawn in an order of names, not ids."""
    rng = random.Random(f"truth-{seed}")
    low, high = ACCEPTANCE_RANGE
    truth: dict[tuple[int, int], float] = {}
    for slug in sorted(index.categories):
        category = index.categories[slug]
        for policy in sorted(index.policies_for(category.id), key=lambda p: p.slug):
            for offer in sorted(policy.offers, key=lambda o: o.order):
                truth[(offer.id, category.id)] = rng.uniform(low, high)
    return truth


@dataclass(frozen=True, slots=True)
class Case:
    """One incident: its customer, its facts, its set's seed and the customer's random number."""

    customer: CustomerFacts
    incident: IncidentFacts
    seed: int
    uniform: float


def _weighted(rng: random.Random, pairs: Sequence[tuple[T, int]]) -> T:
    return rng.choices([value for value, _ in pairs], weights=[weight for _, weight in pairs])[0]


def world_cases(index: PolicyIndex, *, incidents: int, seed: int) -> list[Case]:
    """``incidents`` random incidents with demo-like frequencies, from one seeded generator."""
    rng = random.Random(f"incidents-{seed}")
    categories = [(index.categories[slug], weight) for slug, weight in CATEGORY_WEIGHTS.items()]
    cases = []
    for i in range(incidents):
        tier = _weighted(rng, TIERS)
        lifetime = min(20000, int(rng.expovariate(1 / TIER_LIFETIME[tier])))
        customer = CustomerFacts(
            external_id=f"C-{i}",
            name=f"Customer {i}",
            tier=tier,
            lifetime_value=Decimal(lifetime),
            interests=frozenset(rng.sample(INTERESTS, rng.choice((0, 1, 2, 2, 3)))),
        )
        category = _weighted(rng, categories)
        same = _weighted(rng, ((1, 80), (2, 15), (3, 5)))
        incident = IncidentFacts(
            category_id=category.id,
            category_name=category.name,
            severity=_weighted(rng, SEVERITIES),
            fault=_weighted(rng, FAULTS),
            correctable=rng.random() < 0.85,
            order_value=Decimal(0 if rng.random() < 0.05 else rng.randint(5, 400)),
            repeat_count=same + rng.randint(0, 2),
            same_category_repeat_count=same,
            occurred_on=OCCURRED_ON,
        )
        set_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        cases.append(Case(customer, incident, learning.seed_of(set_id), rng.random()))
    return cases


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the oracle knows about one case: each candidate's true acceptance and score, and its own reward."""

    case: Case
    acceptance: dict[int, float]  # template id -> q in this category
    weight: dict[int, float]  # template id -> priority_weight × value (the ranking's own factors)
    oracle_reward: float
    best: int | None  # the truly best template among those that may come first (the oracle's a)
    clear: bool  # best's true score is >= CLEAR_GAP × the runner-up's
    leads: bool  # a lead policy applies: only its candidates may come first


def candidates(index: PolicyIndex, customer: CustomerFacts, incident: IncidentFacts) -> list[Candidate]:
    """Every candidate the engine ranks for this incident with nothing spent yet (``compute_options``' own loop,
    with the engine's own functions: conditions, generosity, pricing, perks, and caps against ``NO_SPENDING``).

    The engine returns only the options it shows; the oracle needs them all. tests/test_bench_learning.py
    checks that ranking these gives exactly the engine's options.
    """
    found: list[Candidate] = []
    perk_choice: tuple[CompiledPerk, tuple[str, ...]] | bool | None = False
    for policy in index.policies_for(incident.category_id):
        if first_failed_condition(policy, customer, incident) is not None:
            continue
        multiplier = generosity_multiplier(policy, customer, incident)
        for offer in policy.offers:
            if offer.kind == OfferKind.PERSONALIZED_PERK and perk_choice is False:
                perk_choice = best_perk(index.perks, customer.interests, NO_SPENDING.recent_perk_ids)
            candidate = candidate_for(
                policy, offer, customer, incident, multiplier, perk_choice if perk_choice is not False else None
            )
            if candidate is None:
                continue
            if policy.monthly_cap is not None and candidate.estimated_cost > policy.monthly_cap:
                continue
            if policy.per_customer_cap_30d is not None and candidate.estimated_cost > policy.per_customer_cap_30d:
                continue
            found.append(candidate)
    return found


def prepare(index: PolicyIndex, case: Case, truth: dict[tuple[int, int], float]) -> Prepared:
    """Every candidate of the case scored with the truth, and the oracle's options."""
    customer, incident = case.customer, case.incident
    allowance = ranking.cost_allowance(customer=customer, incident=incident)
    scored = []
    acceptance: dict[int, float] = {}
    weight: dict[int, float] = {}
    everyone = ranking.score_all(
        candidates(index, customer, incident),
        stats=NOTHING_LEARNED,
        allowance=allowance,
        mode=learning.V1,
        shares=ranking.NO_SHARES,
    )
    for item in everyone:
        template_id = item.candidate.offer.id
        q = truth[(template_id, incident.category_id)]
        acceptance[template_id] = q
        weight[template_id] = item.priority_weight * item.value
        item.propensity = q
        item.score = q * item.priority_weight * item.value
        scored.append(item)
    true_score = {t: acceptance[t] * weight[t] for t in acceptance}
    oracle = ranking.select(scored)
    reward = sum(e * true_score[item.candidate.offer.id] for e, item in zip(POSITION_EFFECT, oracle, strict=False))
    if not oracle:
        return Prepared(case, acceptance, weight, 0.0, None, False, False)
    best = oracle[0].candidate.offer.id
    if oracle[0].leads:  # only the lead policy's own candidates may come first
        contenders = [s.candidate.offer.id for s in scored if s.candidate.policy.id == oracle[0].candidate.policy.id]
    else:
        contenders = list(true_score)
    others = [true_score[t] for t in contenders if t != best]
    clear = bool(others) and true_score[best] >= CLEAR_GAP * max(others)
    return Prepared(case, acceptance, weight, reward, best, clear, oracle[0].leads)


# --- A learner in the world --------------------------------------------------------------


@dataclass
class Outcome:
    """One setting's run."""

    name: str
    mode: LearningMode
    counters: Counters = field(default_factory=Counters)
    regret: float = 0.0
    reward: float = 0.0
    oracle_reward: float = 0.0
    choices: int = 0
    regrets: list[float] = field(default_factory=list)  # per set: the oracle's reward − the learner's
    first_best: list[bool] = field(default_factory=list)  # per set: its a is the truly best
    clear: list[bool] = field(default_factory=list)  # per set: the best beats the runner-up by CLEAR_GAP
    seconds: float = 0.0


def simulate(index: PolicyIndex, prepared: Sequence[Prepared], *, name: str, mode: LearningMode) -> Outcome:
    """Rank every case with what was learned so far, let the world choose, record the choice; sum the regret."""
    outcome = Outcome(name, mode)
    counters = outcome.counters
    started = time.perf_counter()
    for item in prepared:
        case = item.case
        category_id = case.incident.category_id
        result = compute_options(
            index=index,
            customer=case.customer,
            incident=case.incident,
            spending=NO_SPENDING,
            stats=counters.stats(category_id),
            currency="USD",
            approval_limit=None,
            mode=mode,
            seed=case.seed,
        )
        shown = [option.candidate.offer.id for option in result.options]
        chances = [e * item.acceptance[t] for e, t in zip(POSITION_EFFECT, shown, strict=False)]
        reward = sum(chance * item.weight[t] for chance, t in zip(chances, shown, strict=True))
        outcome.reward += reward
        outcome.oracle_reward += item.oracle_reward
        outcome.regret += item.oracle_reward - reward
        outcome.regrets.append(item.oracle_reward - reward)
        outcome.first_best.append(bool(shown) and shown[0] == item.best)
        outcome.clear.append(item.clear)
        if not shown:
            continue  # no options, no outcome to record
        chosen = choose(case.uniform, chances)
        outcome.choices += chosen is not None
        delta = StatisticsDelta()
        delta.add(category_id=category_id, shown=[(t, rank) for rank, t in enumerate(shown)], chosen_rank=chosen)
        counters.add(delta)
    outcome.seconds = time.perf_counter() - started
    return outcome


# --- Figures -----------------------------------------------------------------------------


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties take their mean rank); None when either side has no spread."""
    rx, ry = _ranks(xs), _ranks(ys)
    n = len(xs)
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if not sxx or not syy:
        return None
    return sxy / (sxx * syy) ** 0.5


@dataclass(frozen=True)
class Estimates:
    error: float  # mean |normalised propensity_mean − normalised q| over (offer, category) pairs shown
    pairs: int
    correlation: float | None  # Spearman's ρ per category, averaged over categories with >= 3 pairs


def estimate_error(outcome: Outcome, truth: dict[tuple[int, int], float]) -> Estimates:
    """How far the learned ``propensity_mean`` is from the truth, on a per-category relative scale.

    Under position correction ``propensity_mean`` is relative (p0 × chosen / expected), so per
    category both the estimates and the truths of the offers shown at least once are divided by
    their own mean over those offers before they are compared.
    """
    errors: list[float] = []
    correlations: list[float] = []
    for category_id, offers in outcome.counters.offers.items():
        shares = PositionCounts(*outcome.counters.positions.get(category_id, (0, 0, 0, 0))).shares
        pairs = [
            (
                learning.posterior(OfferCounts(*row[1:]), shares, correction=outcome.mode.correction).mean,
                truth[(template_id, category_id)],
            )
            for template_id, row in offers.items()
            if row[0]
        ]
        if not pairs:
            continue
        mean_estimate = sum(e for e, _ in pairs) / len(pairs)
        mean_truth = sum(q for _, q in pairs) / len(pairs)
        errors.extend(abs(e / mean_estimate - q / mean_truth) for e, q in pairs)
        if len(pairs) >= 3:
            rho = spearman([e for e, _ in pairs], [q for _, q in pairs])
            if rho is not None:
                correlations.append(rho)
    return Estimates(
        error=sum(errors) / len(errors) if errors else 0.0,
        pairs=len(errors),
        correlation=sum(correlations) / len(correlations) if correlations else None,
    )


def last_shares(outcome: Outcome, *, last: int = LAST) -> tuple[float, float, int]:
    """Of the last ``last`` sets: the share whose a is the truly best; among those whose best is clear
    (>= CLEAR_GAP × the runner-up), the share with it first, and how many those are."""
    first = outcome.first_best[-last:]
    clear = outcome.clear[-last:]
    clear_first = [f for f, c in zip(first, clear, strict=True) if c]
    return (
        sum(first) / len(first) if first else 0.0,
        sum(clear_first) / len(clear_first) if clear_first else 0.0,
        len(clear_first),
    )


# --- The benchmark -----------------------------------------------------------------------


def demo_index() -> PolicyIndex:
    """The demo pack imported into the benchmark's fresh database, compiled."""
    from policies.index import policy_index_build
    from policies.packs import pack_import, pack_load

    pack_import(document=pack_load(DEMO_PACK), source=str(DEMO_PACK))
    return policy_index_build(revision=-1)


def world(index: PolicyIndex, *, incidents: int, seed: int) -> tuple[dict[tuple[int, int], float], list[Prepared]]:
    """The truth and the incidents, each with what the oracle knows of it."""
    truth = world_truth(index, seed=seed)
    return truth, [prepare(index, case, truth) for case in world_cases(index, incidents=incidents, seed=seed)]


def run(*, incidents: int = 20_000, seed: int = 13, out=sys.stdout) -> list[Outcome]:
    started = time.perf_counter()
    index = demo_index()
    truth, prepared = world(index, incidents=incidents, seed=seed)
    print(
        f"world: the demo pack ({len(index.policies)} policies, {len(index.categories)} categories), "
        f"{len(truth)} (offer, category) acceptances drawn in {ACCEPTANCE_RANGE[0]}–{ACCEPTANCE_RANGE[1]}, "
        f"position effect a/b/c {' / '.join(map(str, POSITION_EFFECT))}, seed {seed}; {incidents:,} incidents "
        f"({sum(p.leads for p in prepared):,} where a lead policy applies)",
        file=out,
    )
    outcomes = [simulate(index, prepared, name=name, mode=mode) for name, mode in SETTINGS]
    report(outcomes, truth, out=out)
    print(
        f"elapsed: {time.perf_counter() - started:.1f} s (one process)",
        file=out,
    )
    return outcomes


def stays_below(mine: Sequence[float], theirs: Sequence[float]) -> int | None:
    """After how many sets the cumulative sum of ``mine`` is below that of ``theirs`` and stays so to the end;
    None when it is not below at the end."""
    gap = sum(mine) - sum(theirs)  # over all the sets
    if gap >= 0:
        return None
    n = len(mine)
    while n > 0:
        gap -= mine[n - 1] - theirs[n - 1]  # now over the first n - 1 sets
        if gap >= 0:
            break
        n -= 1
    return n  # over the first n - 1 sets not below (or no sets at all): below from the n-th on


def report(outcomes: Sequence[Outcome], truth: dict[tuple[int, int], float], *, out=sys.stdout) -> None:
    """One row per setting, what the columns mean, and the targets."""
    header = (
        f"{'setting':<25}{'cum. regret':>12}{'of oracle':>10}{'last 25%':>9}{'a best':>8}{'a best where clear':>20}"
        f"{'chosen':>8}{'est. error':>11}{'rank ρ':>7}{'s':>6}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for outcome in outcomes:
        first, clear_first, clear_n = last_shares(outcome)
        estimates = estimate_error(outcome, truth)
        rho = "-" if estimates.correlation is None else f"{estimates.correlation:.2f}"
        sets = len(outcome.regrets)
        print(
            f"{outcome.name:<25}{outcome.regret:>12.1f}{_percent(outcome.regret, outcome.oracle_reward):>10}"
            f"{late_regret(outcome):>9.1f}{_percent(first, 1):>8}"
            f"{_percent(clear_first, 1) + f' of {clear_n:,}':>20}{_percent(outcome.choices, sets):>8}"
            f"{estimates.error:>11.3f}{rho:>7}{outcome.seconds:>6.1f}",
            file=out,
        )
    print(
        "cum. regret: Σ over sets of the oracle's expected score-weighted choices minus the learner's "
        "(Σ_p e_p × q × priority_weight × value over the options shown), also as a share of the oracle's; "
        "last 25%: the regret of the last quarter of the sets alone. "
        f"a best: the share of the last {LAST:,} sets whose a "
        "is the truly best offer (where a lead policy applies, that policy's best); where clear: the same among "
        f"those of them whose best beats the runner-up by ≥ {CLEAR_GAP - 1:.0%}. chosen: sets with a choice. "
        "est. error: mean |propensity_mean / m_est − q / m_q| over the (offer, category) pairs shown at least "
        "once, m_est and m_q the means of those pairs' estimates and truths in their category; rank ρ: "
        "Spearman's between them per category (>= 3 pairs), averaged; s: seconds.",
        file=out,
    )
    v1, corrected = outcomes[0], outcomes[-1]
    lowest = all(corrected.regret < o.regret for o in outcomes[:-1])
    ends_lowest = all(late_regret(corrected) < late_regret(o) for o in outcomes[:-1])
    _, clear_first, _ = last_shares(corrected)
    _, v1_clear, _ = last_shares(v1)
    first_best, v1_first = last_shares(corrected)[0], last_shares(v1)[0]
    print(
        f"targets: {corrected.name} ends with the lowest regret (the last quarter's): "
        f"{'met' if ends_lowest else 'NOT met'}; its cumulative regret is the lowest: {'met' if lowest else 'NOT met'}"
        f"{_crossings(corrected, outcomes[:-1])}; ≥ {CLEAR_TARGET:.0%} first where the best beats the runner-up by "
        f"≥ {CLEAR_GAP - 1:.0%}: {_percent(clear_first, 1)}, {'met' if clear_first >= CLEAR_TARGET else 'NOT met'}; "
        f"{v1.name} {'fails' if v1_clear < CLEAR_TARGET else 'does not fail'} there ({_percent(v1_clear, 1)}; "
        f"a truly best {_percent(v1_first, 1)} against {_percent(first_best, 1)}, the last quarter's regret "
        f"{late_regret(v1):.1f} against {late_regret(corrected):.1f})",
        file=out,
    )


def late_regret(outcome: Outcome) -> float:
    """The regret of the last quarter of the sets: how the learner does once it has learned."""
    return sum(outcome.regrets[len(outcome.regrets) - len(outcome.regrets) // 4 :])


def _crossings(corrected: Outcome, others: Sequence[Outcome]) -> str:
    words = []
    for other in others:
        n = stays_below(corrected.regrets, other.regrets)
        if n is None:
            words.append(f"above {other.name}'s at the end")
        elif n > 1:
            words.append(f"below {other.name}'s from set {n:,} on")
        else:
            words.append(f"below {other.name}'s throughout")
    return f" (cumulative: {'; '.join(words)})" if words else ""


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"
