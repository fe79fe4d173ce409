"""HTTP pieces that keep misuse and outages from becoming 500s: request bodies, parsing, client addresses, rates."""

from __future__ import annotations

import io
import ipaddress
import logging
import math
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, UserRateThrottle

logger = logging.getLogger("compensation")

API_PREFIX = "/api/"
BODILESS_METHODS = {"GET", "HEAD", "OPTIONS"}  # their bodies mean nothing here, and nothing reads them


# --- Request bodies ---------------------------------------------------------------------------


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``, with any parameters (``; charset=utf-8``)."""
    media_type, _ = parse_header_parameters(content_type)
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _sized(response: HttpResponse) -> HttpResponse:
    response["Content-Length"] = str(len(response.content))  # answered before CommonMiddleware would say it
    return response


def _error(status: int, detail: str, code: str) -> HttpResponse:
    return _sized(JsonResponse({"detail": detail, "code": code}, status=status))


def _too_large(api: bool, limit: int) -> HttpResponse:
    if not api:
        text = "The request body is too large."
        return _sized(HttpResponse(text, status=413, content_type="text/plain; charset=utf-8"))
    from compensation.exceptions import PayloadTooLarge  # it imports DRF's views, which import this module's parser

    error = PayloadTooLarge(limit)
    return _error(error.status_code, str(error.detail), error.default_code)


def _read_at_most(stream: Any, size: int) -> bytes:
    """Up to ``size`` bytes of a stream that ends where the body does (a WSGI server's ``input_terminated``)."""
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# Pages that take a larger body than DATA_UPLOAD_MAX_MEMORY_SIZE: URL name -> the setting that limits their
# upload. An admin page's body may hold the upload and the page's form fields (FORM_FIELDS_ALLOWANCE bytes);
# an API endpoint's body is the JSON alone.
LARGER_BODIES = {
    "admin:policies_policy_simulate": "SIMULATION_PACK_MAX_BYTES",
    "compensation:event-list": "EVENT_MAX_BODY_BYTES",
    "compensation:event-customers": "EVENT_MAX_BODY_BYTES",
    "admin:compensation_event_upload": "EVENT_MAX_BODY_BYTES",
}
FORM_FIELDS_ALLOWANCE = 64 * 1024


def larger_body_limit(request: HttpRequest) -> int:
    """The body limit of a page in :data:`LARGER_BODIES` at the request's path; 0 elsewhere.

    Asked only for a body over the general limit (or of unknown length), so ordinary requests never resolve
    a URL here."""
    try:
        name = resolve(request.path_info).view_name
    except Resolver404:
        return 0
    setting = LARGER_BODIES.get(name)
    if setting is None:
        return 0
    allowance = 0 if request.path_info.startswith(API_PREFIX) else FORM_FIELDS_ALLOWANCE
    return getattr(settings, setting) + allowance


def request_body_refusal(request: HttpRequest) -> HttpResponse | None:
    """The answer to a request whose body is refused before a byte of it is read, or None to go on.

    Everywhere: a ``Content-Length`` over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is
    413 (Django's own limit counts a multipart body's fields but not its
    files, which it spools to disk), except on the pages of
    :data:`LARGER_BODIES` (admin uploads, the events' endpoints), which take a body up to their own limit. Under
    ``/api/``, which takes JSON only, also:

    - a body of unknown length (``Transfer-Encoding: chunked``; Django reads
      such a body as empty) is read here, at most the limit and one byte
      more: over the limit is 413, else the view reads what was read. That
      needs a server that ends the stream with the body (gunicorn says so with
      ``wsgi.input_terminated``); on another it is 411 ``length_required``.
      Malformed chunks are 400;
    - a non-empty body that is not JSON (``application/json`` or
      ``application/*+json``) is 415, so no form or multipart parser ever
      runs, whether or not the view reads the body. An empty body passes
      whatever its ``Content-Type``: actions without input keep working. So
      does the body of a ``GET``, ``HEAD`` or ``OPTIONS``, which nothing reads
      (the schema declares 415 for the methods that take a body).
    """
    api = request.path_info.startswith(API_PREFIX)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    meta = request.META
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0  # as Django reads it: no body
    if length > limit:
        limit = max(limit, larger_body_limit(request))  # the page's own, when it has one
        if length > limit:
            return _too_large(api, limit)
    if not api:
        return None
    if not meta.get("CONTENT_LENGTH") and meta.get("HTTP_TRANSFER_ENCODING"):
        if not meta.get("wsgi.input_terminated"):
            return _error(
                411, "A body of unknown length needs a Content-Length header on this server.", "length_required"
            )
        limit = max(limit, larger_body_limit(request))
        try:
            body = _read_at_most(meta["wsgi.input"], limit + 1)
        except Exception:  # the server's own errors: malformed chunks (gunicorn's ParseException), a lost client
            logger.info("unreadable chunked request body", exc_info=True)
            return _error(400, "The request body could not be read (malformed chunked encoding).", "bad_request")
        if len(body) > limit:
            return _too_large(api, limit)
        length = len(body)
        meta["CONTENT_LENGTH"] = str(length)
        request._stream = LimitedStream(io.BytesIO(body), length)  # type: ignore[attr-defined]
    content_type = meta.get("CONTENT_TYPE", "")
    if length and request.method not in BODILESS_METHODS and not is_json_media_type(content_type):
        return _error(
            415,
            f'Unsupported media type "{content_type}" in request: send JSON (Content-Type: application/json).',
            "unsupported_media_type",
        )
    return None


class RequestBodyMiddleware:
    """Answers :func:`request_body_refusal`'s refusals before any other middleware or view reads the body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return request_body_refusal(request) or self.get_response(request)


class JSONContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, where every JSON media type (``application/*+json`` too) goes to the JSON parser."""

    def select_parser(self, request: Any, parsers: list[BaseParser]) -> BaseParser | None:
        parser = super().select_parser(request, parsers)
        if parser is None and is_json_media_type(request.content_type or ""):
            parser = next((p for p in parsers if isinstance(p, JSONParser)), None)
        return parser

    def filter_renderers(self, renderers: list[Any], format: str) -> list[Any]:
        """``?format=`` naming a format the endpoint does not offer is a 400 that names those it does (DRF
        answers 404, as if the URL named nothing). Decided before authentication, as DRF decides it."""
        chosen = [renderer for renderer in renderers if renderer.format == format]
        if not chosen:
            offered = ", ".join(sorted({renderer.format for renderer in renderers}))
            raise ValidationError({"format": [f"{format!r} is not a format this endpoint offers ({offered})."]})
        return chosen


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


# --- Client addresses ---------------------------------------------------------------------------


def client_address(request: HttpRequest) -> str | None:
    """The client's address as the rate limits see it, for the login lockout (``AXES_CLIENT_IP_CALLABLE``).

    DRF's reading (``BaseThrottle.get_ident``): ``REMOTE_ADDR``, or with
    ``NUM_PROXIES`` = n > 0 the n-th ``X-Forwarded-For`` entry from the right
    (the address the outermost trusted proxy saw). An entry that is not an
    address (a header a client wrote, reaching the process past the proxies)
    falls back to ``REMOTE_ADDR``: the lockout stores it in an address column.
    """
    for candidate in (BaseThrottle().get_ident(request), request.META.get("REMOTE_ADDR")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None  # no address at all (a Unix socket): the lockout keys on the username alone


# --- Rates ------------------------------------------------------------------------------------


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

    def get_ident(self, request: Any) -> str:
        # As the lockout reads it: a forwarded "address" that is none (junk a client wrote) is not a bucket of its own.
        return client_address(request) or super().get_ident(request)


class CustomerLookupThrottle(ResilientUserRateThrottle):
    """The console's exact-ID customer lookup, per user (CONSOLE_LOOKUP_RATE): enough for calls, too few to
    guess customers' IDs in bulk."""

    scope = "console_lookup"

    def get_rate(self) -> str:
        return settings.CONSOLE_LOOKUP_RATE


class LargerBodyMixin:
    """For the API views of :data:`LARGER_BODIES`: the body is read here, once the user is authenticated and
    allowed, so Django's own ``DATA_UPLOAD_MAX_MEMORY_SIZE`` check in ``HttpRequest.body`` (which DRF's JSON
    parser goes through) does not refuse it; :class:`RequestBodyMiddleware` has already held it to the
    view's own limit."""

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        raw = request._request
        if not hasattr(raw, "_body") and not raw._read_started:
            raw._body = raw.read()
