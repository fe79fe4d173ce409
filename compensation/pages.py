"""The customer's page of an operational event, ``/r/{token}/``: no login, readable without JavaScript.

Opening it (GET) records nothing, since mail scanners open links; pressing a button (a POST of the form)
does, through :func:`compensation.services.events.event_choose`. The token in the URL is the customer's
proof, so the form needs no CSRF cookie (a forged POST would need the token). Answers: 200, or a page in
words with 404 (a bad token), 409 (another button after a choice; an option no longer available),
410 (closed unused) or 429 (``THROTTLE_CUSTOMER_PAGE_RATE`` per address).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from compensation.errors import ApplicationError, BudgetExhausted, Conflict, Gone, NotFound
from compensation.http import ResilientAnonRateThrottle
from compensation.services.events import CALL, NONE, ChoicePage, event_choose, event_link_row, event_page

TEMPLATE = "compensation/event_page.html"
LABELS = ("a", "b", "c")


class CustomerPageThrottle(ResilientAnonRateThrottle):
    """Per address, a limit of its own (THROTTLE_CUSTOMER_PAGE_RATE): a customer opens a page a few times; a
    scanner guessing tokens is stopped long before it could find one."""

    scope = "customer_page"

    def get_rate(self) -> str:
        return settings.THROTTLE_CUSTOMER_PAGE_RATE


def _private(response: HttpResponse) -> HttpResponse:
    """Never cached, never indexed, and the token in the URL never sent on as a Referer."""
    add_never_cache_headers(response)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return _private(render(request, TEMPLATE, context, status=status))


def _problem(request: HttpRequest, *, title: str, message: str, status: int, page: ChoicePage | None = None):
    return _page(request, {"problem": {"title": title, "message": message}, "page": page}, status)


PROBLEMS: tuple[tuple[type[ApplicationError], int, str], ...] = (
    (NotFound, 404, "We could not find this link"),
    (Gone, 410, "This choice has closed"),
    (BudgetExhausted, 409, "This option is no longer available"),
    (Conflict, 409, "You have already chosen"),
)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def event_choice_page(request: HttpRequest, token: str) -> HttpResponse:
    throttle = CustomerPageThrottle()
    if not throttle.allow_request(request, None):
        response = _problem(
            request,
            title="Too many requests",
            message="Please wait a minute and try again.",
            status=429,
        )
        response["Retry-After"] = str(int(throttle.wait()))
        return response
    picked = request.GET.get("option", "").strip().lower()
    choice = ""
    try:
        if request.method == "POST":
            choice = request.POST.get("choice", "").strip().lower()
            if choice not in (*LABELS, NONE, CALL):
                return _problem(request, title="Choose one of the buttons", message="Nothing was recorded.", status=400)
            page = event_choose(token=token, choice=choice)
            return _page(request, {"page": page, "just": choice, "picked": ""})
        page = event_page(token)
    except ApplicationError as error:
        for kind, status, title in PROBLEMS:
            if isinstance(error, kind):
                context_page = _page_after(token, error, choice)
                return _problem(request, title=title, message=error.message, status=status, page=context_page)
        raise
    return _page(request, {"page": page, "picked": picked if picked in (*LABELS, NONE, CALL) else ""})


def _page_after(token: str, error: ApplicationError, choice: str) -> ChoicePage | None:
    """The page as it stands, to show under a 409: what was chosen, or the options still available (the one
    whose budget just ran out among those that are not)."""
    if not isinstance(error, Conflict):
        return None
    try:
        page = event_page(token, row=event_link_row(token))
    except ApplicationError:
        return None
    if isinstance(error, BudgetExhausted) and page.submission is None:
        page.unavailable.add(choice)
    return page
