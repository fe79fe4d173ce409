"""The console's pages: login and logout, and the agents' page (the managers' queue is beside, in escalations).

The agents' page calls what the REST API calls, with the same rules: ``offer_set_input_validate`` and
``offer_set_create`` for options (``POST /api/v1/offer-sets/``), ``OutcomeInputSerializer`` and ``outcome_submit``
for the outcome (``POST /api/v1/offer-sets/{id}/outcome/``), ``offer_set_visible_to`` for what a user may see.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget
from rest_framework import serializers

from compensation.authority import user_authority
from compensation.errors import ApplicationError, InvalidInput, NotFound
from compensation.http import CustomerLookupThrottle
from compensation.models import OfferSet, OutcomeSubmission, Remedy
from compensation.roles import Role, user_has_role
from compensation.selectors import (
    customer_by_external_id,
    offer_set_submission,
    offer_set_visible_to,
    offer_sets_of_customer,
    outcome_submission_visible_to,
    remedies_of_offer_set,
)
from compensation.serializers import OutcomeInputSerializer, offer_set_input_validate, offer_set_payload
from compensation.services.idempotency import run_once
from compensation.services.offer_sets import OfferSetCreated, offer_set_create
from compensation.services.outcomes import DECLINED, outcome_submit
from console.access import agents_and_managers
from console.formats import money
from console.incident import (
    FAULTS,
    FIELDS,
    HINTS,
    TIERS,
    errors_by_field,
    form_values,
    offer_set_input,
)
from policies.index import policy_index_get

# How often the outcome's status is asked for again: at once while it is being recorded, now and then while a
# manager decides; never once it is final.
POLL_RECORDING = "every 1s"
POLL_APPROVAL = "every 5s"

# The incident form's key (a random UUID in a hidden field), kept as the REST API keeps an Idempotency-Key.
FORM_KEY_SCOPE = "console:offer-sets:create"


class ConsoleLoginView(auth_views.LoginView):
    """Session login (django-axes counts failures and locks out, as for the admin)."""

    template_name = "console/login.html"
    redirect_authenticated_user = True
    next_page = "console:home"


class ConsoleLogoutView(auth_views.LogoutView):
    next_page = "console:login"


# --- What the templates show --------------------------------------------------------------------


def _form_key(posted: Any) -> str:
    """The posted form key if it is a UUID (as the form renders it), else a new one."""
    try:
        return str(UUID(str(posted)))
    except ValueError:
        return str(uuid4())


def _form_context(
    values: dict[str, Any], errors: dict[str, list[str]], other: list[str], *, form_key: str = ""
) -> dict[str, Any]:
    """The incident form: per field its id, label, value, hint and messages, tied together for assistive
    technology (``aria-describedby``, ``aria-invalid``); the first field with a message takes the focus.
    ``form_key``: the hidden key that makes the same request, posted again, show the same set (a new one by
    default)."""
    categories = sorted(policy_index_get().categories.values(), key=lambda category: category.name.lower())
    first_error = next((field.name for field in FIELDS if field.name in errors), None)
    fields = {}
    for field in FIELDS:
        field_id = f"id_{field.name}"
        hint = HINTS.get(field.name, "").format(currency=settings.DEFAULT_CURRENCY)
        described = [f"{field_id}-hint"] if hint else []
        if field.name in errors:
            described.append(f"{field_id}-error")
        fields[field.name] = {
            "id": field_id,
            "name": field.name,
            "label": field.label,
            "value": values[field.name],
            "hint": hint,
            "errors": errors.get(field.name, []),
            "describedby": " ".join(described),
            "first": field.name == first_error,
        }
    return {
        "form_key": form_key or str(uuid4()),
        "fields": fields,
        "values": values,
        "other_errors": other,
        "categories": [(category.slug, category.name) for category in categories],
        "tiers": TIERS,
        "faults": FAULTS,
    }


def _results_context(offer_set: OfferSet, payload: dict[str, Any], *, now: Any) -> dict[str, Any]:
    """The set as the API shows it (``offer_set_payload``), with money in words for reading aloud."""
    currency = offer_set.incident.currency
    options = [{**option, "cost": money(option["estimated_cost"], option["currency"])} for option in payload["options"]]
    remedy = [{**item, "cost": money(item["estimated_cost"], item["currency"])} for item in payload["remedy"]]
    outcome = payload["outcome"]
    chosen = outcome["choice"] if outcome and outcome["status"] != OutcomeSubmission.Status.REJECTED else None
    return {
        "offer_set": offer_set,
        "payload": payload,
        "options": options,
        "remedy": remedy,
        "order_value": money(payload["incident"]["order_value"], currency),
        "category_name": offer_set.incident.category.name,
        "escalation": payload["escalation"],
        "chosen": chosen,
        "open": offer_set.expires_at > now,
    }


STATUS_WORDS = {
    OutcomeSubmission.Status.PENDING: "Accepted, being recorded",
    OutcomeSubmission.Status.AWAITING_APPROVAL: "Waiting for approval",
    OutcomeSubmission.Status.RECORDED: "Recorded",
    OutcomeSubmission.Status.REJECTED: "Rejected by a manager",
    OutcomeSubmission.Status.FAILED: "Not recorded: recording failed",
}


REMEDY_WORDS = {
    Remedy.Status.PENDING: "The fix is given once the choice is recorded",
    Remedy.Status.AWAITING_APPROVAL: "The fix waits for a manager's approval",
    Remedy.Status.GIVEN: "The fix was given",
    Remedy.Status.REJECTED: "The fix was refused by a manager",
}


def _fix_state(statuses: list[tuple[str, str]]) -> dict[str, str]:
    """Where the fix stands after a choice was posted, in words, from its items' (title, status); one sentence
    when every item stands alike, else one per item."""
    if not statuses:
        return {}
    kinds = {status for _, status in statuses}
    if len(kinds) == 1:
        (status,) = kinds
        return {"status": status, "words": f"{REMEDY_WORDS[status]}."}
    words = " ".join(f"{title}: {REMEDY_WORDS[status].removeprefix('The fix ')}." for title, status in statuses)
    awaiting = Remedy.Status.AWAITING_APPROVAL in kinds
    return {"status": Remedy.Status.AWAITING_APPROVAL if awaiting else "mixed", "words": words}


def _record_context(
    offer_set_id: Any,
    submission: OutcomeSubmission | None,
    *,
    open_: bool,
    expires_at: Any = None,
    error: str = "",
    field_errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
    focus: bool = False,
    remedies: list[Remedy] | None = None,
    oob: bool = False,
) -> dict[str, Any]:
    """The record area: the form while a choice may be posted, else the outcome's status in words, and where
    the fix stands (``remedies``, the incident's items, read when a choice was posted). ``oob``: the fix card's
    state is sent along, out of band (the record area alone is being drawn again)."""
    status = submission.status if submission is not None else None
    fix = _fix_state([(remedy.title, remedy.status) for remedy in remedies or []]) if submission is not None else {}
    live = status is not None and status != OutcomeSubmission.Status.REJECTED
    coupon = None
    if status == OutcomeSubmission.Status.RECORDED:
        outcome = getattr(submission, "outcome", None)
        coupon = getattr(outcome, "coupon", None) if outcome is not None else None
    poll = {OutcomeSubmission.Status.PENDING: POLL_RECORDING, OutcomeSubmission.Status.AWAITING_APPROVAL: POLL_APPROVAL}
    return {
        "offer_set_id": offer_set_id,
        "submission": submission,
        "status": status,
        "status_words": STATUS_WORDS.get(status, ""),
        "live": live,
        "declined": submission is not None and submission.choice == DECLINED,
        "coupon": coupon,
        "rejection": submission.approval.resolution
        if status == OutcomeSubmission.Status.REJECTED and submission.approval_id
        else "",
        # A fix waiting for a manager keeps the status asked for, until it is given or refused.
        "poll": poll.get(status, "")
        or (POLL_APPROVAL if fix.get("status") == Remedy.Status.AWAITING_APPROVAL and live else ""),
        "fix": fix,
        "oob": oob and bool(fix),
        # After a refused approval the agent may choose again, even once the set has expired (as the API allows).
        "can_record": not live and (open_ or status == OutcomeSubmission.Status.REJECTED),
        "expires_at": expires_at,
        "error": error,
        "field_errors": field_errors or {},
        "values": values or {"choice": "", "satisfaction": "", "notes": ""},
        "focus": focus,
    }


def _visible_set(user: Any, offer_set_id: UUID) -> OfferSet:
    offer_set = offer_set_visible_to(user).filter(pk=offer_set_id).first()
    if offer_set is None:
        raise Http404("No offer set of yours has this id.")
    return offer_set


def _expiry_of_visible_set(user: Any, offer_set_id: UUID) -> Any:
    """When the set expires, if the user may see it; else 404 (one query, none of the set's prefetches)."""
    visible = offer_set_visible_to(user).prefetch_related(None).filter(pk=offer_set_id)
    expires_at = visible.values_list("expires_at", flat=True).first()
    if expires_at is None:
        raise Http404("No offer set of yours has this id.")
    return expires_at


def _stored_context(user: Any, offer_set: OfferSet) -> dict[str, Any]:
    """A stored set, as ``GET /api/v1/offer-sets/{id}/`` shows it, and its record area."""
    now = timezone.now()
    submission = offer_set_submission(offer_set)
    offers = list(offer_set.offers.all())
    payload = offer_set_payload(
        offer_set,
        offers,
        offer_set.escalation,
        submission=submission,
        remedies=list(offer_set.incident.remedies.all()),
        approval_limit=user_authority(user).per_option,
    )
    context = _results_context(offer_set, payload, now=now)
    context["record"] = _record_context(
        offer_set.pk,
        submission,
        open_=context["open"],
        expires_at=offer_set.expires_at,
        remedies=list(offer_set.incident.remedies.all()),
    )
    return context


def _ticket_note(offer_set: OfferSet, posted: dict[str, Any]) -> str:
    """When the ticket's incident was already recorded (the API reuses it, API.md on ``external_ref``) and the
    posted incident differs from it: that the set is for the recorded incident, and the changes were not used."""
    incident = offer_set.incident
    if not incident.external_ref:
        return ""
    changed = (
        posted["category"].id != incident.category_id
        or posted["severity"] != incident.severity
        or posted["fault"] != incident.fault
        or posted["correctable"] != incident.correctable
        or posted["order_value"] != incident.order_value
        or posted.get("description", "") != incident.description
    )
    if not changed:
        return ""
    return (
        f"Ticket {incident.external_ref} is an incident already recorded ({incident.category.name.lower()}, "
        f"severity {incident.severity}, order value {money(incident.order_value, incident.currency)}): "
        "these options are for it; your changes to it were not used."
    )


def _created_context(user: Any, created: OfferSetCreated) -> dict[str, Any]:
    """A set just made, as ``POST /api/v1/offer-sets/`` answers it, and its record area."""
    payload = offer_set_payload(
        created.offer_set,
        created.offers,
        created.escalation,
        remedies=created.remedies,
        approval_limit=user_authority(user).per_option,
    )
    results = _results_context(created.offer_set, payload, now=timezone.now())
    results["record"] = _record_context(
        created.offer_set.pk, None, open_=results["open"], expires_at=created.offer_set.expires_at
    )
    return results


# --- The agents' page -------------------------------------------------------------------------------


@agents_and_managers
@require_GET
def console_home(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "console/home.html", _form_context(form_values(), {}, []))


@agents_and_managers
@require_POST
def options_get(request: HttpRequest) -> HttpResponse:
    """The form's incident, posted as ``POST /api/v1/offer-sets/`` would post it: the options (the results
    fragment), or the form again with each message at its field (400).

    The form's key works as the API's ``Idempotency-Key``: the same key with the same values (a double click,
    asking again) shows the set made the first time, and makes no new incident or set; changed values make a
    new set, and the form gets a new key."""
    values = form_values(request.POST)
    form_key = _form_key(request.POST.get("form_key"))
    body = offer_set_input(values)
    index = policy_index_get()
    try:
        data = offer_set_input_validate(body, index=index)
    except serializers.ValidationError as exc:
        by_field, other = errors_by_field(exc.detail)
        context = _form_context(values, by_field, other, form_key=form_key)
        if not request.htmx:
            return TemplateResponse(request, "console/home.html", context, status=400)
        response = TemplateResponse(request, "console/_form_invalid.html", context, status=400)
        return reswap(retarget(response, "#incident-form"), "outerHTML")

    def ask(key: str | None) -> Any:
        return run_once(
            user=request.user,
            scope=FORM_KEY_SCOPE,
            key=key,
            data=body,
            handle=lambda: offer_set_create(
                user=request.user, index=index, customer=data["customer"], incident=data["incident"]
            ),
            body_of=lambda created: {"offer_set": str(created.offer_set.pk)},
        )

    once = ask(form_key)
    if once.value is None:  # the same request as before: its set, as it is now, unless it has expired since
        offer_set = _visible_set(request.user, UUID(once.body["offer_set"]))
        if offer_set.expires_at <= timezone.now():
            once = ask(None)  # asking again for an expired set is a new request, under a new key
    if once.value is None:
        results = _stored_context(request.user, offer_set)
        results["same_request"] = True
    else:
        offer_set = once.value.offer_set
        results = _created_context(request.user, once.value)
    results["ticket_note"] = _ticket_note(offer_set, data["incident"])
    results["focus"] = True
    form = _form_context(values, {}, [], form_key=once.key)
    if not request.htmx:
        return TemplateResponse(request, "console/home.html", {**form, "results": results})
    # The options, and out of band the form without its old messages and the customer's recent sets with this one.
    customer = _customer_context(request.user, offer_set.customer.external_id, fill=False)
    return TemplateResponse(
        request, "console/_options.html", {**form, "results": results, "customer_panel": customer, "oob": True}
    )


@agents_and_managers
@require_GET
def customer_lookup(request: HttpRequest) -> HttpResponse:
    """The stored customer whose ID is exactly the one typed (to fill the form) and their recent offer sets
    this user may see; nothing for any other string."""
    throttle = CustomerLookupThrottle()
    if not throttle.allow_request(request, None):
        return TemplateResponse(
            request,
            "console/_customer.html",
            {"throttled": f"Too many lookups: try again in {int(throttle.wait())} s."},
            status=429,
        )
    external_id = request.GET.get("customer_id", "").strip()
    return TemplateResponse(request, "console/_customer.html", _customer_context(request.user, external_id))


def _customer_context(user: Any, external_id: str, *, fill: bool = True) -> dict[str, Any]:
    customer = customer_by_external_id(external_id)
    context: dict[str, Any] = {
        "external_id": external_id,
        "customer": customer,
        "recent_mine_only": not user_has_role(user, Role.MANAGER),
    }
    if customer is None:
        return context
    if fill:
        context["fill"] = {
            "name": customer.name,
            "email": customer.email,
            "tier": customer.tier,
            "lifetime_value": str(customer.lifetime_value),
            "interests": ", ".join(customer.interests or []),
        }
    context["recent"] = [
        {
            "offer_set": offer_set,
            "category": offer_set.incident.category.name,
            "outcome": _recent_outcome_words(offer_set),
        }
        for offer_set in offer_sets_of_customer(user, customer)
    ]
    return context


def _customer_panel_on_home(request: HttpRequest, offer_set_id: UUID) -> dict[str, Any] | None:
    """On the agents' page (where the stored customer's panel is), the panel again with this set's outcome as
    it now stands, to be swapped in out of band with the status; elsewhere nothing."""
    if not request.htmx or urlsplit(request.htmx.current_url or "").path != reverse("console:home"):
        return None
    sets = offer_set_visible_to(request.user).prefetch_related(None).filter(pk=offer_set_id)
    external_id = sets.values_list("customer__external_id", flat=True).first()
    return None if external_id is None else _customer_context(request.user, external_id, fill=False)


def _recent_outcome_words(offer_set: OfferSet) -> str:
    submission = offer_set_submission(offer_set)
    if submission is None:
        return "no outcome yet" if offer_set.expires_at > timezone.now() else "expired without an outcome"
    choice = "declined" if submission.choice == DECLINED else f"option {submission.choice}"
    return f"{choice}: {STATUS_WORDS[submission.status].lower()}"


@agents_and_managers
@require_GET
def offer_set_page(request: HttpRequest, offer_set_id: UUID) -> HttpResponse:
    """One offer set the user may see (an agent: their own; any other is a 404), recordable while open."""
    offer_set = _visible_set(request.user, offer_set_id)
    results = _stored_context(request.user, offer_set)
    results["on_its_page"] = True
    return TemplateResponse(request, "console/offer_set.html", {"results": results})


@agents_and_managers
@require_POST
def outcome_record(request: HttpRequest, offer_set_id: UUID) -> HttpResponse:
    """The customer's choice, posted as ``POST /api/v1/offer-sets/{id}/outcome/`` would post it: the record area
    with its status in words; the same choice again is answered as before and recorded once."""
    values = {name: request.POST.get(name, "") for name in ("choice", "satisfaction", "notes")}
    body: dict[str, Any] = {"choice": values["choice"]}
    if values["satisfaction"].strip():
        body["satisfaction"] = values["satisfaction"]
    if values["notes"]:
        body["notes"] = values["notes"]
    serializer = OutcomeInputSerializer(data=body)
    error = ""
    field_errors: dict[str, list[str]] = {}
    status = 200
    if not body["choice"].strip():
        field_errors["choice"] = ["Choose an option (a, b, c) or Customer declined first."]
    elif not serializer.is_valid():
        field_errors = {name: [str(m) for m in messages] for name, messages in serializer.errors.items()}
    else:
        try:
            outcome_submit(user=request.user, offer_set_id=offer_set_id, **serializer.validated_data)
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except InvalidInput as exc:
            field_errors = {name: [str(m) for m in messages] for name, messages in exc.errors.items()}
        except ApplicationError as exc:  # expired, budget_exhausted, outcome_exists: the API's words
            error = exc.message
            status = 409
    if field_errors:
        status = 400
    expires_at = _expiry_of_visible_set(request.user, offer_set_id)  # another agent's set: 404, whatever was posted
    # Read again: recording may already have happened (a worker is fast; eager tasks run at the commit).
    submission = outcome_submission_visible_to(request.user, offer_set_id)
    context = _record_context(
        offer_set_id,
        submission,
        open_=expires_at > timezone.now(),
        expires_at=expires_at,
        error=error,
        field_errors=field_errors,
        values=values,
        focus=True,
        remedies=remedies_of_offer_set(offer_set_id) if submission is not None else None,
        oob=bool(request.htmx),
    )
    if submission is not None:
        context["customer_panel"] = _customer_panel_on_home(request, offer_set_id)
    if not request.htmx:
        page = _stored_context(request.user, _visible_set(request.user, offer_set_id))
        page["record"] = context
        page["on_its_page"] = True
        return TemplateResponse(request, "console/offer_set.html", {"results": page}, status=status)
    return TemplateResponse(request, "console/_record.html", {"record": context}, status=status)


@agents_and_managers
@require_GET
def outcome_status(request: HttpRequest, offer_set_id: UUID) -> HttpResponse:
    """The record area again, for polling: the outcome's status in words (one query while it changes)."""
    submission = outcome_submission_visible_to(request.user, offer_set_id)
    if submission is None:
        expires_at = _expiry_of_visible_set(request.user, offer_set_id)  # 404 unless the user may see it
        context = _record_context(offer_set_id, None, open_=expires_at > timezone.now(), expires_at=expires_at)
    else:
        # A refused approval lets the agent choose again: the set's expiry only matters then.
        context = _record_context(
            offer_set_id, submission, open_=False, remedies=remedies_of_offer_set(offer_set_id), oob=True
        )
        context["customer_panel"] = _customer_panel_on_home(request, offer_set_id)
    return TemplateResponse(request, "console/_record.html", {"record": context})
