"""Ranking: score = propensity × priority_weight × value, each factor explainable.

- ``propensity``: expected acceptance of this offer for this incident category,
  learned from recorded outcomes and smoothed toward a prior, so a new offer
  competes fairly with proven ones: a Beta posterior (compensation/learning.py),
  corrected for the positions the offer was shown at (``RANKING_POSITION_CORRECTION``);
  under ``RANKING_EXPLORATION=thompson`` the factor is a draw from it, seeded by
  the offer set's id, otherwise its mean. Both off is v1's
  ``(chosen + k·p0) / (offered + k)``.
- ``priority_weight``: the policy's priority (0–100) as a weight from 0.5 to 2.0.
- ``value``: what the option is worth to this customer against what it costs.
  Every incident warrants a cost allowance that grows with severity, repeats,
  tier and lifetime value ("short-term pain for long-term gain"); options near
  the allowance score best, far cheaper ones a little lower, dearer ones fall
  off. Perks matched to the customer's interests and options worth more to
  the customer than they cost us score higher.

The top three become a, b, c, distinct in kind where possible; ties break by
policy priority, then policy id, then the offer's order. A policy placed
``lead`` that applies puts its best candidate first, whatever it scores: it was
written for this case.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from compensation import learning
from compensation.engine_types import Candidate, CustomerFacts, IncidentFacts
from compensation.learning import LearningMode, LearningStats, OfferCounts, Posterior
from policies.choices import OfferKind
from policies.money import money

BASE_ALLOWANCE_PER_SEVERITY = 8.0  # currency units a severity-1 incident warrants
TIER_FACTOR = {"standard": 1.0, "silver": 1.1, "gold": 1.25, "platinum": 1.5}
PERK_MATCH_BONUS = 0.3  # per shared interest
PERK_PERCEIVED_WORTH = 1.5  # a perk chosen for the customer is worth more to them than it costs us


@dataclass(slots=True)
class Scored:
    """A candidate with its factors; ``breakdown`` is filled in for the options shown."""

    candidate: Candidate
    propensity: float  # the factor used: the posterior mean, or a draw from the posterior under thompson
    priority_weight: float
    value: float
    score: float
    counts: OfferCounts
    allowance: float
    posterior: Posterior | None = None  # computed for the options shown (their reasons read it)
    breakdown: dict[str, float] | None = None
    leads: bool = False  # placed first because its policy's placement is lead

    @property
    def sort_key(self) -> tuple:
        c = self.candidate
        return (-self.score, -c.policy.priority, c.policy.id, c.offer.order, c.offer.id)


def cost_allowance(*, customer: CustomerFacts, incident: IncidentFacts) -> float:
    """How much this incident, for this customer, warrants spending."""
    base = BASE_ALLOWANCE_PER_SEVERITY * incident.severity
    repeats = 1.0 + 0.5 * max(0, incident.same_category_repeat_count - 1) + 0.2 * max(0, incident.repeat_count - 1)
    lifetime = 1.0 + min(float(customer.lifetime_value), 20000.0) / 5000.0
    return base * repeats * lifetime * TIER_FACTOR.get(customer.tier, 1.0)


def propensity(offered: int, chosen: int) -> float:
    """v1's smoothed acceptance ``(chosen + k·p0) / (offered + k)``: the posterior mean with both learning
    settings off."""
    return learning.mean(OfferCounts(offered, 0, 0, chosen), NO_SHARES, correction=False)


NO_COUNTS = OfferCounts()
NO_SHARES = (0.0, 0.0, 0.0)


def priority_weight(priority: int) -> float:
    return 0.5 + 1.5 * priority / 100


def value_factor(candidate: Candidate, allowance: float) -> float:
    cost = float(candidate.estimated_cost)
    if candidate.kind == OfferKind.ESCALATION:
        # A senior person's call is worth most when the incident is severe and cannot be fixed.
        fit = 1.0
        worth = 1.0
    else:
        ratio = max(cost, 1.0) / allowance
        fit = ratio**0.25 if ratio <= 1 else ratio**-0.75
        amount = float(candidate.amount)
        if candidate.perk is not None:
            worth = PERK_PERCEIVED_WORTH
        else:
            worth = min(2.0, max(0.5, amount / cost)) if cost > 0 and amount > 0 else 1.0
    personal = 1.0 + PERK_MATCH_BONUS * len(candidate.perk_overlap)
    return fit * worth * personal


def shown_round(value: float) -> float:
    """A figure as options show it: four significant digits."""
    return float(f"{value:.4g}")


def score_all(
    candidates: Sequence[Candidate],
    *,
    stats: LearningStats,
    allowance: float,
    mode: LearningMode,
    shares: tuple[float, float, float],
) -> list[Scored]:
    """Every candidate's factors and their product, with the posterior mean as the propensity; cheap, since
    every candidate is scored. Under thompson the propensity is left at 0 for :func:`explore` to draw."""
    offers, mean, correction, drawing = stats.offers, learning.mean, mode.correction, mode.exploration
    out = []
    for candidate in candidates:
        counts = offers.get(candidate.offer.id, NO_COUNTS)
        p = 0.0 if drawing else mean(counts, shares, correction=correction)  # (explore draws it)
        w = priority_weight(candidate.policy.priority)
        v = value_factor(candidate, allowance)
        out.append(Scored(candidate, p, w, v, p * w * v, counts, allowance))
    return out


def explore(
    scored: Sequence[Scored],
    *,
    seed: int,
    shares: tuple[float, float, float],
    correction: bool,
    limit: int = 3,
    everyone: bool = False,
) -> list[Scored]:
    """Thompson sampling: each candidate's propensity becomes a draw from its posterior, seeded by the set
    (``learning.draw(seed, template id, ...)``), and its score follows. Returns the candidates drawn.

    A draw is below 1, so a candidate scores below ``priority_weight × value`` (its cap) whatever it
    draws. Candidates are drawn in order of their caps, highest first; one is left undrawn (and out of
    the list returned) when it cannot be an option whatever it draws: with ``limit`` kinds or more among
    the candidates, another of its kind has drawn a higher score than its cap, or ``limit`` other kinds
    have. The options ``select`` makes of the list returned are then exactly those it would make had every
    candidate drawn, for fewer draws. ``everyone``: draw them all (to explain every candidate, or when a
    policy placed ``lead`` picks among its own by score).
    """
    draw, shape = learning.draw, learning.shape
    capped = sorted(((item.priority_weight * item.value, item) for item in scored), key=_first, reverse=True)
    pruning = not everyone and len({item.candidate.kind for item in scored}) >= limit
    best: dict[str, float] = {}  # kind -> the highest score drawn
    drawn = []
    threshold = -1.0  # the limit-th highest of the kinds' best scores: a kind below it is out
    for cap, item in capped:
        kind = item.candidate.kind
        if pruning:
            own = best.get(kind, -1.0)
            if own > cap:
                continue  # another of its kind beats it whatever it draws
            if threshold > cap and (own < threshold or kth_other(best, kind, limit) > cap):
                continue  # limit other kinds beat it whatever it draws
        alpha, beta = shape(item.counts, shares, correction=correction)
        item.propensity = p = draw(seed, item.candidate.offer.id, alpha, beta)
        item.score = score = p * cap
        drawn.append(item)
        if score > best.get(kind, -1.0):
            best[kind] = score
            # The limit-th best moves only when a kind's best passes it (or the limit-th kind arrives).
            if len(best) >= limit and score > threshold:
                threshold = sorted(best.values(), reverse=True)[limit - 1]
    return drawn


def _first(pair: tuple[float, Scored]) -> float:
    return pair[0]


def kth_other(best: dict[str, float], kind: str, k: int) -> float:
    """The ``k``-th highest best score among kinds other than ``kind`` (-1 without that many)."""
    others = sorted((score for other, score in best.items() if other != kind), reverse=True)
    return others[k - 1] if len(others) >= k else -1.0


def _shown_factors(item: Scored) -> dict[str, float]:
    return {
        "propensity": shown_round(item.propensity),
        "priority_weight": shown_round(item.priority_weight),
        "value": shown_round(item.value),
    }


def _product(factors: dict[str, float]) -> float:
    return float(f"{math.prod(factors.values()):.6g}")


def _finalize(item: Scored) -> Scored:
    """Round the factors as they are shown; the score is exactly their product."""
    item.breakdown = _shown_factors(item)
    item.score = _product(item.breakdown)
    return item


def _by_kind(ordered: Sequence[Scored], *, limit: int, taken_kinds: frozenset[str] = frozenset()) -> list[Scored]:
    """The best ``limit`` of ``ordered`` (in score order), as many distinct kinds as there are.

    Kinds in ``taken_kinds`` (the lead option's) come after every other kind.
    """
    best_per_kind: dict[str, Scored] = {}
    for item in ordered:
        if item.candidate.kind not in taken_kinds:
            best_per_kind.setdefault(item.candidate.kind, item)
    chosen = list(best_per_kind.values())[:limit]
    if len(chosen) < limit:
        taken = {id(item) for item in chosen}
        chosen.extend([item for item in ordered if id(item) not in taken][: limit - len(chosen)])
    return chosen


def select(scored: Sequence[Scored], *, limit: int = 3) -> list[Scored]:
    """The best ``limit`` candidates, as many distinct kinds as there are, in score order.

    With at least ``limit`` kinds the options have ``limit`` kinds; with fewer,
    every kind appears and the rest are the best remaining candidates.

    A policy placed ``lead`` that has candidates puts its best one first (of
    several, the policy with the higher priority, then the lower id); the rest
    follow by score and kind as above, kinds other than the lead's first.
    """
    ordered = sorted(scored, key=lambda s: s.sort_key)
    leads = [s for s in ordered if s.candidate.policy.lead]
    lead = min(leads, key=lambda s: (_lead_key(s), s.sort_key)) if leads else None
    if lead is None or limit < 1:
        chosen = _by_kind(ordered, limit=limit)
        # Rounding may tie or swap near-equal scores: order again on the shown figures.
        return sorted((_finalize(item) for item in chosen), key=lambda s: s.sort_key)
    lead.leads = True
    rest = _by_kind(
        [s for s in ordered if s is not lead], limit=limit - 1, taken_kinds=frozenset({lead.candidate.kind})
    )
    return [_finalize(lead), *sorted((_finalize(item) for item in rest), key=lambda s: s.sort_key)]


def _lead_key(item: Scored) -> tuple[int, int]:
    return (-item.candidate.policy.priority, item.candidate.policy.id)


def shown_score(item: Scored) -> float:
    """The score as it would be shown (the product of the rounded factors), for comparing with the options'."""
    return _product(_shown_factors(item))


def why_not_shown(item: Scored, chosen: Sequence[Scored]) -> str:
    """Why a candidate that passed every rule is not one of the options, in words."""
    labels = "abc"
    same_kind = next((i for i, s in enumerate(chosen) if s.candidate.kind == item.candidate.kind), None)
    if same_kind is not None:
        other = chosen[same_kind]
        if other.leads:
            return f"same kind as option {labels[same_kind]}, which leads: its policy was written for this case"
        return f"same kind as option {labels[same_kind]}, which scored higher"
    if not chosen:
        return "ranked below the options shown"
    last_position = len(chosen) - 1
    last = chosen[last_position]
    mine, theirs = f"{shown_score(item):.3g}", f"{last.score:.3g}"
    if mine == theirs:
        return (
            f"ranked below the options shown (score {mine}, equal to option {labels[last_position]}'s, "
            "which comes first on the tie: higher policy priority, or the older policy or offer)"
        )
    return f"ranked below the options shown (score {mine} < {theirs} of option {labels[last_position]})"


_ORDINAL = ["first", "second", "third"]


def reasons(
    item: Scored,
    *,
    position: int,
    chosen: Sequence[Scored],
    customer: CustomerFacts,
    incident: IncidentFacts,
    mode: LearningMode = learning.V1,
) -> list[str]:
    """Plain words for why the option is there and why it ranks where it does."""
    c = item.candidate
    policy = c.policy
    out = [f"policy {policy.name!r} applies"]
    if incident.same_category_repeat_count >= 2:
        out.append(f"same mistake {_times(incident.same_category_repeat_count)} in {incident.window_days} days")
    elif incident.repeat_count >= 2:
        out.append(f"problem number {incident.repeat_count} for this customer in {incident.window_days} days")
    if customer.tier in {"gold", "platinum"}:
        out.append(f"{customer.tier} tier")
    if customer.lifetime_value >= Decimal("1000"):
        out.append(f"lifetime value {money(customer.lifetime_value)}")
    if c.multiplier > 1:
        out.append(f"policy scales generosity ×{_plain_float(float(c.multiplier))} for this case")
    if c.perk is not None:
        out.append(f"matches the customer's interest in {', '.join(c.perk_overlap)}")
    if c.kind == OfferKind.ESCALATION:
        out.append("a senior person takes it on personally")
    out.append(learned_words(item, mode))
    cost = float(c.estimated_cost)
    if c.kind != OfferKind.ESCALATION:
        if cost > item.allowance:
            out.append(f"costs more than this incident usually warrants ({item.allowance:.2f})")
        elif cost >= 0.5 * item.allowance:
            out.append("generous for this incident while within what it warrants")
    if item.leads:
        out.append(
            f"leads: policy {policy.name!r} was written for this case, so its best option comes first "
            f"(score {item.score:.3g})"
        )
    elif position == 0:
        out.append(f"ranked first: highest score ({item.score:.3g}), priority {policy.priority}")
    elif chosen[position - 1].leads:
        out.append(f"ranked {_ORDINAL[position]}: highest score ({item.score:.3g}) after the leading option")
    else:
        above = chosen[position - 1]
        factor = _weakest_factor(item, above)
        out.append(f"ranked {_ORDINAL[position]}: {factor}")
    return out


def learned_words(item: Scored, mode: LearningMode) -> str:
    """What the outcomes so far say about the option, in words; "still exploring" while its interval is wide."""
    counts, post = item.counts, item.posterior
    if not counts.shown:
        words = "no outcomes yet, so it starts from the average acceptance"
    elif mode.correction:
        words = _against_expected(counts, post.expected)
    else:
        words = f"chosen {counts.chosen} of {counts.shown} times it was offered for this category"
    if mode.exploration and learning.still_exploring(post.alpha, post.beta):
        return f"new option: still exploring; {words}"
    return f"new option: {words}" if not counts.shown else words


def _against_expected(counts: OfferCounts, expected: float) -> str:
    """Chosen against expected in words: "chosen 12 times where about 7 choices were expected at its positions"."""
    if expected < 0.05:  # shown only where nobody has chosen yet
        times = "once" if counts.shown == 1 else f"{counts.shown} times"
        if not counts.chosen:
            return f"shown {times}, at positions where no customer has chosen yet"
        return f"chosen {_times(counts.chosen, once=True)} where almost no choices were expected at its positions"
    about = _about(expected)
    were = "choice was" if about == "1" else "choices were"
    if not counts.chosen:
        return f"not chosen yet where about {about} {were} expected at its positions"
    return f"chosen {_times(counts.chosen, once=True)} where about {about} {were} expected at its positions"


def _about(expected: float) -> str:
    """7 for 7.04, 0.8 for 0.83: whole numbers from 10 up, one decimal below."""
    return f"{expected:.0f}" if expected >= 9.5 else _plain_float(round(expected, 1))


def _weakest_factor(item: Scored, above: Scored) -> str:
    names = {"propensity": "expected acceptance", "priority_weight": "policy priority", "value": "value for its cost"}
    mine, theirs = item.breakdown or {}, above.breakdown or {}
    ratios = {k: mine[k] / theirs[k] for k in mine if theirs.get(k)}
    if not ratios:
        return "lower score"
    weakest = min(ratios, key=ratios.get)
    if ratios[weakest] >= 1:
        return "equal score, ordered by policy priority"
    return f"lower {names[weakest]} than the option above"


def _times(n: int, *, once: bool = False) -> str:
    if once and n == 1:
        return "once"
    return {2: "twice", 3: "three times"}.get(n, f"{n} times")


def _plain_float(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
