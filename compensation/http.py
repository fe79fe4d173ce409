"""REST framework pieces that keep misuse and outages from becoming 500s."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
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


# One window's count, atomically: open the window if none is open (a counter that expires when it closes),
# count the request, and say how long the window has left. A key left without an expiry (written by
# something else) is given one rather than counting forever.
_WINDOW_LUA = """
redis.call('SET', KEYS[1], 0, 'PX', ARGV[1], 'NX')
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


def window_count(backend: BaseCache, key: str, *, duration: int, now: float) -> tuple[int, float]:
    """Count a request in ``key``'s window; the requests counted in it (this one too) and its seconds left.

    A window opens with the first request after the last one closed and lasts
    ``duration`` seconds. On Redis this is one round trip: a script
    (``EVALSHA``) that opens, counts and reads the window atomically, through
    the cache's own client and connection pool. Other caches (LocMem in
    development and the tests without Redis) read and write a
    ``(closes_at, count)`` pair instead: not atomic, which is fine for one
    process's memory.
    """
    if isinstance(backend, RedisCache):
        script = getattr(backend, "_window_script", None)
        if script is None:  # registered once per cache object; redis-py loads it again if Redis lost it
            script = backend._window_script = backend._cache.get_client(write=True).register_script(_WINDOW_LUA)
        count, left_ms = script(keys=[backend.make_and_validate_key(key)], args=[duration * 1000])
        return count, left_ms / 1000
    window = backend.get(key)
    closes_at, count = window if window is not None and window[0] > now else (now + duration, 0)
    count += 1
    backend.set(key, (closes_at, count), math.ceil(closes_at - now))
    return count, closes_at - now


class _FixedWindow:
    """DRF's rate throttles with a counter per window instead of a list of timestamps.

    DRF's cache throttle reads and writes the whole request history, two round
    trips and a list as long as the rate, on every request; this is one round
    trip to a small script (:func:`window_count`). Same settings, same
    429 with ``Retry-After``: the seconds until the window closes, when the
    count starts again. The price of counting by window: a client may fit its
    whole allowance at the end of one window and again at the start of the
    next, twice the rate over a short stretch, never more.
    """

    # Not DRF's key: its timestamp lists and these counters must not meet while old and new processes
    # share one Redis during a deploy (each would fail on the other's value and let requests through).
    cache_format = "throttle_%(scope)s_%(ident)s:window"
    num_requests: int
    duration: int
    rate: str | None
    timer: Callable[[], float]

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if key is None:
            return True
        # The backend itself, not DRF's ``cache`` attribute (a proxy that hides which backend it is).
        count, self._wait = window_count(caches["default"], key, duration=self.duration, now=self.timer())
        return count <= self.num_requests

    def wait(self) -> float:
        return max(1.0, self._wait)


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


class ResilientUserRateThrottle(_Resilient, _FixedWindow, UserRateThrottle):
    """Per-user rate limit (THROTTLE_USER_RATE)."""


class ResilientAnonRateThrottle(_Resilient, _FixedWindow, AnonRateThrottle):
    """Per-address rate limit for the no-login endpoints, the feedback links (THROTTLE_ANON_RATE)."""
