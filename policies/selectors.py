"""Reads of policy data that other code depends on."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache

from policies.models import PolicyRevision

logger = logging.getLogger("policies")

REVISION_CACHE_KEY = "policies:revision"
# The mirror expires quickly, so a lost or out-of-order cache write can leave a process
# on an old index for a few seconds at most, never until the next edit.
REVISION_CACHE_SECONDS = 5


def cache_is_shared() -> bool:
    """True when the cache is one store for every process (Redis), not per process."""
    return "locmem" not in settings.CACHES["default"]["BACKEND"].lower()


def policy_revision_current() -> int:
    """The global policy revision: one cache read, the database on a miss.

    With a per-process cache the number is read from the database, since a
    local mirror would miss other processes' changes.
    """
    if cache_is_shared():
        try:
            number = cache.get(REVISION_CACHE_KEY)
            if number is not None:
                return int(number)
        except Exception:
            logger.warning("cache unavailable; reading the policy revision from the database", exc_info=True)
            return _revision_from_database()
        number = _revision_from_database()
        try:
            # add, not set: never overwrite a newer number a writer mirrored meanwhile
            cache.add(REVISION_CACHE_KEY, number, timeout=REVISION_CACHE_SECONDS)
        except Exception:
            logger.warning("could not mirror policy revision to the cache", exc_info=True)
        return number
    return _revision_from_database()


def _revision_from_database() -> int:
    return PolicyRevision.objects.filter(pk=1).values_list("number", flat=True).first() or 0
