"""Django's deploy checks for CSRF and clickjacking, for the middleware subclasses this project uses.

Django's ``security.W002`` and ``W003`` look for
``django.middleware.clickjacking.XFrameOptionsMiddleware`` and
``django.middleware.csrf.CsrfViewMiddleware`` in ``MIDDLEWARE`` by their
path, and find neither: this project uses subclasses of both
(``recovery_project/middleware.py``, which skips them for token API calls).
So do the cookie and header checks that run only when those paths are
found (``W016``, ``W019``). Those two are silenced in settings; these checks
look for any subclass instead and then make the dependent checks too, so
removing the middleware still warns.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string


def _installed(base: type) -> bool:
    for path in settings.MIDDLEWARE:
        try:
            middleware = import_string(path)
        except ImportError:
            continue  # Django reports a middleware that does not import when it loads it
        if isinstance(middleware, type) and issubclass(middleware, base):
            return True
    return False


@register(Tags.security, deploy=True)
def browser_middleware_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not _installed(XFrameOptionsMiddleware):
        messages.append(
            CheckWarning(
                "No XFrameOptionsMiddleware (or subclass) in MIDDLEWARE: pages are served without X-Frame-Options.",
                id="recovery.W002",
            )
        )
    elif settings.X_FRAME_OPTIONS != "DENY":
        messages.append(CheckWarning("X_FRAME_OPTIONS is not 'DENY'.", id="recovery.W019"))
    if not _installed(CsrfViewMiddleware):
        messages.append(
            CheckWarning(
                "No CsrfViewMiddleware (or subclass) in MIDDLEWARE: forms and sessions lack CSRF protection.",
                id="recovery.W003",
            )
        )
    elif not (settings.CSRF_COOKIE_SECURE or settings.CSRF_USE_SESSIONS):
        messages.append(
            CheckWarning(
                "CSRF_COOKIE_SECURE is off: the CSRF cookie may be sent over plain HTTP (set SECURE_SSL_REDIRECT).",
                id="recovery.W016",
            )
        )
    return messages
