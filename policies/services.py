"""Writes to policies: versions, activation, duplication, the global revision.

The admin, the pack importer and anything later save policies through these
functions, so a policy is validated by its models and versioned in one way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import F

from policies.models import OfferTemplate, Policy, PolicyRevision, PolicyVersion, RemedyTemplate
from policies.selectors import REVISION_CACHE_KEY, REVISION_CACHE_SECONDS, cache_is_shared
from policies.serialization import policy_to_pack, snapshot_changes

logger = logging.getLogger("policies")


def policy_revision_bump() -> None:
    """Move the global revision so every process rebuilds its policy index.

    Runs inside the writer's transaction; the cache mirror is refreshed only
    after commit, from the committed number, so a reader never caches a
    number older than the data it will see.
    """
    if not PolicyRevision.objects.filter(pk=1).update(number=F("number") + 1):
        PolicyRevision.objects.get_or_create(pk=1, defaults={"number": 1})
    if cache_is_shared():
        # Drop the mirror now, so readers in this transaction go to the database;
        # other processes may re-add the committed number until ours commits.
        try:
            cache.delete(REVISION_CACHE_KEY)
        except Exception:
            logger.warning("could not drop the cached policy revision", exc_info=True)
    # One mirror per transaction is enough, however many rows it saves (an import saves thousands).
    pending = getattr(transaction.get_connection(), "run_on_commit", [])
    if not any(entry[1] is _revision_mirror_to_cache for entry in pending):
        transaction.on_commit(_revision_mirror_to_cache)


def _revision_mirror_to_cache() -> None:
    if not cache_is_shared():
        return
    number = PolicyRevision.objects.filter(pk=1).values_list("number", flat=True).first() or 0
    try:
        current = cache.get(REVISION_CACHE_KEY)
        if current is None or int(current) < number:  # never move the mirror backwards
            cache.set(REVISION_CACHE_KEY, number, timeout=REVISION_CACHE_SECONDS)
    except Exception:  # the cache is a mirror: readers fall back to the database
        logger.warning("could not mirror policy revision %s to the cache", number, exc_info=True)


@transaction.atomic
def policy_version_record(
    *, policy: Policy, actor: AbstractBaseUser | None = None, reason: str = ""
) -> PolicyVersion | None:
    """Keep the policy's current state as a new version, if it changed.

    Call after the policy, its categories and its offers are saved. Returns
    the new version, or None when nothing changed since the last one.
    """
    Policy.objects.select_for_update().filter(pk=policy.pk).first()  # one writer per policy at a time
    fresh = Policy.objects.prefetch_related("categories", "offers", "remedies").get(pk=policy.pk)
    snapshot = policy_to_pack(fresh)
    last = fresh.versions.order_by("-number").first()
    if last is not None and last.snapshot == snapshot:
        return None
    number = (last.number if last else 0) + 1
    version = PolicyVersion.objects.create(
        policy=fresh,
        number=number,
        snapshot=snapshot,
        changes=snapshot_changes(last.snapshot if last else None, snapshot),
        reason=reason[:200],
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    Policy.objects.filter(pk=policy.pk).update(version=number)
    policy.version = number
    policy_revision_bump()
    return version


@transaction.atomic
def policy_set_active(
    *, policies: Iterable[Policy], active: bool, actor: AbstractBaseUser | None = None, reason: str = ""
) -> int:
    """Activate or deactivate policies; returns how many changed."""
    changed = 0
    for policy in policies:
        if policy.active == active:
            continue
        policy.active = active
        policy.save(update_fields=["active", "updated_at"])
        policy_version_record(policy=policy, actor=actor, reason=reason or ("activated" if active else "deactivated"))
        changed += 1
    return changed


def _free_slug(base: str) -> str:
    n = 1
    while True:
        suffix = "-copy" if n == 1 else f"-copy-{n}"
        candidate = base[: 64 - len(suffix)].rstrip("-_") + suffix
        if not Policy.objects.filter(slug=candidate).exists():
            return candidate
        n += 1


@transaction.atomic
def policy_duplicate(*, policy: Policy, actor: AbstractBaseUser | None = None) -> Policy:
    """An inactive copy with the same conditions and offers, to edit and then switch on."""
    categories = list(policy.categories.all())
    offers = list(policy.offers.all())
    remedies = list(policy.remedies.all())
    copy = Policy.objects.get(pk=policy.pk)
    copy.pk = None
    copy.slug = _free_slug(policy.slug)
    copy.name = f"{policy.name} (copy)"[:120]
    copy.active = False
    copy.version = 0
    copy.save()
    copy.categories.set(categories)
    for row in [*offers, *remedies]:  # the same rows under the copy
        row.pk = None
        row.policy = copy
    OfferTemplate.objects.bulk_create(offers)
    RemedyTemplate.objects.bulk_create(remedies)
    policy_version_record(policy=copy, actor=actor, reason=f"duplicated from {policy.slug} v{policy.version}")
    return copy
