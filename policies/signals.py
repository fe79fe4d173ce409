"""Any save or delete of what the engine compiles moves the global revision.

Signals rather than service calls, so that no path (admin, pack import, shell,
a later bulk tool that uses ``save()``) can change policies and leave every
process serving a stale index.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from policies.models import Category, OfferTemplate, Perk, Policy, RemedyTemplate
from policies.services import policy_revision_bump

WATCHED = (Category, Perk, Policy, OfferTemplate, RemedyTemplate)


def _bump(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):  # loaddata: the revision row itself may not exist yet
        return
    policy_revision_bump()


for model in WATCHED:
    post_save.connect(_bump, sender=model, dispatch_uid=f"policy-revision-save-{model.__name__}")
    post_delete.connect(_bump, sender=model, dispatch_uid=f"policy-revision-delete-{model.__name__}")


@receiver(m2m_changed, sender=Policy.categories.through, dispatch_uid="policy-revision-categories")
def _bump_on_categories(sender: Any, action: str, pk_set: set | None = None, **kwargs: Any) -> None:
    # Adding links that already exist sends post_add with an empty pk_set: nothing changed.
    if action == "post_clear" or (action in {"post_add", "post_remove"} and pk_set):
        policy_revision_bump()
