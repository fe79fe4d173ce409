"""REST framework pieces that keep misuse and outages from becoming 500s."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

logger = logging.getLogger("compensation")


class SafeJSONParser(JSONParser):
    """JSON, where a document nested too deep for Python is a 400 like any other malformed body."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply") from None


class _Resilient:
    """A rate limit that lets requests through while its cache (Redis) is unreachable.

    Throttling protects the service; it must not take it down with the cache.
    """

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except Exception:
            logger.warning("throttle cache unavailable; allowing the request", exc_info=True)
            return True


class ResilientUserRateThrottle(_Resilient, UserRateThrottle):
    """Per-user rate limit (THROTTLE_USER_RATE)."""


class ResilientAnonRateThrottle(_Resilient, AnonRateThrottle):
    """Per-address rate limit for the no-login endpoints, the feedback links (THROTTLE_ANON_RATE)."""
