"""A policy pack as a draft: the index the engine would read had the pack been imported, nothing written.

The pack is planned by the importer itself (``packs.pack_plan``: the same validation, slug matching and
"an unchanged policy keeps its version"), and ``--replace`` is not implied: live policies the pack does
not name stay as they are. Rows an import would create get the ids the database would most likely give
them (after the highest in use), so ties in ranking break as they would after the import; offers keep
their identity by position, as the importer keeps them (``packs._write_rows``), so what ranking learned
about them stays with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Max

from policies.index import (
    CompiledCategory,
    CompiledOffer,
    CompiledPerk,
    CompiledPolicy,
    PolicyIndex,
    compiled_offer,
    compiled_perk,
    compiled_policy,
    index_assemble,
)
from policies.models import Category, OfferTemplate, Perk, Policy, RemedyTemplate
from policies.packs import pack_plan
from policies.serialization import policy_to_pack

DRAFT_REVISION = -1  # never a live revision: a draft's index is never the process's cached one


@dataclass(frozen=True)
class Draft:
    """The live index with a pack applied, and what the pack changes."""

    index: PolicyIndex
    changed: frozenset[str]  # slugs of the policies the pack creates or changes
    changed_ids: frozenset[int]  # their ids (as the draft index has them)
    categories_changed: frozenset[int]  # ids of existing categories whose name or activity the pack changes
    perks_changed: bool  # the pack creates or changes a perk


def _ids(model: type) -> Iterator[int]:
    """Ids after the highest in use, as the database would give new rows."""
    start = (model.objects.aggregate(top=Max("pk"))["top"] or 0) + 1
    while True:
        yield start
        start += 1


def draft_index(document: Any, *, live: PolicyIndex) -> Draft:
    """``live`` with the pack ``document`` applied as an import would apply it (``--replace`` not implied).

    Raises ``packs.PackError`` with the import's own errors when the pack would not import. Reads the
    rows the pack names; writes nothing.
    """
    plan = pack_plan(document)

    categories: dict[str, CompiledCategory] = dict(live.categories)
    category_ids: dict[str, int] = dict(Category.objects.values_list("slug", "pk"))
    new_category = _ids(Category)
    categories_changed: set[int] = set()
    for category, changed in plan.categories:
        if category.pk is None:
            category_ids[category.slug] = next(new_category)
        elif changed:
            categories_changed.add(category.pk)
        if category.active:
            categories[category.slug] = CompiledCategory(category_ids[category.slug], category.slug, category.name)
        else:
            categories.pop(category.slug, None)

    perks: dict[str, CompiledPerk] = {perk.slug: perk for perk in live.perks}
    new_perk = _ids(Perk)
    for perk, _changed in plan.perks:
        if perk.active:
            perks[perk.slug] = compiled_perk(perk, id=perk.pk or next(new_perk))
        else:
            perks.pop(perk.slug, None)

    policies: dict[int, CompiledPolicy] = dict(live.policies)
    named = [item.instance.slug for item in plan.policies]
    stored = {
        p.slug: p for p in Policy.objects.filter(slug__in=named).prefetch_related("categories", "offers", "remedies")
    }
    new_policy, new_offer, new_remedy = _ids(Policy), _ids(OfferTemplate), _ids(RemedyTemplate)
    changed: set[str] = set()
    changed_ids: set[int] = set()
    for item in plan.policies:
        current = stored.get(item.instance.slug)
        if current is not None and current.version > 0 and policy_to_pack(current) == item.snapshot:
            continue  # the import would leave it as it is
        policy_id = current.pk if current is not None else next(new_policy)
        changed.add(item.instance.slug)
        changed_ids.add(policy_id)
        policies.pop(policy_id, None)
        if not item.instance.active:
            continue
        offers = _by_position(item.offers, current.offers.all() if current else (), new_offer)
        remedies = _by_position(item.remedies, current.remedies.all() if current else (), new_remedy)
        policies[policy_id] = compiled_policy(
            item.instance,
            id=policy_id,
            version=(current.version if current else 0) + 1,
            category_ids={category_ids[slug] for slug in item.categories},
            offers=offers,
            remedies=remedies,
        )

    index = index_assemble(
        DRAFT_REVISION,
        categories=categories.values(),
        policies=policies.values(),
        perks=sorted(perks.values(), key=lambda perk: perk.id),
    )
    return Draft(
        index=index,
        changed=frozenset(changed),
        changed_ids=frozenset(changed_ids),
        categories_changed=frozenset(categories_changed),
        perks_changed=any(changed for _perk, changed in plan.perks),
    )


def _by_position(planned: list, stored: Any, new_ids: Iterator[int]) -> list[CompiledOffer]:
    """The planned offers (or remedies) with the ids an import gives them: the stored row at the same position,
    else a new one."""
    existing = sorted(stored, key=lambda o: (o.order, o.pk))
    return [
        compiled_offer(row, id=existing[position].pk if position < len(existing) else next(new_ids))
        for position, row in enumerate(planned)
    ]
