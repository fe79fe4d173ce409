"""The managers' queue (``/console/escalations/``): open escalations, soonest due first, each with its incident,
the options its customer was shown and the actions that apply to it.

An action posts with htmx and gets back that escalation's card in its new state (or nothing, once the
escalation is closed and leaves the open list), with a status message in words for the page's live region.
Without JavaScript the forms post the same way and the page comes back whole. The actions call the services the
REST API calls (``compensation.services.escalations``), and their input is checked by the API's serializers,
so the limits and messages are the API's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from compensation.errors import ApplicationError
from compensation.models import Escalation, Offer, OutcomeSubmission
from compensation.selectors import escalations_open_queue
from compensation.serializers import RejectInputSerializer, ResolveInputSerializer
from compensation.services.escalations import (
    escalation_acknowledge,
    escalation_approve,
    escalation_reject,
    escalation_resolve,
)
from console.access import managers_only
from console.formats import money

PER_PAGE = 25
KIND = Escalation.Kind
STATUS = Escalation.Status
OPEN = (STATUS.OPEN, STATUS.ACKNOWLEDGED)


# --- Time left on the SLA, in words ------------------------------------------------------------------------


def span_words(seconds: float) -> str:
    """A span as a manager reads it at a glance: ``2 d 3 h``, ``3 h 20 min``, ``2 h``, ``20 min``, whole
    minutes (rounded down), or ``less than a minute``."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "less than a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [(days, "d"), (hours, "h")] if days else [(hours, "h"), (minutes, "min")]
    return " ".join(f"{amount} {unit}" for amount, unit in parts if amount)


def time_left_words(due_at: datetime, now: datetime) -> str:
    """``due in 3 h 20 min`` before ``due_at``, ``overdue by 2 h`` after it."""
    seconds = (due_at - now).total_seconds()
    if due_at < now:
        return f"overdue by {span_words(-seconds)}"
    return f"due in {span_words(seconds)}"


# --- What a card shows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionRow:
    offer: Offer
    cost: str
    chosen: bool
    waiting: bool  # the choice waits for this escalation's approval


@dataclass
class Card:
    escalation: Escalation
    overdue: bool
    time_left: str
    options: list[OptionRow]
    choice: OutcomeSubmission | None
    choice_words: str
    actions: tuple[str, ...]
    remedies: list[Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    message: str = ""
    order_value: str = ""


def actions_for(escalation: Escalation) -> tuple[str, ...]:
    """The actions that apply: an approval is approved or rejected, any other escalation resolved; an open one
    may first be acknowledged. A closed escalation has none."""
    if escalation.is_closed:
        return ()
    first = ("acknowledge",) if escalation.status == STATUS.OPEN else ()
    if escalation.kind == KIND.APPROVAL:
        return (*first, "approve", "reject")
    return (*first, "resolve")


def _choice_words(escalation: Escalation, choice: OutcomeSubmission | None) -> str:
    if escalation.offer_set_id is None:
        return ""
    if choice is None:
        return "The customer has not chosen yet."
    if choice.choice == "declined":
        return "The customer declined every option."
    if choice.status == OutcomeSubmission.Status.AWAITING_APPROVAL:
        waits = "this approval" if choice.approval_id == escalation.pk else "a manager's approval"
        return f"The customer chose option {choice.choice}; it waits for {waits}."
    return f"The customer chose option {choice.choice} ({choice.get_status_display().lower()})."


def card_of(escalation: Escalation, now: datetime, **extra: Any) -> Card:
    """A card for an escalation read with :func:`escalations_open_queue` (its prefetched rows)."""
    offer_set = escalation.offer_set
    choices = getattr(offer_set, "live_choices", []) if offer_set is not None else []
    choice = choices[0] if choices else None
    options = [
        OptionRow(
            offer=offer,
            cost=money(offer.estimated_cost, offer.currency),
            chosen=choice is not None and choice.choice == offer.label,
            waiting=choice is not None
            and choice.choice == offer.label
            and choice.status == OutcomeSubmission.Status.AWAITING_APPROVAL
            and choice.approval_id == escalation.pk,
        )
        for offer in (offer_set.offers.all() if offer_set is not None else [])
    ]
    return Card(
        escalation=escalation,
        overdue=escalation.is_overdue(now),
        time_left=time_left_words(escalation.due_at, now),
        options=options,
        choice=choice,
        choice_words=_choice_words(escalation, choice),
        actions=actions_for(escalation),
        order_value=money(escalation.incident.order_value, escalation.incident.currency),
        remedies=[
            {"remedy": r, "cost": money(r.estimated_cost, r.currency)}
            for r in getattr(escalation, "remedies_waiting", [])
        ],
        **extra,
    )


def _counts(now: datetime) -> dict[str, int]:
    return (
        escalations_open_queue().order_by().aggregate(total=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now)))
    )


def _open_card(escalation_id: int, now: datetime, **extra: Any) -> Card | None:
    escalation = escalations_open_queue().filter(pk=escalation_id).first()
    return None if escalation is None else card_of(escalation, now, **extra)


# --- The page -----------------------------------------------------------------------------------------


def _page(request: HttpRequest, *, now: datetime, status: int = 200, **focus: Any) -> TemplateResponse:
    """The queue; ``focus`` (``escalation_id`` with ``errors``, ``values``, ``message``) shows one card's
    errors, and ``status_message`` the page's status, after a post without htmx."""
    status_message = focus.pop("status_message", "")
    focus_id = focus.pop("escalation_id", None)
    page = Paginator(escalations_open_queue(), PER_PAGE).get_page(request.GET.get("page"))
    cards = [card_of(e, now, **(focus if e.pk == focus_id else {})) for e in page]
    context = {
        "cards": cards,
        "page": page,
        "counts": _counts(now),
        "status_message": status_message,
    }
    return TemplateResponse(request, "console/escalations.html", context, status=status)


@managers_only
@require_GET
def escalation_queue(request: HttpRequest) -> HttpResponse:
    return _page(request, now=timezone.now())


# --- The actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    done: str  # "approved"
    serializer: Any | None  # the API's input serializer, for the field it takes
    run: Callable[..., Escalation]
    after: str = ""  # said after a success


def _acknowledge(escalation_id: int, user: Any, now: datetime, data: dict[str, Any]) -> Escalation:
    return escalation_acknowledge(escalation_id=escalation_id, user=user, now=now)


def _resolve(escalation_id: int, user: Any, now: datetime, data: dict[str, Any]) -> Escalation:
    return escalation_resolve(escalation_id=escalation_id, user=user, resolution=data["resolution"], now=now)


def _approve(escalation_id: int, user: Any, now: datetime, data: dict[str, Any]) -> Escalation:
    return escalation_approve(escalation_id=escalation_id, user=user, now=now)


def _reject(escalation_id: int, user: Any, now: datetime, data: dict[str, Any]) -> Escalation:
    return escalation_reject(escalation_id=escalation_id, user=user, reason=data["reason"], now=now)


ACTIONS = {
    "acknowledge": Action("acknowledged", None, _acknowledge),
    "resolve": Action("resolved", ResolveInputSerializer, _resolve),
    "approve": Action("approved", None, _approve, after="what waited for it goes ahead"),
    "reject": Action("rejected", RejectInputSerializer, _reject, after="what waited for it is not given"),
}


def _answer(
    request: HttpRequest,
    *,
    escalation_id: int,
    now: datetime,
    status_message: str,
    status: int = 200,
    card_extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """After an action: for htmx, the card in its new state (none once closed: it leaves the list) with the
    status message and the counts out of band; without htmx, the whole page (errors) or a redirect to it."""
    card_extra = card_extra or {}
    if not request.htmx:
        if status >= 400:
            return _page(
                request,
                now=now,
                status=status,
                escalation_id=escalation_id,
                status_message=status_message,
                **card_extra,
            )
        messages.success(request, status_message)
        return redirect("console:escalations")
    card = _open_card(escalation_id, now, **card_extra)
    body = render_to_string(
        "console/escalations_answer.html",
        {"card": card, "status_message": status_message, "counts": _counts(now)},
        request=request,
    )
    return HttpResponse(body, status=status)


def _conflict(request: HttpRequest, escalation_id: int, now: datetime, message: str) -> HttpResponse:
    """A 409: the message in the card and in the page's status; nothing changed."""
    return _answer(
        request,
        escalation_id=escalation_id,
        now=now,
        status=409,
        status_message=message,
        card_extra={"message": message},
    )


@managers_only
@require_POST
def escalation_action(request: HttpRequest, escalation_id: int, action: str) -> HttpResponse:
    act = ACTIONS[action]
    now = timezone.now()
    number = f"Escalation #{escalation_id}"
    before = Escalation.objects.filter(pk=escalation_id).values_list("status", flat=True).first()
    if before is None:
        return _answer(
            request,
            escalation_id=escalation_id,
            now=now,
            status=404,
            status_message=f"{number} does not exist; nothing changed.",
        )

    data: dict[str, Any] = {}
    if act.serializer is not None:
        name = next(iter(act.serializer().fields))
        value = request.POST.get(name, "")
        serializer = act.serializer(data={name: value})
        if not serializer.is_valid():
            errors = {key: [str(m) for m in found] for key, found in serializer.errors.items()}
            return _answer(
                request,
                escalation_id=escalation_id,
                now=now,
                status=400,
                status_message=f"{number} not {act.done}: {name.capitalize()}: {' '.join(errors[name])}",
                card_extra={"errors": errors, "values": {name: value}},
            )
        data = dict(serializer.validated_data)

    try:
        escalation = act.run(escalation_id, request.user, now, data)
    except ApplicationError as error:
        return _conflict(request, escalation_id, now, f"{number} not {act.done}: {error.message}")

    by = escalation.assigned_to.get_username() if escalation.assigned_to_id else "nobody"
    # Closed before (the service changed nothing): said as a conflict, so a second click or tab knows.
    if escalation.is_closed and (before not in OPEN or escalation.resolved_at != now):
        message = f"{number} was already {escalation.get_status_display().lower()} by {by}; nothing changed."
        return _conflict(request, escalation_id, now, message)
    if action == "acknowledge":
        if before == STATUS.ACKNOWLEDGED or escalation.acknowledged_at != now:
            message = f"{number} was already acknowledged; it is assigned to {by}. Nothing changed."
        else:
            message = f"{number} acknowledged; it is assigned to {by}."
        return _answer(request, escalation_id=escalation_id, now=now, status_message=message)
    message = f"{number} {act.done}" + (f": {act.after}" if act.after else "") + ". It has left the open list."
    return _answer(request, escalation_id=escalation_id, now=now, status_message=message)
