"""Property tests: whatever the incident, customer, policies and spending, the engine's output keeps its promises.

Built from compiled objects directly (no database) so a few hundred examples run in seconds;
``derandomize=True`` keeps CI stable.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compensation import ranking
from compensation.engine import candidate_for
from compensation.engine_types import CustomerFacts, IncidentFacts, Spending
from compensation.learning import OfferCounts
from policies.index import CompiledOffer, CompiledPerk, CompiledPolicy
from tests.compensation.test_engine import (
    CATEGORIES,
    CURRENCY,
    DAY,
    PLACEHOLDER_RE,
    make_customer,
    make_incident,
    make_offer,
    make_perk,
    make_policy,
    run,
)

D = Decimal
CENT = D("0.01")
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INTERESTS = ["sports", "cooking", "gaming", "travel", "music"]
TIERS = ["standard", "silver", "gold", "platinum"]
FAULTS = ["company", "customer", "third_party", "unknown"]
KINDS = [
    "percent_discount",
    "refund",
    "fixed_credit",
    "free_shipping",
    "expedited_replacement",
    "gift",
    "personalized_perk",
    "escalation",
]
TITLES = [
    "{value}% off your next order",
    "{amount} {currency} credit",
    "{perk_name} on us",
    "{customer_name}, for the {incident}",
    "A senior manager will call you today",
    "{value} / {amount} / {currency} / {perk_name} / {customer_name} / {incident}",
]
MESSAGES = [
    "",
    "",
    "{customer_name}, we are sorry about the {incident}.",
    "Here is {amount} {currency}, {customer_name}.",
    "{perk_name} for {customer_name}: {value}",
]
ODD_NAMES = ["Linda Park", "%s", "%(name)s", "", "Zoë 李", "😀", "O'Brien", "<b>x</b>", "\\n", " "]
BRACE_NAMES = ["{x}", "{0}", "a{b", "}", "{x.y}", "{{", "}{", "{}"]


def money(max_value: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=max_value, places=2, allow_nan=False, allow_infinity=False)


# Strategies are built once here: building them inside the composites costs more than drawing from them.
plain_names = st.one_of(st.sampled_from(ODD_NAMES), st.text(alphabet="ab %s.é李'\\0", max_size=12))
brace_names = st.one_of(st.sampled_from(BRACE_NAMES), st.text(alphabet="ab{}%s.0", max_size=12))
any_names = st.one_of(plain_names, brace_names)
category_ids = st.sampled_from(sorted(CATEGORIES))
severities = st.integers(1, 5)
day_offsets = st.integers(-30, 30)
optional_day_offset = st.none() | st.integers(-60, 30)
optional_length = st.none() | st.integers(1, 90)
repeats = st.integers(0, 5)
percents = st.decimals(min_value=0, max_value=100, places=2)
money_10000, money_1200, money_1000, money_100 = money(10_000), money(1_200), money(1_000), money(100)
money_500, money_400, money_300, money_200, money_60 = money(500), money(400), money(300), money(200), money(60)
optional_money_500 = st.none() | money_500
optional_caps = st.none() | money_1000, st.none() | money_300
# Personalized perks and expedited replacements twice as often as each other kind: they were the rarest options.
kinds = st.sampled_from([*KINDS, "personalized_perk", "expedited_replacement"])
tiers = st.sampled_from(TIERS)
money_50000 = money(50_000)
titles, messages = st.sampled_from(TITLES), st.sampled_from(MESSAGES)
offer_counts, policy_counts, remedy_counts = st.integers(1, 4), st.integers(1, 15), st.integers(0, 2)
perk_counts = st.integers(1, 5)
priorities = st.integers(0, 100)
faults = st.sampled_from(FAULTS)
fault_sets = st.frozensets(faults, max_size=3)
tier_sets = st.frozensets(st.sampled_from(TIERS), max_size=3)
category_sets = st.frozensets(category_ids, max_size=2)
interest_sets = st.frozensets(st.sampled_from(INTERESTS), min_size=1, max_size=3)
# sampled_from leans to its first choice, so the usual case comes first.
one_in_four = st.sampled_from([False, False, False, True])  # no interests, no perks, a perk given lately
two_in_three = st.sampled_from([True, True, False])  # a perk sure to share an interest with the customer
perk_tag_sets = st.frozensets(st.sampled_from(INTERESTS), min_size=1, max_size=3)
steps = st.integers(1, 3)
per_severity = st.sampled_from([D("0"), D("0.10"), D("0.25")])
per_repeat = st.sampled_from([D("0"), D("0.25"), D("0.50")])
per_1000 = st.sampled_from([D("0"), D("0.05")])
max_multipliers = st.sampled_from([D("1.00"), D("1.50"), D("2.00"), D("3.00")])
counts = st.integers(0, 200)
shares = st.floats(0, 1)
optional_approval_limit = st.none() | money_200
# Each condition a policy sets is drawn against the incident and customer: not set, met exactly at its edge,
# met with room to spare, or (for the one condition a failing policy fails on) missed just past its edge.
# So most policies apply but for their dates, and every condition is often decided at its edge.
CONDITION_KEYS = [
    "category_ids",
    "severity_min",
    "severity_max",
    "faults",
    "tiers",
    "correctable",
    "min_repeat_count",
    "min_same_category_repeat_count",
    "min_lifetime_value",
    "min_order_value",
]
holds = st.sampled_from(["unset", "edge", "room"])
fails_on = st.sampled_from([None] * 2 * len(CONDITION_KEYS) + CONDITION_KEYS)  # two in three policies fail none
# The incident's day: mostly on, or a day either side of, a date of a policy that otherwise applies.
day_modes = st.sampled_from(["edge", "edge", "edge", "any"])
edge_shifts = st.sampled_from([0, -1, 0, 1])
# Policies mostly start and end on a few days their world shares (as policies change on the first of a month),
# so an incident on one of those days is on the edge of several policies at once.
shared_days = st.lists(day_offsets, min_size=2, max_size=3, unique=True)
on_shared_days = st.sampled_from([True, True, False])
# An amount offer's cost: none (its face value), a share of its face value (usual: a gift costs less than it is
# worth), or anything; budgets are charged the cost.
cost_modes = st.sampled_from(["below", "none", "below", "any"])
cost_shares = st.sampled_from([D("0.5"), D("0"), D("0.25"), D("0.8"), D("0.99")])
# What a cap has left: as drawn at random (often no cap, sometimes overspent), or at the edge of one of the
# policy's offers: a cent short of its cost, its cost, a cent short of its amount, its amount, or between the two.
budget_modes = st.sampled_from(["edge", "random", "edge"])


@st.composite
def incident_facts(draw: st.DrawFn) -> dict:
    """The incident's facts but its day, which is drawn once the policies' dates are known."""
    same_category = 1 + draw(repeats)
    return {
        "category_id": draw(category_ids),
        "severity": draw(severities),
        "fault": draw(faults),
        "correctable": draw(st.booleans()),
        "order_value": draw(money_10000),
        "repeat_count": same_category + draw(repeats),
        "same_category_repeat_count": same_category,
    }


@st.composite
def customers(draw: st.DrawFn, names: st.SearchStrategy[str]) -> CustomerFacts:
    interests = frozenset() if draw(one_in_four) else draw(interest_sets)
    return make_customer(name=draw(names), tier=draw(tiers), lifetime_value=draw(money_50000), interests=interests)


def draw_perk(draw: st.DrawFn, perk_id: int, interests: frozenset[str]) -> CompiledPerk:
    """A perk, mostly sharing one of the customer's interests at least, so personalized perks find a match."""
    tags = draw(perk_tag_sets)
    if interests and draw(two_in_three):
        tags |= {draw(st.sampled_from(sorted(interests)))}
    return make_perk(perk_id, tags, str(draw(money_60)))


def draw_offer(draw: st.DrawFn, offer_id: int, order: int) -> CompiledOffer:
    kind = draw(kinds)
    value = max_amount = cost = None
    if kind in {"percent_discount", "refund"}:
        value = draw(percents)
        max_amount = draw(money_500) if kind == "percent_discount" else draw(optional_money_500)
    elif kind in {"fixed_credit", "free_shipping", "expedited_replacement", "gift"}:
        value = draw(money_300)
        how = draw(cost_modes)
        cost = None if how == "none" else to_cents(value * draw(cost_shares)) if how == "below" else draw(money_300)
    elif kind == "escalation":
        cost = draw(money_200)
    return make_offer(
        kind,
        id=offer_id,
        value=value,
        max_amount=max_amount,
        cost=cost,
        title=draw(titles),
        message=draw(messages),
        requires_approval=draw(st.booleans()),
        order=order,
    )


def draw_remedy(draw: st.DrawFn, remedy_id: int, order: int) -> CompiledOffer:
    """A remedy item: an offer of a kind that puts something right (README, "Remedy, lead placement and why not")."""
    kind = draw(st.sampled_from(["refund", "fixed_credit", "free_shipping", "expedited_replacement", "gift"]))
    value = draw(percents) if kind == "refund" else draw(money_300)
    max_amount = draw(optional_money_500) if kind == "refund" else None
    return make_offer(
        kind,
        id=remedy_id,
        value=value,
        max_amount=max_amount,
        cost=draw(st.none() | money_300) if kind != "refund" else None,
        title=draw(titles),
        message=draw(messages),
        order=order,
    )


def draw_choices(how: str, fact, every: list, drawn: frozenset) -> frozenset:
    """A set of choices that holds ``fact`` (just it at the edge), or fails it, or is empty (not set)."""
    if how == "unset":
        return frozenset()
    if how == "fail":
        return (drawn - {fact}) or frozenset({next(c for c in every if c != fact)})
    return frozenset({fact}) if how == "edge" else drawn | {fact}


def draw_minimum(draw: st.DrawFn, how: str, fact, room, step, floor):
    """A minimum ``fact`` meets exactly (edge) or with room to spare, misses by ``step``, or None (not set)."""
    if how == "unset":
        return None
    if how == "fail":
        return fact + step
    return fact if how == "edge" else max(floor, fact - draw(room))


def draw_terms(draw: st.DrawFn, customer: CustomerFacts, facts: dict) -> tuple[dict, bool]:
    """The policy's conditions on the incident and customer (its dates aside), and whether one of them fails."""
    failing = draw(fails_on)
    how = {key: "fail" if key == failing else draw(holds) for key in CONDITION_KEYS}
    severity = facts["severity"]
    # Severities run from 1 to 5: no minimum fails a 5, no maximum a 1; such a bound sits at its edge instead.
    if (failing, severity) in {("severity_min", 5), ("severity_max", 1)}:
        how[failing] = "edge"
    severity_min = draw_minimum(draw, how["severity_min"], severity, steps, 1, 1)
    # A maximum is a minimum of the negated severity.
    severity_max = (
        None if how["severity_max"] == "unset" else -draw_minimum(draw, how["severity_max"], -severity, steps, 1, -5)
    )
    # A policy's maximum is never below its minimum: when one of them fails, the other (still met) moves with it.
    if severity_min is not None and severity_max is not None and severity_min > severity_max:
        if how["severity_min"] == "fail":
            severity_max = severity_min
        else:
            severity_min = severity_max
    correctable = {"unset": None, "fail": not facts["correctable"]}.get(how["correctable"], facts["correctable"])
    terms = {
        "category_ids": draw_choices(
            how["category_ids"], facts["category_id"], sorted(CATEGORIES), draw(category_sets)
        ),
        "severity_min": severity_min,
        "severity_max": severity_max,
        "faults": draw_choices(how["faults"], facts["fault"], FAULTS, draw(fault_sets)),
        "tiers": draw_choices(how["tiers"], customer.tier, TIERS, draw(tier_sets)),
        "correctable": correctable,
        "min_repeat_count": draw_minimum(draw, how["min_repeat_count"], facts["repeat_count"], steps, 1, 1),
        "min_same_category_repeat_count": draw_minimum(
            draw, how["min_same_category_repeat_count"], facts["same_category_repeat_count"], steps, 1, 1
        ),
        "min_lifetime_value": draw_minimum(
            draw, how["min_lifetime_value"], customer.lifetime_value, money_1000, CENT, D("0")
        ),
        "min_order_value": draw_minimum(draw, how["min_order_value"], facts["order_value"], money_100, CENT, D("0")),
    }
    return terms, "fail" in how.values()


def draw_validity(draw: st.DrawFn, days: list) -> tuple:
    """(valid_from, valid_until), either open; mostly on the world's shared days, the end after the start."""
    if draw(on_shared_days):
        valid_from = draw(st.sampled_from([*days, None]))
        return valid_from, draw(st.sampled_from([*(d for d in days if valid_from is None or d > valid_from), None]))
    start = draw(optional_day_offset)
    valid_from = None if start is None else DAY + timedelta(days=start)
    length = draw(optional_length)
    return valid_from, None if length is None else (valid_from or DAY - timedelta(days=30)) + timedelta(days=length)


def draw_policy(
    draw: st.DrawFn, policy_id: int, customer: CustomerFacts, facts: dict, days: list
) -> tuple[CompiledPolicy, dict, bool]:
    """The policy, the conditions it was drawn with (its validity, categories and facts' bounds), and whether
    it applies but for its dates (drawn to fail none of its other conditions)."""
    conditions, fails = draw_terms(draw, customer, facts)
    valid_from, valid_until = draw_validity(draw, days)
    offers = [draw_offer(draw, policy_id * 10 + i, i) for i in range(draw(offer_counts))]
    remedies = [draw_remedy(draw, policy_id * 1000 + i, i) for i in range(draw(remedy_counts))]
    priority = draw(priorities)
    terms = {"valid_from": valid_from, "valid_until": valid_until, **conditions}
    policy = make_policy(
        *offers,
        id=policy_id,
        priority=priority,
        **terms,
        escalate=draw(st.booleans()),
        remedies=tuple(remedies),
        lead=draw(one_in_four),
        generosity_per_severity=draw(per_severity),
        generosity_per_repeat=draw(per_repeat),
        generosity_per_1000_lifetime_value=draw(per_1000),
        generosity_max_multiplier=draw(max_multipliers),
    )
    return policy, terms, not fails  # its caps are drawn once the incident, customer and perks are known


def draw_budget(
    draw: st.DrawFn, caps: st.SearchStrategy, spent: st.SearchStrategy, priced: list[tuple[Decimal, Decimal]]
) -> tuple[Decimal | None, Decimal | None]:
    """A cap and what was spent against it (None: nothing recorded): at random, or leaving one of the edges of
    one of the policy's offers (``priced``: their amounts and costs)."""
    if not priced or draw(budget_modes) == "random":
        return draw(caps), draw(spent) if draw(st.booleans()) else None
    amount, cost = draw(st.sampled_from(priced))
    low, high = sorted((amount, cost))
    between = low + ((high - low) / 2).quantize(CENT, rounding=ROUND_DOWN)  # low <= between < high when they differ
    left = draw(st.sampled_from([between, cost, amount - CENT, amount, cost - CENT]))
    used = max(draw(spent), -left)  # a cap is never below 0
    return left + used, used


def draw_day(draw: st.DrawFn, drawn: list[tuple[CompiledPolicy, dict, bool]]):
    """Mostly the first or the last day of a policy that otherwise applies, or a day either side of it."""
    # As often as policies have them: a day several policies start or end on is drawn more.
    edges = [
        terms[bound]
        for _, terms, otherwise_applies in drawn
        for bound in ("valid_from", "valid_until")
        if otherwise_applies and terms[bound] is not None
    ]
    if edges and draw(day_modes) == "edge":
        return draw(st.sampled_from(edges)) + timedelta(days=draw(edge_shifts))
    return DAY + timedelta(days=draw(day_offsets))


@st.composite
def worlds(draw: st.DrawFn, names: st.SearchStrategy[str] = plain_names) -> dict:
    """A policy set with perks, spending and outcome stats, and the customer and incident to run it for."""
    customer = draw(customers(names))
    facts = draw(incident_facts())
    days = sorted(DAY + timedelta(days=offset) for offset in draw(shared_days))
    drawn = [draw_policy(draw, pid, customer, facts, days) for pid in range(1, draw(policy_counts) + 1)]
    incident = make_incident(**facts, occurred_on=draw_day(draw, drawn))
    perk_count = 0 if draw(one_in_four) else draw(perk_counts)
    perks = [draw_perk(draw, pid, customer.interests) for pid in range(1, perk_count + 1)]
    recent = frozenset(k.id for k in perks if draw(one_in_four))
    perk = matched_perk(perks, customer, recent)
    policy_list, month_spent, customer_spent, stats = [], {}, {}, {}
    for p, _, _ in drawn:
        # Budgets bite at an offer's cost; where its cost and amount differ, a budget left between them tells
        # which of the two is charged.
        priced = [(amount, cost) for _, amount, cost in prices(p, customer, incident, perk)]
        monthly_cap, month_spent[p.id] = draw_budget(draw, optional_caps[0], money_1200, priced)
        per_customer_cap, customer_spent[p.id] = draw_budget(draw, optional_caps[1], money_400, priced)
        policy_list.append(replace(p, monthly_cap=monthly_cap, per_customer_cap_30d=per_customer_cap))
        for o in p.offers:
            if draw(st.booleans()):
                offered = draw(counts)
                stats[o.id] = (offered, int(offered * draw(shares)))
    month_spent = {pid: spent for pid, spent in month_spent.items() if spent is not None}
    customer_spent = {pid: spent for pid, spent in customer_spent.items() if spent is not None}
    return {
        "policies": policy_list,
        "terms": {policy.id: terms for policy, terms, _ in drawn},
        "perks": perks,
        "spending": Spending(month_spent=month_spent, customer_spent_30d=customer_spent, recent_perk_ids=recent),
        "stats": stats,
        "customer": customer,
        "incident": incident,
        "approval_limit": draw(optional_approval_limit),
        "explain": draw(st.booleans()),
    }


def run_world(world: dict):
    return run(
        *world["policies"],
        perks=world["perks"],
        customer=world["customer"],
        incident=world["incident"],
        spending=world["spending"],
        stats=world["stats"],
        approval_limit=world["approval_limit"],
        explain=world["explain"],
    )


# --- What a policy promises, written out from its data --------------------------------------------


def applies(terms: dict, customer: CustomerFacts, incident: IncidentFacts) -> bool:
    """The policy's conditions as the Policy model's help texts state them: each set one holds, an empty one
    matches anything; valid from its first day, until (not on) its last."""
    day = incident.occurred_on
    return (
        (terms["valid_from"] is None or day >= terms["valid_from"])
        and (terms["valid_until"] is None or day < terms["valid_until"])
        and (not terms["category_ids"] or incident.category_id in terms["category_ids"])
        and (terms["severity_min"] is None or incident.severity >= terms["severity_min"])
        and (terms["severity_max"] is None or incident.severity <= terms["severity_max"])
        and (not terms["faults"] or incident.fault in terms["faults"])
        and (not terms["tiers"] or customer.tier in terms["tiers"])
        and (terms["correctable"] is None or incident.correctable is terms["correctable"])
        and (terms["min_repeat_count"] is None or incident.repeat_count >= terms["min_repeat_count"])
        and (
            terms["min_same_category_repeat_count"] is None
            or incident.same_category_repeat_count >= terms["min_same_category_repeat_count"]
        )
        and (terms["min_lifetime_value"] is None or customer.lifetime_value >= terms["min_lifetime_value"])
        and (terms["min_order_value"] is None or incident.order_value >= terms["min_order_value"])
    )


def scaling(policy: CompiledPolicy, customer: CustomerFacts, incident: IncidentFacts) -> Decimal:
    """The generosity help texts: 1, plus the rate per severity step above 1, per earlier same-category
    incident and per whole 1,000 of lifetime value; never past the policy's most generous multiplier."""
    extra = (
        policy.generosity_per_severity * (incident.severity - 1)
        + policy.generosity_per_repeat * (incident.same_category_repeat_count - 1)
        + policy.generosity_per_1000_lifetime_value * int(customer.lifetime_value // 1000)
    )
    return min(1 + extra, policy.generosity_max_multiplier)


def to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def promised(offer: CompiledOffer, scale: Decimal, order_value: Decimal) -> tuple[Decimal | None, Decimal, Decimal]:
    """(value, amount, estimated cost) of a non-perk offer, from README's "Offer kinds" table, scaled."""
    if offer.kind in {"percent_discount", "refund"}:
        percent = min(D("100"), offer.value * scale)  # percentages never pass 100
        amount = order_value * percent / 100
        if offer.kind == "percent_discount" and order_value == 0:
            amount = offer.max_amount
        elif offer.max_amount is not None:
            amount = min(amount, offer.max_amount)
        return to_cents(percent), to_cents(amount), to_cents(amount)
    if offer.kind == "escalation":
        return None, D("0"), offer.cost
    amount = to_cents(offer.value * scale)
    return amount, amount, amount if offer.cost is None else to_cents(offer.cost * scale)


def matched_perk(perks: list[CompiledPerk], customer: CustomerFacts, recent: frozenset[int]) -> CompiledPerk | None:
    """The perk a personalized perk gives: of those not given lately, the one sharing most interests with the
    customer (none when none shares any); ties go to the cheaper, then the older (as ``best_perk`` documents)."""
    eligible = [k for k in perks if k.id not in recent and k.tags & customer.interests]
    return min(eligible, key=lambda k: (-len(k.tags & customer.interests), k.cost, k.id), default=None)


def prices(
    policy: CompiledPolicy, customer: CustomerFacts, incident: IncidentFacts, perk: CompiledPerk | None
) -> list[tuple[CompiledOffer, Decimal, Decimal]]:
    """(offer, amount, estimated cost) of each offer of the policy that has a value: a personalized perk only
    with a matched perk."""
    scale = scaling(policy, customer, incident)
    priced = []
    for offer in policy.offers:
        if offer.kind != "personalized_perk":
            priced.append((offer, *promised(offer, scale, incident.order_value)[1:]))
        elif perk is not None:
            priced.append((offer, perk.cost, perk.cost))
    return priced


def o_policy(world: dict, offer: CompiledOffer) -> int:
    """The id of the policy an offer belongs to."""
    return next(p.id for p in world["policies"] if offer in p.offers)


def on_the_table(world: dict) -> list[CompiledOffer]:
    """The offers the engine must weigh: their policy applies, they have a value (a personalized perk only with a
    matched perk) and their estimated cost fits what the policy's month and this customer's cap have left."""
    customer, incident, spending = world["customer"], world["incident"], world["spending"]
    perk = matched_perk(world["perks"], customer, spending.recent_perk_ids)
    table = []
    for policy in world["policies"]:
        if not applies(world["terms"][policy.id], customer, incident):
            continue
        month_left = customer_left = None
        if policy.monthly_cap is not None:
            month_left = policy.monthly_cap - spending.month_spent.get(policy.id, D("0"))
        if policy.per_customer_cap_30d is not None:
            customer_left = policy.per_customer_cap_30d - spending.customer_spent_30d.get(policy.id, D("0"))
        for offer, _, cost in prices(policy, customer, incident, perk):
            if (month_left is None or cost <= month_left) and (customer_left is None or cost <= customer_left):
                table.append(offer)
    return table


@PROPERTY
@given(world=worlds(names=any_names))
def test_options_keep_their_promises(world):
    """Every option checked against the policy data it was generated from, not the engine's own checks."""
    result = run_world(world)
    customer, incident, spending = world["customer"], world["incident"], world["spending"]
    policies = {p.id: p for p in world["policies"]}
    perks = {k.id: k for k in world["perks"]}

    # At most three, labelled a, b, c in order, scores never increasing (from b, when a leads), three different
    # offers. A lead policy that applies and has an offer on the table gives option a: of several, the one of
    # higher priority, then the older.
    labels = [o.label for o in result.options]
    assert labels == ["a", "b", "c"][: len(labels)]
    table = on_the_table(world)
    leading = [policies[pid] for pid in dict.fromkeys(o_policy(world, offer) for offer in table)]
    leading = [p for p in leading if p.lead]
    leader = min(leading, key=lambda p: (-p.priority, p.id), default=None)
    scores = [o.score for o in result.options]
    if leader is None:
        assert scores == sorted(scores, reverse=True)
        assert not any(any(r.startswith("leads: ") for r in o.reasons) for o in result.options)
    else:
        assert result.options[0].candidate.policy.id == leader.id
        assert any(r.startswith(f"leads: policy {leader.name!r}") for r in result.options[0].reasons)
        assert scores[1:] == sorted(scores[1:], reverse=True)
    assert all(o.score > 0 for o in result.options)
    assert len({o.candidate.offer.id for o in result.options}) == len(result.options)

    # Nothing missing: the options come from the offers on the table, as many as there are up to three, of as
    # many kinds as there are up to three; so with three offers or fewer on the table, every one is shown.
    assert {o.candidate.offer.id for o in result.options} <= {offer.id for offer in table}
    assert len(result.options) == min(3, len(table))
    assert len({o.candidate.kind for o in result.options}) == min(3, len({offer.kind for offer in table}))

    for option in result.options:
        candidate = option.candidate
        policy = policies[candidate.policy.id]
        offer = candidate.offer
        # The option comes from one of the policy's offers, and the policy applies to this incident.
        assert offer in policy.offers
        assert candidate.kind == offer.kind
        assert applies(world["terms"][policy.id], customer, incident)

        # Value, amount and cost as the offer and the policy's generosity promise.
        if offer.kind == "personalized_perk":
            # A perk the customer shares interests with, not given lately, sharing as many as any such perk.
            perk = perks[candidate.perk.id]
            assert perk.id not in spending.recent_perk_ids
            assert candidate.perk_overlap == tuple(sorted(perk.tags & customer.interests)) != ()
            eligible = [k for k in perks.values() if k.id not in spending.recent_perk_ids]
            assert len(candidate.perk_overlap) == max(len(k.tags & customer.interests) for k in eligible)
            assert perk == matched_perk(world["perks"], customer, spending.recent_perk_ids)
            value = amount = cost = perk.cost
        else:
            assert candidate.perk is None
            value, amount, cost = promised(offer, scaling(policy, customer, incident), incident.order_value)
        assert (candidate.value, candidate.amount, candidate.estimated_cost) == (value, amount, cost)
        if candidate.unit == "percent":
            assert offer.value <= candidate.value <= 100

        # Budgets: nothing costs more than its policy's month or this customer's cap has left.
        assert cost >= 0
        if policy.monthly_cap is not None:
            assert cost <= policy.monthly_cap - spending.month_spent.get(policy.id, D("0"))
        if policy.per_customer_cap_30d is not None:
            assert cost <= policy.per_customer_cap_30d - spending.customer_spent_30d.get(policy.id, D("0"))

        # Approval: when the offer asks for it, or the cost passes the requester's limit.
        limit = world["approval_limit"]
        assert option.requires_approval is (offer.requires_approval or (limit is not None and cost > limit))

        # The title states the amount in the deployment's currency when its template says so.
        if "{amount}" in offer.title:
            assert f"{amount:.2f}" in option.title
        if "{currency}" in offer.title:
            assert CURRENCY in option.title

    # Remedy: of every kind some applying policy lists, the item of the policy with the higher priority (then the
    # older policy, then its first of that kind), priced as written (no generosity), whatever the budgets;
    # a refund of nothing left out.
    expected_remedy = {}
    for policy in sorted(policies.values(), key=lambda p: (-p.priority, p.id)):
        if applies(world["terms"][policy.id], customer, incident):
            for remedy in policy.remedies:
                priced = promised(remedy, D("1"), incident.order_value)
                if remedy.kind not in expected_remedy and not (remedy.kind == "refund" and not priced[1]):
                    expected_remedy[remedy.kind] = (policy.id, remedy.id, *priced)
    assert {
        item.candidate.kind: (
            item.candidate.policy.id,
            item.candidate.offer.id,
            item.candidate.value,
            item.candidate.amount,
            item.candidate.estimated_cost,
        )
        for item in result.remedy
    } == expected_remedy
    assert len(result.remedy) == len(expected_remedy)

    # Escalations: exactly the policies that apply and escalate, whether or not they have an option.
    assert {p.id for p in result.escalating_policies} == {
        p.id for p in world["policies"] if p.escalate and applies(world["terms"][p.id], customer, incident)
    }

    # Explain: one entry per active policy without an option, and never one that has an option; then one
    # per offer of an applying policy that is not an option (never one that is).
    if world["explain"]:
        shown = {o.candidate.policy.id for o in result.options}
        explained = [n.policy.id for n in result.not_offered if n.offer is None]
        assert len(explained) == len(set(explained))
        assert shown.isdisjoint(explained)
        assert shown | set(explained) == set(policies)
        assert all(n.reason for n in result.not_offered)
        offers_explained = [n.offer.id for n in result.not_offered if n.offer is not None]
        assert len(offers_explained) == len(set(offers_explained))
        assert {o.candidate.offer.id for o in result.options}.isdisjoint(offers_explained)


@PROPERTY
@given(world=worlds(names=plain_names))
def test_no_placeholder_is_left_unrendered(world):
    result = run_world(world)
    for option in result.options:
        assert not PLACEHOLDER_RE.search(option.title), option.title
        assert not PLACEHOLDER_RE.search(option.message), option.message


@PROPERTY
@given(world=worlds(names=brace_names))
def test_no_placeholder_is_left_unrendered_with_braces_in_the_name(world):
    result = run_world(world)
    for option in result.options:
        assert not PLACEHOLDER_RE.search(option.title + option.message), option.message


# --- select on its own ---------------------------------------------------------------------------


@st.composite
def scored_lists(draw: st.DrawFn) -> list[ranking.Scored]:
    customer, incident = make_customer(), make_incident()
    items = []
    for i in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["fixed_credit", "gift", "free_shipping", "expedited_replacement"]))
        policy = make_policy(make_offer(kind, id=i, value=D("10")), id=draw(st.integers(1, 5)), priority=i % 3)
        candidate = candidate_for(policy, policy.offers[0], customer, incident, D("1"), None)
        score = draw(st.sampled_from([0.1, 0.2, 0.2, 0.5, 0.9]))
        items.append(ranking.Scored(candidate, score, 1.0, 1.0, score, OfferCounts(), 10.0))
    return items


@PROPERTY
@given(items=scored_lists(), limit=st.integers(1, 3))
def test_select_keeps_as_many_kinds_as_it_can_in_score_order(items, limit):
    chosen = ranking.select(items, limit=limit)
    assert len(chosen) == min(limit, len(items))
    assert len({s.candidate.kind for s in chosen}) == min(limit, len({s.candidate.kind for s in items}))
    assert [s.sort_key for s in chosen] == sorted(s.sort_key for s in chosen)
    # The first option is always the best candidate overall.
    if items:
        assert chosen[0].sort_key == min(s.sort_key for s in items)
    assert ranking.select(list(reversed(items)), limit=limit) == chosen
