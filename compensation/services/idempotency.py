"""Idempotency keys without HTTP: the same key and the same request give the stored answer once more.

The REST API's ``Idempotency-Key`` (``compensation/idempotency.py``) and the console's per-form key share this
table and these rules: a key is kept 24 hours, scoped to the user and the operation, and stored in the same
transaction as the work it answers for, so a retry after a crash finds both or neither.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from django.db import IntegrityError, transaction
from django.utils import timezone

from compensation.models import IdempotencyRecord

KEEP = timedelta(hours=24)
MAX_LENGTH = 255

T = TypeVar("T")


def request_fingerprint(data: object) -> str:
    """What makes two requests the same: their data, canonically serialised and hashed."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_record_fresh(*, user: Any, scope: str, key: str, now: datetime) -> IdempotencyRecord | None:
    """The record kept under this key, if younger than ``KEEP``; an older one is deleted (the key is free)."""
    record = IdempotencyRecord.objects.filter(user=user, scope=scope, key=key).first()
    if record is not None and record.created_at < now - KEEP:
        record.delete()
        return None
    return record


@dataclass(frozen=True)
class Once(Generic[T]):
    key: str  # the key the answer is kept under (a new one when the posted key was used for other data)
    body: dict[str, Any]  # the answer as stored
    replayed: bool  # True: the same request was answered before, and ``value`` is None
    value: T | None


def run_once(
    *,
    user: Any,
    scope: str,
    key: str | None,
    data: object,
    handle: Callable[[], T],
    body_of: Callable[[T], dict[str, Any]],
    now: datetime | None = None,
) -> Once[T]:
    """Run ``handle`` once per (user, scope, key, data): the same key with the same data again gives the body
    stored the first time. Unlike the REST API (409), a key already used for other data, or none, or an invalid
    one, is replaced by a new random key and the work is done (a form's key after its values changed)."""
    now = now or timezone.now()
    fingerprint = request_fingerprint(data)
    key = (key or "").strip()
    if key and len(key) <= MAX_LENGTH:
        record = idempotency_record_fresh(user=user, scope=scope, key=key, now=now)
        if record is not None:
            if record.fingerprint == fingerprint:
                return Once(key=key, body=record.body, replayed=True, value=None)
            key = str(uuid.uuid4())
    else:
        key = str(uuid.uuid4())
    for _attempt in range(2):
        try:
            with transaction.atomic():
                value = handle()
                body = body_of(value)
                IdempotencyRecord.objects.create(
                    user=user, scope=scope, key=key, fingerprint=fingerprint, status_code=200, body=body, created_at=now
                )
        except IntegrityError:
            # The same key raced us and won: if it was the same request, what it stored is the answer; else the
            # work is done again under a new key.
            record = IdempotencyRecord.objects.filter(user=user, scope=scope, key=key).first()
            if record is None:
                raise
            if record.fingerprint == fingerprint:
                return Once(key=key, body=record.body, replayed=True, value=None)
            key = str(uuid.uuid4())
            continue
        return Once(key=key, body=body, replayed=False, value=value)
    raise IntegrityError(f"no free idempotency key for {scope}")  # two random UUIDs collided: cannot happen
