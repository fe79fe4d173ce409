"""The engine's data types: the facts it reads and the results it returns.

A module of their own, so the engine, ranking and selectors share them without
importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from policies.index import CompiledOffer, CompiledPerk, CompiledPolicy


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    external_id: str
    name: str
    tier: str
    lifetime_value: Decimal
    interests: frozenset[str]


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    category_id: int
    category_name: str
    severity: int
    fault: str
    correctable: bool
    order_value: Decimal
    repeat_count: int
    same_category_repeat_count: int
    occurred_on: date
    window_days: int = 90
    ticket: str = ""  # the incident's external_ref, for {ticket}


@dataclass(frozen=True, slots=True)
class Spending:
    """What budgets have left, read per request (see ``selectors.spending_for``)."""

    month_spent: Mapping[int, Decimal] = field(default_factory=dict)  # policy id -> spent this month
    customer_spent_30d: Mapping[int, Decimal] = field(default_factory=dict)  # policy id -> to this customer
    recent_perk_ids: frozenset[int] = frozenset()  # perks the customer got in the last 90 days
    recent_perk_dates: Mapping[int, date] = field(default_factory=dict)  # when (read only to explain)


@dataclass(slots=True)
class Candidate:
    """An offer the customer could get, before ranking."""

    policy: CompiledPolicy
    offer: CompiledOffer
    kind: str
    value: Decimal | None
    unit: str | None
    amount: Decimal  # the option's money value to the customer
    estimated_cost: Decimal
    perk: CompiledPerk | None
    perk_overlap: tuple[str, ...]
    multiplier: Decimal


@dataclass(frozen=True, slots=True)
class Option:
    """A ranked, rendered option: what the agent reads out."""

    label: str
    candidate: Candidate
    title: str
    message: str
    requires_approval: bool
    score: float
    score_breakdown: dict[str, float]
    reasons: list[str]
    propensity_mean: float = 0.0  # the posterior mean (the factor itself under thompson is a draw)


@dataclass(frozen=True, slots=True)
class RemedyItem:
    """What a policy that applies puts right, rendered: not ranked, not limited by budgets."""

    candidate: Candidate
    title: str
    message: str


@dataclass(frozen=True, slots=True)
class NotOffered:
    """Why a policy gave no option, or (with ``offer``) why one of its offers was not shown."""

    policy: CompiledPolicy
    reason: str
    offer: CompiledOffer | None = None
    title: str = ""  # the offer's title as it would have read, when it could be priced; else its template

    @property
    def offer_title(self) -> str:
        return self.title or (self.offer.title if self.offer is not None else "")


@dataclass(frozen=True, slots=True)
class EngineResult:
    options: list[Option]
    escalating_policies: list[CompiledPolicy]
    not_offered: list[NotOffered]
    remedy: list[RemedyItem] = field(default_factory=list)
