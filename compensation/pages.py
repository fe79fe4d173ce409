"""The customer's page of an operational event, ``/r/{token}/``: no login, readable without JavaScript.

Opening it (GET, HEAD) records nothing, since mail scanners open links; pressing a button (a POST of the form)
does, through :func:`compensation.services.events.event_choose`. The token in the URL is the customer's
proof, so the form needs no CSRF cookie (a forged POST would need the token). Answers: 200, or a page in
words with 400 (a value that is no button of the page), 404 (a bad token), 409 (another button after a
choice; an option no longer available), 410 (closed unused) or 429 (``THROTTLE_CUSTOMER_PAGE_RATE`` per
address). Every answer is private: never cached, never indexed, and the URL's token never sent on as a Referer.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from compensation.errors import ApplicationError, Conflict, ErrorCode, Gone, InvalidInput, NotFound
from compensation.http import ResilientAnonRateThrottle
from compensation.services.events import CALL, NONE, ChoicePage, event_choose, event_page

TEMPLATE = "compensation/event_page.html"
CHOICE_MAX = 16  # longer than any button's value; a longer one is refused without being read further


class CustomerPageThrottle(ResilientAnonRateThrottle):
    """Per address, a limit of its own (THROTTLE_CUSTOMER_PAGE_RATE): a customer opens a page a few times; a
    scanner guessing tokens is stopped long before it could find one."""

    scope = "customer_page"

    def get_rate(self) -> str:
        return settings.THROTTLE_CUSTOMER_PAGE_RATE

    def get_cache_key(self, request: Any, view: Any) -> str:
        # Per address even with a staff session cookie in the browser (DRF's anonymous throttle skips those).
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def _private(response: HttpResponse) -> HttpResponse:
    """Never cached, never indexed, and the token in the URL never sent on as a Referer."""
    add_never_cache_headers(response)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return _private(render(request, TEMPLATE, context, status=status))


def _problem(
    request: HttpRequest, *, title: str, message: str, status: int, page: ChoicePage | None = None
) -> HttpResponse:
    return _page(request, {"problem": {"title": title, "message": message}, "page": page}, status)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def event_choice_page(request: HttpRequest, token: str) -> HttpResponse:
    throttle = CustomerPageThrottle()
    if not throttle.allow_request(request, None):
        wait = math.ceil(throttle.wait())
        response = _problem(
            request,
            title="Too many requests",
            message=f"This page was opened too often from your connection. Please wait {wait} seconds and "
            "try again; nothing was recorded.",
            status=429,
        )
        response["Retry-After"] = str(wait)
        return response
    choice = ""
    try:
        if request.method == "POST":
            choice = request.POST.get("choice", "")[: CHOICE_MAX + 1].strip().lower()
            page = event_choose(token=token, choice=choice if len(choice) <= CHOICE_MAX else "")
            return _page(request, {"page": page, "just": choice})
        page = event_page(token)
    except ApplicationError as error:
        return _refused(request, token=token, error=error, choice=choice)
    return _page(request, {"page": page, "picked": _picked(page, request.GET.get("option", ""))})


def _picked(page: ChoicePage, option: str) -> str:
    """The button the e-mail's link was for (``?option=b``), to focus; nothing once the choice is made."""
    option = option[:CHOICE_MAX].strip().lower()
    if page.submission is not None or page.expired or option not in {*page.labels, NONE, CALL}:
        return ""
    if option == CALL and page.call_requested:
        return ""
    return option


def _refused(request: HttpRequest, *, token: str, error: ApplicationError, choice: str) -> HttpResponse:
    """A page in words for what the service refused; under a 400 or a 409, the page as it stands, so the
    customer sees what was chosen, or can press another button (an option just run out marked as such)."""
    if isinstance(error, NotFound):
        return _problem(request, title="We could not find this link", message=error.message, status=404)
    if isinstance(error, Gone):
        return _problem(request, title="This choice has closed", message=error.message, status=410)
    page = _page_now(token)
    if isinstance(error, InvalidInput):
        message = f"Nothing was recorded. {' '.join(error.errors.get('choice', [])) or error.message}"
        return _problem(request, title="Please use one of the buttons", message=message, status=400, page=page)
    if isinstance(error, Conflict) and error.code == ErrorCode.BUDGET_EXHAUSTED:
        if page is not None and page.submission is None and choice in page.labels:
            page.unavailable.add(choice)
        return _problem(
            request, title="This option is no longer available", message=error.message, status=409, page=page
        )
    if isinstance(error, Conflict) and error.code == ErrorCode.OUTCOME_EXISTS:
        return _problem(request, title="You have already chosen", message=error.message, status=409, page=page)
    return _problem(request, title="We could not do that", message=error.message, status=409, page=page)


def _page_now(token: str) -> ChoicePage | None:
    try:
        return event_page(token)
    except ApplicationError:
        return None
