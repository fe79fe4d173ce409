"""The engine: which options a customer can be offered for an incident, and what each costs.

Plain Python over the compiled policy index and a few facts read per request;
no database access and no HTTP, so it is tested (and benchmarked) directly.
Ranking (``compensation.ranking``) orders the candidates; texts are rendered
only for the options that are shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from compensation import learning, ranking
from compensation.engine_types import (
    Candidate,
    CustomerFacts,
    EngineResult,
    IncidentFacts,
    NotOffered,
    Option,
    RemedyItem,
    Spending,
)
from policies.choices import AMOUNT_KINDS, PERCENT_KINDS, OfferKind
from policies.index import CompiledOffer, CompiledPerk, CompiledPolicy, PolicyIndex
from policies.money import cents, money, money_display

HUNDRED = Decimal("100")
ZERO = Decimal("0")
ONE = Decimal("1")
THOUSAND = Decimal("1000")


def _plain(value: Decimal | None) -> str:
    """``30`` for 30.00, ``12.5`` for 12.50: a value without trailing zeros."""
    if value is None:
        return ""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- Conditions ------------------------------------------------------------------------


def first_failed_condition(policy: CompiledPolicy, customer: CustomerFacts, incident: IncidentFacts) -> str | None:
    """The first condition of the policy this incident fails, in words; None when all hold."""
    day = incident.occurred_on
    if policy.valid_from is not None and day < policy.valid_from:
        return f"not valid until {policy.valid_from.isoformat()}"
    if policy.valid_until is not None and day >= policy.valid_until:
        return f"expired on {policy.valid_until.isoformat()}"
    if policy.category_ids and incident.category_id not in policy.category_ids:
        return f"category {incident.category_name!r} is not covered"
    for condition, value in policy.conditions:  # only those the policy sets (policies/conditions.py)
        fact = getattr(customer if condition.on_customer else incident, condition.attribute)
        if not condition.holds(value, fact):
            return condition.failure(value, fact)
    return None


# --- Amounts ---------------------------------------------------------------------------


def generosity_multiplier(policy: CompiledPolicy, customer: CustomerFacts, incident: IncidentFacts) -> Decimal:
    """1 plus what the policy adds per severity step, per repeat and per 1,000 of lifetime value, capped."""
    if not (
        policy.generosity_per_severity or policy.generosity_per_repeat or policy.generosity_per_1000_lifetime_value
    ):
        return ONE
    multiplier = (
        ONE
        + policy.generosity_per_severity * (incident.severity - 1)
        + policy.generosity_per_repeat * (incident.same_category_repeat_count - 1)
        + policy.generosity_per_1000_lifetime_value
        * (customer.lifetime_value / THOUSAND).to_integral_value("ROUND_FLOOR")
    )
    return max(ONE, min(multiplier, policy.generosity_max_multiplier))


def best_perk(
    perks: Iterable[CompiledPerk], interests: frozenset[str], recent: frozenset[int]
) -> tuple[CompiledPerk, tuple[str, ...]] | None:
    """The perk sharing most interests with the customer, not given recently; ties: cheaper, then older."""
    if not interests:
        return None
    best: tuple[int, Decimal, int, CompiledPerk] | None = None
    for perk in perks:
        if perk.id in recent:
            continue
        overlap = len(perk.tags & interests)
        if overlap and (best is None or (-overlap, perk.cost, perk.id) < (-best[0], best[1], best[2])):
            best = (overlap, perk.cost, perk.id, perk)
    if best is None:
        return None
    perk = best[3]
    return perk, tuple(sorted(perk.tags & interests))


def candidate_for(
    policy: CompiledPolicy,
    offer: CompiledOffer,
    customer: CustomerFacts,
    incident: IncidentFacts,
    multiplier: Decimal,
    perk_choice: tuple[CompiledPerk, tuple[str, ...]] | None,
) -> Candidate | None:
    """Value, money amount and estimated cost of one offer (the README's "Offer kinds")."""
    kind = offer.kind
    order_value = incident.order_value
    scaled = multiplier is not ONE  # generosity_multiplier returns ONE itself when nothing scales
    if kind in PERCENT_KINDS:
        percent = min(HUNDRED, offer.value * multiplier) if scaled else offer.value
        amount = order_value * percent / HUNDRED
        if kind == OfferKind.PERCENT_DISCOUNT:
            cap = offer.max_amount if offer.max_amount is not None else ZERO
            amount = cap if order_value == 0 else min(amount, cap)
        elif offer.max_amount is not None:
            amount = min(amount, offer.max_amount)
        amount = cents(amount)
        return Candidate(policy, offer, kind, cents(percent), "percent", amount, amount, None, (), multiplier)
    if kind in AMOUNT_KINDS:
        if not scaled:  # stored with two decimals already
            cost = offer.value if offer.cost is None else offer.cost
            return Candidate(policy, offer, kind, offer.value, "amount", offer.value, cost, None, (), multiplier)
        amount = cents(offer.value * multiplier)
        cost = amount if offer.cost is None else cents(offer.cost * multiplier)
        return Candidate(policy, offer, kind, amount, "amount", amount, cost, None, (), multiplier)
    if kind == OfferKind.PERSONALIZED_PERK:
        if perk_choice is None:
            return None
        perk, overlap = perk_choice
        return Candidate(policy, offer, kind, perk.cost, "amount", perk.cost, perk.cost, perk, overlap, ONE)
    if kind == OfferKind.ESCALATION:
        cost = offer.cost if offer.cost is not None else ZERO
        return Candidate(policy, offer, kind, None, None, ZERO, cost, None, (), ONE)
    return None


# --- Texts -------------------------------------------------------------------------------


class _Values(dict):
    """The placeholders' values; ``{money}`` is formatted (with Babel) only when a template uses it."""

    def __init__(self, money_of: tuple[Candidate, str, str], **values: str) -> None:
        super().__init__(**values)
        self.money_of = money_of  # (candidate, currency, locale)

    def __missing__(self, key: str) -> str:
        if key == "money":
            candidate, currency, locale = self.money_of
            self[key] = money_display(candidate.amount, currency, locale)
            return self[key]
        return "{" + key + "}"  # validation forbids unknown placeholders; never crash anyway


DEFAULT_MESSAGE = "{customer_name}, I'm sorry about the {incident}: {title}"


def first_name(name: str) -> str:
    """The first word of the posted name, without the comma of "Lopez, Maria"; "there" without one
    ("there, ..." as v1's {customer_name})."""
    words = name.split()
    first = words[0].rstrip(",;:") if words else ""
    return first or "there"


def render(
    template: str,
    candidate: Candidate,
    customer: CustomerFacts,
    incident: IncidentFacts,
    currency: str,
    title: str = "",
    locale: str = "en_US",
) -> str:
    """Fill in the placeholders once; values (names, titles) are inserted as they are, never re-read."""
    values = _Values(
        (candidate, currency, locale),
        customer_name=customer.name or "there",
        first_name=first_name(customer.name),
        incident=incident.category_name,
        value=_plain(candidate.value),
        amount=money(candidate.amount),
        currency=currency,
        perk_name=candidate.perk.name if candidate.perk else "",
        ticket=incident.ticket,
        repeat_count=str(incident.repeat_count),
        same_category_repeat_count=str(incident.same_category_repeat_count),
        title=title,
    )
    try:
        return template.format_map(values)
    except (ValueError, IndexError, KeyError, AttributeError):
        return template


def render_texts(
    candidate: Candidate, customer: CustomerFacts, incident: IncidentFacts, currency: str, locale: str = "en_US"
) -> tuple[str, str]:
    title = render(candidate.offer.title, candidate, customer, incident, currency, locale=locale)
    message = render(
        candidate.offer.message or DEFAULT_MESSAGE, candidate, customer, incident, currency, title, locale=locale
    )
    return title, message


def _perk_missing(index: PolicyIndex, customer: CustomerFacts, spending: Spending) -> str:
    """Why a personalized-perk offer has no perk to give this customer, in words."""
    if not customer.interests:
        return "the customer has no interests to match a perk"
    matching = best_perk(index.perks, customer.interests, frozenset())
    if matching is None:
        return "no active perk matches the customer's interests"
    perk = matching[0]
    given_on = spending.recent_perk_dates.get(perk.id)
    when = f"on {given_on.isoformat()}" if given_on is not None else "recently"
    return f"the matching perk {perk.name!r} was given to this customer {when}"


def remedy_needs_approval(items: Iterable[tuple[Decimal, bool]], approval_limit: Decimal | None) -> bool:
    """Whether a remedy waits for a manager: its items' summed cost passes the limit, or an item asks for
    approval (``items``: each item's cost and ``requires_approval``). ``approval_limit`` None: never (managers)."""
    if approval_limit is None:
        return False
    costs_and_asks = list(items)
    return any(asks for _, asks in costs_and_asks) or sum((c for c, _ in costs_and_asks), ZERO) > approval_limit


def approval_reason(candidate: Candidate, approval_limit: Decimal | None) -> str | None:
    """Why this option needs a manager's approval, in words (its ``requires_approval``); None when it does not.

    ``approval_limit`` is the requester's limit per option (compensation/authority.py), None for a
    manager. An offer whose policy asks for approval says so in every set; a manager's own choice of
    it is never held (compensation/services/outcomes.py).
    """
    why = []
    if approval_limit is not None and candidate.estimated_cost > approval_limit:
        why.append(f"costs {money(candidate.estimated_cost)}, above your limit of {money(approval_limit)} per option")
    if candidate.offer.requires_approval:
        why.append("its policy asks for a manager's approval of this offer")
    return "needs a manager's approval: " + "; ".join(why) if why else None


@dataclass(slots=True)
class Matched:
    """What the policies that apply give, before ranking: the offers budgets can cover, the remedy items
    (one per kind) and the policies that escalate; with ``explain``, why the rest give nothing."""

    candidates: list[Candidate]
    remedies: dict[str, Candidate]
    escalating: list[CompiledPolicy]
    not_offered: list[NotOffered]


def match(
    *,
    index: PolicyIndex,
    customer: CustomerFacts,
    incident: IncidentFacts,
    spending: Spending,
    explain: bool = False,
    currency: str = "",
    money_locale: str = "en_US",
    matched: list[CompiledPolicy] | None = None,
) -> Matched:
    """Match the category's policies, price their offers and drop what budgets cannot cover.

    ``matched``, when given, collects the policies whose conditions hold (a replay counts them).
    ``currency`` and ``money_locale`` render the titles of offers left out, with ``explain``.
    """
    candidates: list[Candidate] = []
    not_offered: list[NotOffered] = []
    escalating: list[CompiledPolicy] = []
    remedies: dict[str, Candidate] = {}
    perk_choice: tuple[CompiledPerk, tuple[str, ...]] | bool | None = False  # False: not looked up yet

    for policy in index.policies_for(incident.category_id):
        failed = first_failed_condition(policy, customer, incident)
        if failed is not None:
            if explain:
                not_offered.append(NotOffered(policy, failed))
            continue
        if matched is not None:
            matched.append(policy)
        if policy.escalate:
            escalating.append(policy)
        for remedy in policy.remedies:  # policies come by priority, then id: the first of a kind stands
            if remedy.kind not in remedies:
                item = candidate_for(policy, remedy, customer, incident, ONE, None)
                if item is not None and not (item.kind == OfferKind.REFUND and not item.amount):
                    remedies[remedy.kind] = item  # (a refund of nothing, on an order of 0, is left out)
        multiplier = generosity_multiplier(policy, customer, incident)
        month_left = (
            None if policy.monthly_cap is None else policy.monthly_cap - spending.month_spent.get(policy.id, ZERO)
        )
        customer_left = (
            None
            if policy.per_customer_cap_30d is None
            else policy.per_customer_cap_30d - spending.customer_spent_30d.get(policy.id, ZERO)
        )
        produced = 0
        excluded: str | None = None
        for offer in policy.offers:
            if offer.kind == OfferKind.PERSONALIZED_PERK and perk_choice is False:
                perk_choice = best_perk(index.perks, customer.interests, spending.recent_perk_ids)
            candidate = candidate_for(
                policy, offer, customer, incident, multiplier, perk_choice if perk_choice is not False else None
            )
            if candidate is None:
                cap_words, left = "", ZERO
            elif month_left is not None and candidate.estimated_cost > month_left:
                cap_words, left = "monthly budget has {} left", month_left
            elif customer_left is not None and candidate.estimated_cost > customer_left:
                cap_words, left = "per-customer cap has {} left for this customer", customer_left
            else:
                candidates.append(candidate)
                produced += 1
                continue
            if explain:  # the words only when someone reads them
                if candidate is None:
                    why, title = _perk_missing(index, customer, spending), ""
                else:
                    why = (
                        f"{cap_words.format(money(max(left, ZERO)))}, "
                        f"{candidate.kind} costs {money(candidate.estimated_cost)}"
                    )
                    title = render(offer.title, candidate, customer, incident, currency, locale=money_locale)
                excluded = excluded or why
                not_offered.append(NotOffered(policy, why, offer, title))
        if not produced and explain:
            not_offered.append(NotOffered(policy, excluded or "the policy has no offers"))

    return Matched(candidates, remedies, escalating, not_offered)


# --- The whole computation ---------------------------------------------------------------


def compute_options(
    *,
    index: PolicyIndex,
    customer: CustomerFacts,
    incident: IncidentFacts,
    spending: Spending,
    stats: learning.LearningStats,
    currency: str,
    approval_limit: Decimal | None,
    explain: bool = False,
    limit: int = 3,
    money_locale: str = "en_US",
    mode: learning.LearningMode = learning.V1,
    seed: int = 0,
) -> EngineResult:
    """Match policies, price their offers, drop what budgets cannot cover, rank, and render the top three.

    Every policy that applies also gives its remedy (one item per kind: the
    policy with the higher priority, then the lower id, keeps its own), priced
    and rendered but never ranked nor limited by budgets. ``stats`` are the
    learning counters of this incident's category, ``mode`` how the ranking
    uses them and ``seed`` (the offer set's, ``learning.seed_of``) what its
    draws are seeded with; ``approval_limit`` is None when the requester
    never needs approval (managers).
    """
    found = match(
        index=index,
        customer=customer,
        incident=incident,
        spending=spending,
        explain=explain,
        currency=currency,
        money_locale=money_locale,
    )
    candidates, not_offered = found.candidates, found.not_offered
    allowance = ranking.cost_allowance(customer=customer, incident=incident)
    shares = stats.positions.shares
    scored = ranking.score_all(candidates, stats=stats, allowance=allowance, mode=mode, shares=shares)
    drawn = scored
    if mode.exploration:
        drawn = ranking.explore(
            scored,
            seed=seed,
            shares=shares,
            correction=mode.correction,
            limit=limit,
            everyone=explain or any(c.policy.lead for c in candidates),
        )
    chosen = ranking.select(drawn, limit=limit)
    options = []
    for position, item in enumerate(chosen):
        item.posterior = learning.posterior(item.counts, shares, correction=mode.correction)
        title, message = render_texts(item.candidate, customer, incident, currency, money_locale)
        why_approval = approval_reason(item.candidate, approval_limit)
        options.append(
            Option(
                label="abc"[position],
                candidate=item.candidate,
                title=title,
                message=message,
                requires_approval=why_approval is not None,
                score=item.score,
                score_breakdown=item.breakdown,
                propensity_mean=ranking.shown_round(item.posterior.mean),
                reasons=ranking.reasons(
                    item, position=position, chosen=chosen, customer=customer, incident=incident, mode=mode
                )
                + ([why_approval] if why_approval is not None else []),
            )
        )
    remedy = [
        RemedyItem(candidate, *render_texts(candidate, customer, incident, currency, money_locale))
        for candidate in found.remedies.values()
    ]
    if explain:
        considered = {p.id for p in index.policies_for(incident.category_id)}
        not_offered.extend(
            NotOffered(policy, f"category {incident.category_name!r} is not covered")
            for policy in sorted(index.policies.values(), key=lambda p: (-p.priority, p.id))
            if policy.id not in considered
        )
        shown = {o.candidate.policy.id for o in options}
        dropped = [
            NotOffered(c.policy, "ranked below the options shown")
            for c in {c.policy.id: c for c in candidates if c.policy.id not in shown}.values()
        ]
        not_offered.extend(dropped)
        shown_offers = {id(item.candidate) for item in chosen}
        not_offered.extend(
            NotOffered(
                item.candidate.policy,
                ranking.why_not_shown(item, chosen),
                item.candidate.offer,
                render(item.candidate.offer.title, item.candidate, customer, incident, currency, locale=money_locale),
            )
            for item in sorted(scored, key=lambda s: s.sort_key)
            if id(item.candidate) not in shown_offers
        )
    return EngineResult(options=options, escalating_policies=found.escalating, not_offered=not_offered, remedy=remedy)


# --- A replay: the ranking without texts -------------------------------------------------

NO_SPENDING = Spending()


@dataclass(slots=True)
class Replayed:
    """What a stored incident would get now: the options' scored candidates (a, b, c), the remedy items,
    and the policies that matched it."""

    options: list[ranking.Scored]
    remedies: list[Candidate]
    matched: list[CompiledPolicy]


def replay(
    *,
    index: PolicyIndex,
    customer: CustomerFacts,
    incident: IncidentFacts,
    stats: learning.LearningStats,
    correction: bool,
    limit: int = 3,
) -> Replayed:
    """The options and remedy :func:`compute_options` gives, as a simulation replays them: posterior means
    (no exploration), budgets and caps excluding nothing, no texts rendered (``render_texts`` renders an
    option's when it is read)."""
    matched: list[CompiledPolicy] = []
    found = match(index=index, customer=customer, incident=incident, spending=NO_SPENDING, matched=matched)
    mode = learning.LearningMode(exploration=False, correction=correction)
    shares = stats.positions.shares
    allowance = ranking.cost_allowance(customer=customer, incident=incident)
    scored = ranking.score_all(found.candidates, stats=stats, allowance=allowance, mode=mode, shares=shares)
    return Replayed(ranking.select(scored, limit=limit), list(found.remedies.values()), matched)
