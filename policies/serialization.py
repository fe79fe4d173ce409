"""Policies, perks and categories as plain data in the policy-pack format.

The same function writes export files and the snapshots kept with each policy
version, so "export then import gives the same policies" and "an import that
changes nothing makes no new version" are one comparison. What changed between
two snapshots, in words, is ``snapshot_changes`` (``policies.history``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from policies.conditions import CONDITIONS, condition_to_pack
from policies.history import snapshot_changes
from policies.models import Category, OfferFields, OfferTemplate, Perk, Policy, RemedyTemplate
from policies.money import money

PackDict = dict[str, Any]

__all__ = ["PackDict", "pack_export", "policy_to_pack", "snapshot_changes"]  # the change lines live in history.py


def _date(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def category_to_pack(category: Category) -> PackDict:
    return {
        "slug": category.slug,
        "name": category.name,
        "description": category.description,
        "active": category.active,
    }


def perk_to_pack(perk: Perk) -> PackDict:
    return {
        "slug": perk.slug,
        "name": perk.name,
        "description": perk.description,
        "tags": list(perk.tags),
        "cost": money(perk.cost),
        "active": perk.active,
    }


def offer_to_pack(offer: OfferFields) -> PackDict:
    return {
        "kind": offer.kind,
        "title": offer.title,
        "message": offer.message,
        "value": money(offer.value),
        "max_amount": money(offer.max_amount),
        "cost": money(offer.cost),
        "expires_in_days": offer.expires_in_days,
        "requires_approval": offer.requires_approval,
    }


def policy_to_pack(
    policy: Policy,
    *,
    categories: Iterable[str] | None = None,
    offers: Iterable[OfferTemplate] | None = None,
    remedies: Iterable[RemedyTemplate] | None = None,
) -> PackDict:
    """The policy with its conditions, budget, remedy and offers; no ids, no version.

    ``categories`` (slugs), ``offers`` and ``remedies`` stand in for the stored
    relations, so an unsaved policy planned by the pack importer compares with
    a saved one.
    """
    categories = sorted(set(categories if categories is not None else (c.slug for c in policy.categories.all())))
    if offers is None:
        offers = sorted(policy.offers.all(), key=lambda o: (o.order, o.pk or 0))
    if remedies is None:
        remedies = sorted(policy.remedies.all(), key=lambda o: (o.order, o.pk or 0))
    return {
        "slug": policy.slug,
        "name": policy.name,
        "description": policy.description,
        "active": policy.active,
        "priority": policy.priority,
        "placement": policy.placement,
        "valid_from": _date(policy.valid_from),
        "valid_until": _date(policy.valid_until),
        "conditions": {
            "categories": categories,
            **{c.name: condition_to_pack(c, getattr(policy, c.name)) for c in CONDITIONS},
        },
        "escalate": policy.escalate,
        "generosity": {
            "per_severity": money(policy.generosity_per_severity),
            "per_repeat": money(policy.generosity_per_repeat),
            "per_1000_lifetime_value": money(policy.generosity_per_1000_lifetime_value),
            "max_multiplier": money(policy.generosity_max_multiplier),
        },
        "budget": {
            "monthly_cap": money(policy.monthly_cap),
            "per_customer_cap_30d": money(policy.per_customer_cap_30d),
        },
        "remedy": [offer_to_pack(remedy) for remedy in remedies],
        "offers": [offer_to_pack(offer) for offer in offers],
    }


def pack_export() -> PackDict:
    """Every category, perk and policy of the database, in a stable order."""
    return {
        "categories": [category_to_pack(c) for c in Category.objects.order_by("slug")],
        "perks": [perk_to_pack(p) for p in Perk.objects.order_by("slug")],
        "policies": [
            policy_to_pack(p)
            for p in Policy.objects.prefetch_related("categories", "offers", "remedies").order_by("slug")
        ],
    }
