"""A replay of one category's incidents, fast: the request path's ranking, pricing only what can be shown.

A simulation replays hundreds of thousands of stored incidents with the learning counters read once, so an
offer's propensity (its posterior mean) and its policy's priority weight are fixed for the whole replay.
An option's score is ``propensity × priority_weight × value`` and its value factor never passes a bound its
kind and cost set (``ranking.value_factor``: fit ≤ 1; worth 1 where the cost is the amount, else ≤ 2; a perk's
1.5 times its interest bonus; an escalation's 1), so each offer has a cap it cannot score above, known
before the incident is read.

:func:`replay_incident` walks the category's offers from the highest cap down, checks a policy's
conditions when it first reaches one of its offers, prices and scores the offer, and stops as
``ranking.explore`` does: once ``limit`` kinds have scored, an offer whose cap is below the
``limit``-th kind's best cannot be shown, nor one whose cap is below its own kind's best. The options are
then exactly those ``engine.replay`` (every candidate priced, ``ranking.select``) gives; a property test
holds the two together. A category with a policy placed ``lead`` takes the full path: its lead picks
among its own by score, whatever the others score.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from compensation import engine, learning, ranking
from compensation.engine_types import Candidate, CustomerFacts, IncidentFacts
from compensation.learning import LearningStats, OfferCounts
from policies.choices import PERCENT_KINDS, OfferKind
from policies.index import CompiledOffer, CompiledPerk, CompiledPolicy, PolicyIndex

WORTH_MAX = 2.0  # ranking.value_factor's worth: at most 2 for money, PERK_PERCEIVED_WORTH for a perk


@dataclass(frozen=True, slots=True)
class Entry:
    cap: float  # the most the offer can score
    weighted: float  # propensity × priority_weight, as score_all multiplies them
    propensity: float
    weight: float
    counts: OfferCounts
    policy: CompiledPolicy
    offer: CompiledOffer


@dataclass(frozen=True)
class ReplayPlan:
    """One category of one index, with the counters of the replay: its offers by cap, highest first."""

    index: PolicyIndex
    category_id: int
    stats: LearningStats
    correction: bool
    entries: tuple[Entry, ...]
    remedial: tuple[CompiledPolicy, ...]  # the category's policies with a remedy, by priority
    leads: bool  # a policy placed lead applies to the category: the full path


def _value_bound(offer: CompiledOffer, perks: Collection[CompiledPerk]) -> float:
    """The most ``ranking.value_factor`` can give this offer: its fit is at most 1, its interest bonus 1 but for
    perks, and its worth (amount over cost) 1 wherever the cost is the amount: percent kinds always, amount
    kinds without a cost of their own."""
    if offer.kind == OfferKind.ESCALATION:
        return 1.0
    if offer.kind == OfferKind.PERSONALIZED_PERK:
        most_tags = max((len(perk.tags) for perk in perks), default=0)
        return ranking.PERK_PERCEIVED_WORTH * (1.0 + ranking.PERK_MATCH_BONUS * most_tags)
    if offer.kind in PERCENT_KINDS or offer.cost is None:
        return 1.0
    return WORTH_MAX


def replay_plan(index: PolicyIndex, category_id: int, stats: LearningStats, *, correction: bool) -> ReplayPlan:
    policies = index.policies_for(category_id)
    shares = stats.positions.shares
    entries = []
    for policy in policies:
        weight = ranking.priority_weight(policy.priority)
        for offer in policy.offers:
            counts = stats.offers.get(offer.id, ranking.NO_COUNTS)
            propensity = learning.mean(counts, shares, correction=correction)
            weighted = propensity * weight
            cap = weighted * _value_bound(offer, index.perks)
            entries.append(Entry(cap, weighted, propensity, weight, counts, policy, offer))
    entries.sort(key=lambda entry: -entry.cap)  # stable: ties keep the policies' order
    return ReplayPlan(
        index=index,
        category_id=category_id,
        stats=stats,
        correction=correction,
        entries=tuple(entries),
        remedial=tuple(p for p in policies if p.remedies),
        leads=any(p.lead for p in policies),
    )


def replay_incident(
    plan: ReplayPlan,
    customer: CustomerFacts,
    incident: IncidentFacts,
    *,
    limit: int = 3,
    unmatched: set[int] | None = None,
    watched: Collection[CompiledPolicy] = (),
) -> engine.Replayed:
    """The options and remedy ``engine.replay`` gives this incident (``Replayed.matched`` is left empty).

    ``unmatched``: ids of policies not yet seen to match any incident; those of ``watched`` whose conditions
    hold for this one are removed from it (the simulation's "matches no incident" warning).
    """
    if unmatched:
        for policy in watched:
            if policy.id in unmatched and engine.first_failed_condition(policy, customer, incident) is None:
                unmatched.discard(policy.id)
    if plan.leads:
        replayed = engine.replay(
            index=plan.index,
            customer=customer,
            incident=incident,
            stats=plan.stats,
            correction=plan.correction,
            limit=limit,
        )
        if unmatched:
            unmatched.difference_update(policy.id for policy in replayed.matched)
        return replayed

    holds: dict[int, object] = {}  # policy id -> its generosity multiplier, or False where it fails
    remedies: dict[str, Candidate] = {}
    for policy in plan.remedial:  # every policy that applies gives its remedy: check them all
        multiplier = holds[policy.id] = (
            engine.generosity_multiplier(policy, customer, incident)
            if engine.first_failed_condition(policy, customer, incident) is None
            else False
        )
        if multiplier is not False:
            for remedy in policy.remedies:
                if remedy.kind not in remedies:
                    item = engine.candidate_for(policy, remedy, customer, incident, engine.ONE, None)
                    if item is not None and not (item.kind == OfferKind.REFUND and not item.amount):
                        remedies[remedy.kind] = item

    allowance = ranking.cost_allowance(customer=customer, incident=incident)
    perk: tuple[CompiledPerk, tuple[str, ...]] | bool | None = False  # False: not looked up yet
    best: dict[str, float] = {}
    threshold = -1.0
    scored: list[ranking.Scored] = []
    for entry in plan.entries:
        cap, kind = entry.cap, entry.offer.kind
        if len(best) >= limit:
            if cap < threshold:
                break  # it, and every offer after it, is below the limit-th kind's best
            own = best.get(kind, -1.0)
            if own > cap or (threshold > cap and (own < threshold or ranking.kth_other(best, kind, limit) > cap)):
                continue
        policy = entry.policy
        multiplier = holds.get(policy.id)
        if multiplier is None:
            failed = engine.first_failed_condition(policy, customer, incident)
            multiplier = holds[policy.id] = (
                False if failed is not None else engine.generosity_multiplier(policy, customer, incident)
            )
        if multiplier is False:
            continue
        if unmatched:
            unmatched.discard(policy.id)
        if kind == OfferKind.PERSONALIZED_PERK and perk is False:
            perk = engine.best_perk(plan.index.perks, customer.interests, frozenset())
        candidate = engine.candidate_for(
            policy, entry.offer, customer, incident, multiplier, perk if perk is not False else None
        )
        if candidate is None:
            continue
        value = ranking.value_factor(candidate, allowance)
        score = entry.weighted * value
        scored.append(ranking.Scored(candidate, entry.propensity, entry.weight, value, score, entry.counts, allowance))
        if score > best.get(kind, -1.0):
            best[kind] = score
            if len(best) >= limit and score > threshold:
                threshold = sorted(best.values(), reverse=True)[limit - 1]
    return engine.Replayed(ranking.select(scored, limit=limit), list(remedies.values()), [])
