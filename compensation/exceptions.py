"""Errors are always JSON: ``{"field": ["message"]}`` or ``{"detail": "...", "code": "..."}``."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from compensation import errors

logger = logging.getLogger("compensation")


class PayloadTooLarge(APIException):
    status_code = 413
    default_code = "request_too_large"

    def __init__(self, limit: int | None = None) -> None:
        super().__init__(f"The request body is larger than {limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")


class DatabaseUnavailable(APIException):
    """The database cannot be reached, dropped the connection, or gave up on the statement (a timeout, a
    deadlock): try again shortly. What was asked may or may not have been done (a connection lost just after
    a commit), so an outcome is sent again with its ``Idempotency-Key``."""

    status_code = 503
    default_code = "unavailable"
    default_detail = "The database is unavailable right now; try again in a few seconds."


# OperationalError: refused or lost connections, server shutdown, timeouts; InterfaceError: a connection
# already closed under us. Both mean "try again", never a bug in the request.
DATABASE_DOWN = (OperationalError, InterfaceError)


RETRY_AFTER_SECONDS = 5  # a restart or a failover takes seconds; clients should not hammer a database coming back


def database_unavailable_headers() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


# The one place domain errors become HTTP: the first class the error is an instance of, the base class last.
HTTP_STATUS: dict[type[errors.ApplicationError], int] = {
    errors.InvalidInput: 400,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.TooMany: 429,
    errors.ApplicationError: 400,
}


def _status_of(exc: errors.ApplicationError) -> int:
    return next(status for kind, status in HTTP_STATUS.items() if isinstance(exc, kind))


def application_error_response(exc: errors.ApplicationError) -> Response:
    if isinstance(exc, errors.InvalidInput):
        return Response(exc.errors, status=400)
    return Response({"detail": exc.message, "code": str(exc.code)}, status=_status_of(exc))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, errors.ApplicationError):
        set_rollback()
        return application_error_response(exc)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, DATABASE_DOWN):
        logger.warning("database unavailable: %s: %s", type(exc).__name__, str(exc).strip()[:300])
        exc = DatabaseUnavailable()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, DatabaseUnavailable):
        for name, value in database_unavailable_headers().items():
            response[name] = value
    data = response.data
    if isinstance(data, dict) and "detail" in data and "code" not in data:
        # DRF answers Django's Http404 and PermissionDenied as NotFound and PermissionDenied.
        if isinstance(exc, Http404):
            exc = exceptions.NotFound()
        elif isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied()
        code = exc.get_codes() if isinstance(exc, APIException) else None
        data["code"] = code if isinstance(code, str) else getattr(exc, "default_code", "error")
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    from django.views.defaults import page_not_found

    if _is_api(request):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    """Django's last resort, still inside the ``except`` of the error: a database outage is a 503 here too
    (raised outside a DRF view, say by middleware), on API paths and pages alike."""
    from django.views.defaults import server_error

    if isinstance(sys.exc_info()[1], DATABASE_DOWN):
        error = DatabaseUnavailable()
        if _is_api(request):
            body = {"detail": str(error.detail), "code": error.default_code}
            return JsonResponse(body, status=error.status_code, headers=database_unavailable_headers())
        return HttpResponse(
            str(error.detail),
            status=error.status_code,
            headers=database_unavailable_headers(),
            content_type="text/plain",
        )
    if _is_api(request):
        return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
    return server_error(request)


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    from django.views.defaults import bad_request

    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            error = PayloadTooLarge()
            return JsonResponse({"detail": str(error.detail), "code": error.default_code}, status=error.status_code)
        return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)
    return bad_request(request, exception)
