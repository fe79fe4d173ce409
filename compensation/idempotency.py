"""``Idempotency-Key``: the same key and body replay the stored response; another body is 409.

Keys are kept 24 hours (the rules and the table are shared with the console's form keys,
``compensation/services/idempotency.py``) and scoped to the user and the operation. The response
is stored in the same transaction as the work it describes, so a retry after a
crash either finds both or neither.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from compensation.models import IdempotencyRecord
from compensation.services.idempotency import KEEP, MAX_LENGTH, request_fingerprint

HEADER = "Idempotency-Key"
# The header as the OpenAPI schema declares it (surrounding spaces are stripped before the length is checked).
IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH}


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This Idempotency-Key was already used with a different request body."
    default_code = "idempotency_key_reused"


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return Response(record.body, status=record.status_code, headers={"Idempotent-Replayed": "true"})


def idempotent(request: Request, scope: str, handle: Callable[[], Response], *, extra: dict | None = None) -> Response:
    """Run ``handle`` once per (user, scope, key); without the header, just run it.

    ``extra`` holds what besides the body makes the request what it is (query
    flags): the same key with different ``extra`` is a different request, 409.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return handle()
    key = key.strip()
    if not key or len(key) > MAX_LENGTH:
        raise ValidationError({HEADER: [f"must be 1 to {MAX_LENGTH} characters"]}, code="invalid")
    fingerprint = request_fingerprint({"body": request.data, **({"extra": extra} if extra else {})})
    now = timezone.now()
    record = IdempotencyRecord.objects.filter(user=request.user, scope=scope, key=key).first()
    if record is not None:
        if record.created_at >= now - KEEP:
            return _replay(record, fingerprint)
        record.delete()  # expired: the key is free again
    try:
        with transaction.atomic():
            response = handle()
            if 200 <= response.status_code < 300:
                IdempotencyRecord.objects.create(
                    user=request.user,
                    scope=scope,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=response.status_code,
                    body=response.data,
                    created_at=now,
                )
    except IntegrityError:
        # The same key raced us and won; what it stored is the answer.
        record = IdempotencyRecord.objects.filter(user=request.user, scope=scope, key=key).first()
        if record is None:
            raise
        return _replay(record, fingerprint)
    return response
