"""The compiled policy index the engine reads, held in process memory.

Built from the database in a few queries and kept until the global policy
revision moves, so a request costs one revision read, not a scan of policy
tables. Policies are grouped by category (with the any-category policies
merged into every group), so the engine only looks at policies that can match.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from policies.choices import OfferKind, Placement
from policies.conditions import CompiledConditions, conditions_compile
from policies.models import Category, OfferTemplate, Perk, Policy, RemedyTemplate
from policies.selectors import policy_revision_current


@dataclass(frozen=True, slots=True)
class CompiledOffer:
    id: int
    kind: str
    title: str
    message: str
    value: Decimal | None
    max_amount: Decimal | None
    cost: Decimal | None
    expires_in_days: int | None
    requires_approval: bool
    order: int


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    id: int
    slug: str
    name: str
    version: int
    priority: int
    valid_from: date | None
    valid_until: date | None
    category_ids: frozenset[int]
    conditions: CompiledConditions  # the conditions on customer and incident it sets
    escalate: bool
    monthly_cap: Decimal | None
    per_customer_cap_30d: Decimal | None
    generosity_per_severity: Decimal
    generosity_per_repeat: Decimal
    generosity_per_1000_lifetime_value: Decimal
    generosity_max_multiplier: Decimal
    offers: tuple[CompiledOffer, ...]
    remedies: tuple[CompiledOffer, ...] = ()  # given whenever the policy applies, never ranked
    lead: bool = False  # placement: lead (its best option is option a)


@dataclass(frozen=True, slots=True)
class CompiledPerk:
    id: int
    slug: str
    name: str
    tags: frozenset[str]
    cost: Decimal


@dataclass(frozen=True, slots=True)
class CompiledCategory:
    id: int
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """What a request for one category must read about budgets and perks."""

    monthly_capped: tuple[int, ...]  # policies with a monthly cap
    customer_capped: tuple[int, ...]  # policies with a per-customer cap
    wants_perks: bool  # some policy offers a personalized perk


def budget_scope_of(policies: tuple[CompiledPolicy, ...]) -> BudgetScope:
    return BudgetScope(
        monthly_capped=tuple(p.id for p in policies if p.monthly_cap is not None),
        customer_capped=tuple(p.id for p in policies if p.per_customer_cap_30d is not None),
        wants_perks=any(o.kind == OfferKind.PERSONALIZED_PERK for p in policies for o in p.offers),
    )


@dataclass(frozen=True)
class PolicyIndex:
    revision: int
    categories: dict[str, CompiledCategory]  # active categories by slug
    policies: dict[int, CompiledPolicy]
    by_category: dict[int, tuple[CompiledPolicy, ...]]  # category-specific and any-category, by priority
    any_category: tuple[CompiledPolicy, ...]
    perks: tuple[CompiledPerk, ...]
    budget_scopes: dict[int, BudgetScope] = field(default_factory=dict)  # by category id, built once
    categories_by_id: dict[int, CompiledCategory] = field(default_factory=dict)

    def policies_for(self, category_id: int) -> tuple[CompiledPolicy, ...]:
        return self.by_category.get(category_id, self.any_category)

    def budget_scope(self, category_id: int) -> BudgetScope:
        scope = self.budget_scopes.get(category_id)
        return scope if scope is not None else budget_scope_of(self.policies_for(category_id))


def _order(policy: CompiledPolicy) -> tuple[int, int]:
    return (-policy.priority, policy.id)


def compiled_offer(o: OfferTemplate | RemedyTemplate, *, id: int | None = None) -> CompiledOffer:
    """An offer or remedy row as the engine reads it (``id`` stands in for an unsaved row's)."""
    return CompiledOffer(
        id=o.id if id is None else id,
        kind=o.kind,
        title=o.title,
        message=o.message,
        value=o.value,
        max_amount=o.max_amount,
        cost=o.cost,
        expires_in_days=o.expires_in_days,
        requires_approval=o.requires_approval,
        order=o.order,
    )


def _compiled_offers(model: type[OfferTemplate] | type[RemedyTemplate]) -> dict[int, list[CompiledOffer]]:
    """The active policies' offers (or remedies), by policy id, in their order."""
    compiled: dict[int, list[CompiledOffer]] = {}
    for o in model.objects.filter(policy__active=True).order_by("policy_id", "order", "pk"):
        compiled.setdefault(o.policy_id, []).append(compiled_offer(o))
    return compiled


def compiled_policy(
    p: Policy,
    *,
    category_ids: Iterable[int],
    offers: Iterable[CompiledOffer],
    remedies: Iterable[CompiledOffer],
    id: int | None = None,
    version: int | None = None,
) -> CompiledPolicy:
    """A policy as the engine reads it; ``id`` and ``version`` stand in for an unsaved policy's
    (a simulation's draft, policies/drafts.py)."""
    return CompiledPolicy(
        id=p.id if id is None else id,
        slug=p.slug,
        name=p.name,
        version=p.version if version is None else version,
        priority=p.priority,
        valid_from=p.valid_from,
        valid_until=p.valid_until,
        category_ids=frozenset(category_ids),
        conditions=conditions_compile(p),
        escalate=p.escalate,
        monthly_cap=p.monthly_cap,
        per_customer_cap_30d=p.per_customer_cap_30d,
        generosity_per_severity=p.generosity_per_severity,
        generosity_per_repeat=p.generosity_per_repeat,
        generosity_per_1000_lifetime_value=p.generosity_per_1000_lifetime_value,
        generosity_max_multiplier=p.generosity_max_multiplier,
        offers=tuple(offers),
        remedies=tuple(remedies),
        lead=p.placement == Placement.LEAD,
    )


def compiled_perk(k: Perk, *, id: int | None = None) -> CompiledPerk:
    return CompiledPerk(id=k.id if id is None else id, slug=k.slug, name=k.name, tags=frozenset(k.tags), cost=k.cost)


def policy_index_build(revision: int) -> PolicyIndex:
    """Read every active policy with its offers, the active categories and perks."""
    categories = [
        CompiledCategory(id=c.id, slug=c.slug, name=c.name)
        for c in Category.objects.filter(active=True).only("id", "slug", "name")
    ]
    offers = _compiled_offers(OfferTemplate)
    remedies = _compiled_offers(RemedyTemplate)
    policy_categories: dict[int, set[int]] = {}
    for policy_id, category_id in Policy.categories.through.objects.filter(policy__active=True).values_list(
        "policy_id", "category_id"
    ):
        policy_categories.setdefault(policy_id, set()).add(category_id)
    policies = [
        compiled_policy(
            p,
            category_ids=policy_categories.get(p.id, ()),
            offers=offers.get(p.id, ()),
            remedies=remedies.get(p.id, ()),
        )
        for p in Policy.objects.filter(active=True)
    ]
    perks = [compiled_perk(k) for k in Perk.objects.filter(active=True).order_by("pk")]
    return index_assemble(revision, categories=categories, policies=policies, perks=perks)


def index_assemble(
    revision: int,
    *,
    categories: Iterable[CompiledCategory],
    policies: Iterable[CompiledPolicy],
    perks: Iterable[CompiledPerk],
) -> PolicyIndex:
    """The index of these (active) categories, policies and perks: policies grouped by category, by priority."""
    categories = {c.slug: c for c in categories}
    policies = {p.id: p for p in policies}
    any_category = tuple(sorted((p for p in policies.values() if not p.category_ids), key=_order))
    grouped: dict[int, list[CompiledPolicy]] = {}
    for p in policies.values():
        for category_id in p.category_ids:
            grouped.setdefault(category_id, []).append(p)
    by_category = {
        category.id: tuple(sorted([*grouped.get(category.id, ()), *any_category], key=_order))
        for category in categories.values()
    }
    return PolicyIndex(
        revision=revision,
        categories=categories,
        policies=policies,
        by_category=by_category,
        any_category=any_category,
        perks=tuple(perks),
        budget_scopes={category_id: budget_scope_of(group) for category_id, group in by_category.items()},
        categories_by_id={category.id: category for category in categories.values()},
    )


_lock = threading.Lock()
_current: PolicyIndex | None = None


def policy_index_get() -> PolicyIndex:
    """The index for the current revision: one revision read, a rebuild only when it moved."""
    global _current
    revision = policy_revision_current()
    index = _current
    if index is not None and index.revision == revision:
        return index
    with _lock:
        index = _current
        if index is None or index.revision != revision:
            index = policy_index_build(revision)
            _current = index
    return index


def policy_index_clear() -> None:
    """Forget the process's index (tests that roll back the database use this)."""
    global _current
    with _lock:
        _current = None
