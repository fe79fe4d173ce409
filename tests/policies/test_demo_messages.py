"""Every text the demo pack can put in front of a customer reads as a person wrote it.

The demo pack is imported, then its titles and messages are rendered two ways:
through the engine, for a spread of incidents (every category, severities 1 to
5, repeat counts 1 to 3, the tiers, with and without interests a perk matches,
a full name, a one-word name and none, with and without a ticket, order values
of 0, 300 and 640), so what the ranking shows and every remedy is read; and
template by template, every offer and remedy of every policy (a perk offer with
every perk), so texts the ranking happens never to show are read too.

A text fails on what a template slip leaves behind: a brace, a doubled space,
"None", a space before punctuation, a capital letter right after a comma or a
colon (a name placed after a comma, "I'm sorry, Maria", or a perk named like a
title, "enjoy: Online cooking masterclass"; the pronoun "I" is fine), money
written as "USD" instead of with its sign, or a sentence that does not start
with a capital letter. The engine renders {first_name} as "there" for a
customer without a name, so the message of a nameless customer may open with
"there, ..."; that one sentence start is the engine's, not the pack's.
"""

from __future__ import annotations

import io
import itertools
import random
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from compensation.engine import candidate_for, compute_options, generosity_multiplier, render_texts
from compensation.engine_types import CustomerFacts, IncidentFacts, Spending
from compensation.learning import LearningStats
from policies.index import CompiledPolicy, PolicyIndex, policy_index_get
from tests.policies.test_demo_pack import DEMO_PACK

pytestmark = pytest.mark.django_db

CURRENCY = "USD"
LOCALE = "en_US"
DAY = date(2026, 11, 20)
NAMES = ("Maria Gonzalez", "Kenji", "")
ORDER_VALUES = (Decimal("0"), Decimal("300.00"), Decimal("640.00"))
TIERS = ("standard", "silver", "gold", "platinum")
FAULTS = ("company", "customer", "third_party", "unknown")
LIFETIME_VALUES = (Decimal("0"), Decimal("2500.00"), Decimal("12000.00"))

# ", Maria" or ": Online cooking masterclass", but not ", I'm" or ", I"
CAPITAL_AFTER_COMMA = re.compile(r"[,:]\s+(?!I(?:'[a-z]+)?\b)[A-Z]")
SPACE_BEFORE_PUNCTUATION = re.compile(r"\s[.,;:!?)]")
SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)([a-z])")


def problems(text: str, *, named: bool) -> list[str]:
    """What is wrong with one rendered title or message; an empty list when it reads well."""
    found = []
    if not text.strip():
        found.append("empty")
    if text != text.strip():
        found.append("leading or trailing whitespace")
    if "{" in text or "}" in text:
        found.append("a leftover brace")
    if "  " in text:
        found.append("a doubled space")
    if "None" in text:
        found.append('"None"')
    if "USD" in text:
        found.append('money as "USD" instead of with its sign')
    if SPACE_BEFORE_PUNCTUATION.search(text):
        found.append("a space before punctuation")
    if CAPITAL_AFTER_COMMA.search(text):
        found.append("a capital letter right after a comma or colon")
    starts = SENTENCE_START.finditer(text)
    if not named:  # "there, I'm sorry ...": the engine's word for a customer without a name (module docstring)
        starts = (m for m in starts if not (m.start(1) == 0 and text.startswith("there, ")))
    if any(True for _ in starts):
        found.append("a sentence that starts in lower case")
    return found


@pytest.fixture
def index() -> PolicyIndex:
    call_command("import_policies", str(DEMO_PACK), stdout=io.StringIO())
    return policy_index_get()


def customer_of(name: str, *, tier: str, interests: frozenset[str], lifetime_value: Decimal) -> CustomerFacts:
    return CustomerFacts(external_id="C-1", name=name, tier=tier, lifetime_value=lifetime_value, interests=interests)


def incident_of(
    index: PolicyIndex,
    slug: str,
    *,
    severity: int,
    repeats: int,
    order_value: Decimal,
    fault: str = "company",
    correctable: bool = True,
    ticket: str = "",
) -> IncidentFacts:
    category = index.categories[slug]
    return IncidentFacts(
        category_id=category.id,
        category_name=category.name,
        severity=severity,
        fault=fault,
        correctable=correctable,
        order_value=order_value,
        repeat_count=repeats,
        same_category_repeat_count=repeats,
        occurred_on=DAY,
        ticket=ticket,
    )


def spread(index: PolicyIndex) -> Iterator[tuple[CustomerFacts, IncidentFacts]]:
    """Every category × severity 1-5 × repeat count 1-3 × name × order value; the other facts (tier,
    lifetime value, fault, correctability, ticket, and interests: none, or the tags of one perk after
    another) are drawn from a seeded generator, so each value meets many of the others, the same way each run."""
    draw = random.Random(1042)
    perk_interests = [frozenset(perk.tags) for perk in index.perks]
    interests = itertools.cycle([frozenset(), *perk_interests])
    for slug, severity, repeats, name, order_value in itertools.product(
        sorted(index.categories), range(1, 6), range(1, 4), NAMES, ORDER_VALUES
    ):
        customer = customer_of(
            name, tier=draw.choice(TIERS), interests=next(interests), lifetime_value=draw.choice(LIFETIME_VALUES)
        )
        incident = incident_of(
            index,
            slug,
            severity=severity,
            repeats=repeats,
            order_value=order_value,
            fault=draw.choice(FAULTS),
            correctable=draw.random() < 0.5,
            ticket=draw.choice(("T-1042", "")),
        )
        yield customer, incident


def read(texts: list[tuple[str, str, bool]]) -> list[str]:
    """``(where, text, named)`` triples to the list of complaints, one line each."""
    return [f"{where}: {problem}: {text!r}" for where, text, named in texts for problem in problems(text, named=named)]


def test_the_checks_catch_what_the_issue_found() -> None:
    assert problems("Maria Gonzalez, I'm sorry about the double charge.", named=True) == []
    assert problems("Maria, I'm sorry. I've added $46.00 of credit, and I'll e-mail you.", named=True) == []
    assert problems("Sorry, Maria, that was us.", named=True) == ["a capital letter right after a comma or colon"]
    assert problems("Something you'll enjoy: Online cooking masterclass.", named=True) == [
        "a capital letter right after a comma or colon"
    ]
    assert problems("I've added 46.00 USD to your account.", named=True) == ['money as "USD" instead of with its sign']
    assert problems("Your {perk_name} is on us.", named=True) == ["a leftover brace"]
    assert problems("Your  reference is None .", named=True) == [
        "a doubled space",
        '"None"',
        "a space before punctuation",
    ]
    assert problems("Enjoy it. online cooking masterclass on us", named=True) == [
        "a sentence that starts in lower case"
    ]
    assert problems("there, I'm sorry about the late delivery.", named=False) == []
    assert problems("there, I'm sorry about the late delivery.", named=True) == ["a sentence that starts in lower case"]


def test_every_option_and_remedy_the_engine_returns_reads_well(index: PolicyIndex) -> None:
    texts: list[tuple[str, str, bool]] = []
    seen_policies: set[str] = set()
    seen_remedies: set[tuple[str, str]] = set()
    incidents = 0
    for customer, incident in spread(index):
        incidents += 1
        result = compute_options(
            index=index,
            customer=customer,
            incident=incident,
            spending=Spending(),
            stats=LearningStats(),
            currency=CURRENCY,
            approval_limit=Decimal("100.00"),
            money_locale=LOCALE,
        )
        named = bool(customer.name)
        for item in [*result.options, *result.remedy]:
            where = (
                f"{item.candidate.policy.slug} {item.candidate.kind} ({incident.category_name!r}, {customer.name!r})"
            )
            texts += [(f"{where} title", item.title, True), (f"{where} message", item.message, named)]
            if named:
                first, *rest = customer.name.split()
                assert item.message.startswith(first), f"{where}: {item.message!r}"
                if rest:
                    assert customer.name not in item.message, f"{where} uses the full name: {item.message!r}"
        seen_policies |= {option.candidate.policy.slug for option in result.options}
        seen_remedies |= {(item.candidate.policy.slug, item.candidate.kind) for item in result.remedy}

    assert incidents == len(index.categories) * 5 * 3 * len(NAMES) * len(ORDER_VALUES)
    assert read(texts) == []
    # The spread reaches most of the pack: every remedy, and the options of nearly every policy.
    every_remedy = {(p.slug, r.kind) for p in index.policies.values() for r in p.remedies}
    assert seen_remedies == every_remedy
    assert len(seen_policies) >= len(index.policies) - 2, sorted(
        {p.slug for p in index.policies.values()} - seen_policies
    )


def templates_of(policy: CompiledPolicy) -> list[tuple[str, object]]:
    return [("offer", offer) for offer in policy.offers] + [("remedy", remedy) for remedy in policy.remedies]


def test_every_template_of_every_policy_reads_well_whatever_the_values(index: PolicyIndex) -> None:
    texts: list[tuple[str, str, bool]] = []
    for policy in index.policies.values():
        combinations = itertools.product(
            templates_of(policy), sorted(index.categories), NAMES, ORDER_VALUES, range(1, 4)
        )
        for n, ((what, template), slug, name, order_value, repeats) in enumerate(combinations):
            customer = customer_of(
                name, tier="gold", interests=frozenset(), lifetime_value=LIFETIME_VALUES[n % len(LIFETIME_VALUES)]
            )
            incident = incident_of(
                index,
                slug,
                severity=1 + n % 5,
                repeats=repeats,
                order_value=order_value,
                ticket="T-1" if n % 2 else "",
            )
            multiplier = generosity_multiplier(policy, customer, incident) if what == "offer" else Decimal("1")
            perks = [(perk, tuple(sorted(perk.tags))) for perk in index.perks]
            for perk_choice in perks if template.kind == "personalized_perk" else [None]:
                candidate = candidate_for(policy, template, customer, incident, multiplier, perk_choice)
                assert candidate is not None, f"{policy.slug} {what} {template.kind}"
                title, message = render_texts(candidate, customer, incident, CURRENCY, LOCALE)
                where = f"{policy.slug} {what} {template.kind} ({slug}, {name!r}, {order_value}, x{repeats})"
                if perk_choice is not None:
                    where += f" perk {perk_choice[0].slug}"
                texts += [(f"{where} title", title, True), (f"{where} message", message, bool(name))]

    assert len(texts) > 2 * 11 * len(NAMES) * len(ORDER_VALUES) * 3 * 40
    assert read(texts) == []
