"""Policies, perks and categories as plain data in the policy-pack format.

The same function writes export files and the snapshots kept with each policy
version, so "export then import gives the same policies" and "an import that
changes nothing makes no new version" are one comparison.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from policies.conditions import CONDITIONS, condition_to_pack
from policies.models import Category, OfferFields, OfferTemplate, Perk, Policy, RemedyTemplate
from policies.money import money

PackDict = dict[str, Any]


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


def snapshot_changes(before: PackDict | None, after: PackDict) -> list[str]:
    """Human-readable differences, one ``path: old → new`` line each."""
    if before is None:
        return ["created"]
    old, new = _flatten(before), _flatten(after)
    lines = []
    for path in sorted(old.keys() | new.keys(), key=_path_key):
        before, after = old.get(path, _MISSING), new.get(path, _MISSING)
        if before == after or ((before is _MISSING or after is _MISSING) and [] in (before, after)):
            continue  # a list that was empty, or is now: its items' lines say what changed
        lines.append(f"{path}: {_show(before)} → {_show(after)}")
    return lines


_MISSING = object()
_MONEY = re.compile(r"-?\d+\.\d{2}")


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    if value is None:
        return "empty"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and (value == "" or not _MONEY.fullmatch(value)):
        return repr(value)  # quoted, so an empty or changed text is visible
    return str(value)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        for index, value in enumerate(data):
            flat.update(_flatten(value, f"{prefix}[{index}]"))
    else:
        flat[prefix] = data
    return flat


def _path_key(path: str) -> tuple:
    parts = path.replace("[", ".").replace("]", "").split(".")
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts)
