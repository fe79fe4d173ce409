"""The small catalog the report and outcome-list tests share: four policies over four categories.

Alpha (a 10.00 credit) and Beta (25.00 of free shipping) both answer late deliveries and damaged
items, so those sets show exactly two options; Gamma (a 5.00 credit) answers lost parcels and
escalates every one; Zulu answers a category nobody reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from policies.choices import OfferKind
from policies.models import Category, Policy
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory


@dataclass(frozen=True)
class Catalog:
    late: Category
    damaged: Category
    lost: Category
    unused: Category
    alpha: Policy
    beta: Policy
    gamma: Policy
    zulu: Policy


def catalog_build() -> Catalog:
    late = CategoryFactory(slug="late_delivery", name="Late delivery")
    damaged = CategoryFactory(slug="damaged_item", name="Damaged item")
    lost = CategoryFactory(slug="lost_parcel", name="Lost parcel")
    unused = CategoryFactory(slug="unused", name="Unused")
    alpha = PolicyFactory(name="Alpha credit", priority=90, categories=[late, damaged])
    OfferTemplateFactory(policy=alpha, kind=OfferKind.FIXED_CREDIT, value=Decimal("10.00"))
    beta = PolicyFactory(name="Beta shipping", priority=10, categories=[late, damaged])
    OfferTemplateFactory(policy=beta, kind=OfferKind.FREE_SHIPPING, value=Decimal("25.00"), title="Free shipping")
    gamma = PolicyFactory(name="Gamma escalation", categories=[lost], escalate=True)
    OfferTemplateFactory(policy=gamma, kind=OfferKind.FIXED_CREDIT, value=Decimal("5.00"))
    zulu = PolicyFactory(name="Zulu unused", categories=[unused])
    OfferTemplateFactory(policy=zulu, kind=OfferKind.FIXED_CREDIT, value=Decimal("1.00"))
    return Catalog(late, damaged, lost, unused, alpha, beta, gamma, zulu)
