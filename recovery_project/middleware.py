"""Django's browser middleware, skipped for API calls that carry a token.

Sessions, CSRF, authentication from the session, messages and clickjacking
protection serve the admin and the browsable API, whose users a cookie
identifies. A call to ``/api/`` with ``Authorization: Token …`` is identified
by the token alone: DRF tries token authentication first, and once the
header names the token scheme it either authenticates with it or answers
401, never falling back to the session. Such a call reads no cookie, so
there is nothing for CSRF to protect (a cross-site page cannot set that
header without a CORS preflight this service does not grant); it renders no
admin page with messages; and a browser never sends it for a framed page, so
``X-Frame-Options`` has nothing to guard. Loading the session, checking the
CSRF cookie and setting ``Vary: Cookie`` for it was cost without effect.

Each class here is Django's own with one condition in front: for a token API
call it passes the request straight on (and the CSRF check in
``process_view`` does nothing); for everything else (the admin, the
browsable API with a session, the docs, the feedback links) it is exactly
Django's middleware. Subclasses, not a wrapper around the five, so Django's
own handler still registers their hooks and the admin's system checks
still find them in ``MIDDLEWARE``.

tests/test_middleware.py pins both sides: a session without a token still
gets CSRF protection on unsafe methods; a token call gets no session, cookie
or ``Vary: Cookie``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, csrf
from rest_framework.authentication import TokenAuthentication, get_authorization_header

API_PREFIX = "/api/"
SCHEME = TokenAuthentication.keyword.lower().encode()  # compared without case, as DRF does


def token_api_request(request: HttpRequest) -> bool:
    """A call to the REST API whose ``Authorization`` header names the token scheme."""
    if not request.path_info.startswith(API_PREFIX):
        return False
    words = get_authorization_header(request).split()  # DRF's reading: bytes, split on ASCII whitespace
    return bool(words) and words[0].lower() == SCHEME


class _SkippedForTokenApiCalls:
    get_response: Callable[[HttpRequest], Any]

    def __call__(self, request: HttpRequest) -> Any:
        if token_api_request(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_SkippedForTokenApiCalls, sessions.SessionMiddleware):
    pass


class CsrfViewMiddleware(_SkippedForTokenApiCalls, csrf.CsrfViewMiddleware):
    def process_view(
        self, request: HttpRequest, callback: Any, callback_args: Any, callback_kwargs: Any
    ) -> HttpResponseBase | None:
        if token_api_request(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationMiddleware(_SkippedForTokenApiCalls, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_SkippedForTokenApiCalls, messages.MessageMiddleware):
    pass


class XFrameOptionsMiddleware(_SkippedForTokenApiCalls, clickjacking.XFrameOptionsMiddleware):
    pass
