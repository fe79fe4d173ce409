"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger("compensation")


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process serves; touches nothing else."""
    return JsonResponse({"status": "ok"})


def check_database() -> str | None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"
        # The log has the driver's words (host, port); the unauthenticated probe names only the kind of error.
        logger.warning("readyz: database: %s: %s", type(exc).__name__, str(exc).strip()[:300])
        return type(exc).__name__
    return None


def check_broker() -> str | None:
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        logger.warning("readyz: broker: %s: %s", type(exc).__name__, str(exc).strip()[:300])
        return type(exc).__name__
    return None


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database (and the broker, if configured) answer; else 503 naming what failed."""
    checks = {"database": check_database(), "broker": check_broker() if settings.REDIS_URL else None}
    report = {}
    for name, problem in checks.items():
        if name == "broker" and not settings.REDIS_URL:
            report[name] = "not configured (tasks run eagerly)"
        else:
            report[name] = "ok" if problem is None else f"unavailable: {problem}"
    ready = all(problem is None for problem in checks.values())
    if not ready:
        logger.warning("not ready: %s", report)
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": report}, status=200 if ready else 503)
