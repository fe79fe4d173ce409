"""Proactive recovery: an operational event reaches every affected customer first (API.md, v2).

``event_create`` stores the event and its customers' rows in one transaction and, after commit, sends the
processing task. ``event_work`` is that task's body: it holds the event for a while (a lease), and in
batches makes each customer's incident and offer set with the same code as an agent's request
(:func:`~compensation.services.offer_sets.offer_set_create`: engine, ranking and budgets), one transaction
per batch, then e-mails them one by one, paced by ``EVENT_EMAILS_PER_MINUTE``. A row is marked ``sending``
and committed before its e-mail goes, so an e-mail goes at most once: a worker killed mid-send leaves it
``sending``, and whoever takes the event up next counts it ``failed`` (re-sendable from the admin). The
remedy is given when the e-mail goes, in the transaction that marks it ``emailed``: the e-mail says it was
done. A task works for at most ``SLICE_SECONDS`` and then sends itself again, so a worker is never held
long and a cancelled event stops within one e-mail; the periodic ``events_resume`` takes up an event whose
worker died (its lease ran out) or whose task the broker lost.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Count, Exists, F, Max, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import salted_hmac

from compensation.errors import (
    BudgetExhausted,
    Conflict,
    ErrorCode,
    Gone,
    InvalidInput,
    NotFound,
    TooMany,
)
from compensation.models import (
    Customer,
    Event,
    EventCustomer,
    Offer,
    OfferSet,
    OutcomeSubmission,
    PolicyMonthSpend,
    Remedy,
)
from compensation.periods import day_start, local_date, month_start
from compensation.queue import EVENT_PROCESS, task_send
from compensation.selectors import MonthBudget
from compensation.services.escalations import OPEN_STATUSES, escalation_open_for_incident
from compensation.services.offer_sets import offer_set_create
from compensation.services.outcomes import DECLINED, outcome_submit
from policies.index import CompiledCategory, PolicyIndex, policy_index_get
from policies.models import Policy

logger = logging.getLogger("compensation")

MAX_PER_CALL = 10_000
BATCH = 100  # customers whose offer sets one transaction makes
SLICE_SECONDS = 40.0  # a task's work before it sends itself again: well under CELERY_TASK_SOFT_TIME_LIMIT (90 s)
LEASE = timedelta(minutes=2)  # a worker's hold on an event, renewed as it works
RENEW_SECONDS = 10.0  # how often the holder renews its lease (and learns whether it still holds it)
TOKEN_SALT = "recovery.event-choice"  # noqa: S105 - a salt, not a secret; the links' tokens are good for the customer page and nothing else
CUT_OFF = (
    "The e-mail was cut off (the worker stopped while sending); it may not have arrived. Re-send it from the admin."
)
CUSTOMER_FIELDS = ("name", "email", "tier", "lifetime_value", "interests")


class DailyLimitReached(TooMany):
    """More customers than ``EVENT_MAX_CUSTOMERS_PER_DAY`` for one manager today (HTTP 429)."""

    default_code = ErrorCode.EVENT_CUSTOMER_LIMIT


# --- Tokens ------------------------------------------------------------------------------------


def token_of(nonce: str) -> str:
    """The link's token: an HMAC of the row's random nonce under SECRET_KEY, so the database alone does not
    give the links away, and a re-sent e-mail carries the same link. It names nothing: no id, no date."""
    return salted_hmac(TOKEN_SALT, nonce, algorithm="sha256").hexdigest()[:43]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _nonce_and_hash() -> tuple[str, str]:
    nonce = secrets.token_hex(16)
    return nonce, token_hash(token_of(nonce))


# --- Creating --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventAdded:
    event: Event
    added: int  # customers added by this call (those already in the event are skipped)


def _daily_check(*, user: Any, adding: int, now: datetime) -> None:
    """Refuse past ``EVENT_MAX_CUSTOMERS_PER_DAY`` for this manager today (TIME_ZONE). The caller holds the
    user's row locked, so two posts at once cannot both pass."""
    limit = settings.EVENT_MAX_CUSTOMERS_PER_DAY
    since = day_start(local_date(now))
    today = EventCustomer.objects.filter(added_by=user, created_at__gte=since).count()
    if today + adding > limit:
        raise DailyLimitReached(
            f"{user.get_username()} has put {today} customers into events today; {adding} more would pass the "
            f"limit of {limit} a day (EVENT_MAX_CUSTOMERS_PER_DAY)."
        )


def _lock_user(user: Any) -> None:
    """Serialise one manager's event posts (the daily cap). ``FOR NO KEY UPDATE``: rows that point at the user
    (offer sets, submissions of their other events) can still be written meanwhile."""
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk", flat=True).first()


def _rows_add(*, event: Event, customers: Sequence[Mapping[str, Any]], user: Any, now: datetime) -> int:
    """Append these customers, none of them in the event yet (validated: external_ids distinct); how many."""
    start = (event.customers.aggregate(last=Max("position"))["last"] or 0) + 1
    rows = []
    for customer in customers:
        nonce, hashed = _nonce_and_hash()
        rows.append(
            EventCustomer(
                event=event,
                position=start + len(rows),
                external_id=customer["external_id"],
                data=_storable(customer),
                nonce=nonce,
                token_hash=hashed,
                added_by=user,
                created_at=now,
            )
        )
    EventCustomer.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _storable(customer: Mapping[str, Any]) -> dict[str, Any]:
    """A validated row as JSON (money as strings)."""
    return {key: str(value) if key in ("lifetime_value", "order_value") else value for key, value in customer.items()}


def event_create(*, user: Any, data: Mapping[str, Any], now: datetime | None = None) -> EventAdded:
    """Store the event and its customers (validated: :func:`compensation.serializers.event_input_validate`)
    and send the processing task after commit."""
    now = now or timezone.now()
    customers = data["customers"]
    with transaction.atomic():
        _lock_user(user)
        _daily_check(user=user, adding=len(customers), now=now)
        event = Event.objects.create(
            name=data["name"],
            category_id=data["category"].id,
            severity=data["severity"],
            fault=data["fault"],
            correctable=data["correctable"],
            description=data["description"],
            occurred_at=data.get("occurred_at") or now,
            created_by=user,
            created_at=now,
        )
        added = _rows_add(event=event, customers=customers, user=user, now=now)
        transaction.on_commit(lambda: event_enqueue(event.pk))
    return EventAdded(event=event, added=added)


def event_customers_add(
    *, user: Any, event_id: int, customers: Sequence[Mapping[str, Any]], now: datetime | None = None
) -> EventAdded:
    """Add customers to an event; those already in it are skipped. A cancelled event takes none (409)."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock_user(user)
        event = Event.objects.select_for_update().filter(pk=event_id).first()
        if event is None:
            raise NotFound("Not found.")
        if event.status == Event.Status.CANCELLED:
            raise Conflict(f"Event {event.pk} was cancelled; it takes no more customers.", ErrorCode.CONFLICT)
        known = _known(event, customers)
        new = [c for c in customers if c["external_id"] not in known]
        _daily_check(user=user, adding=len(new), now=now)  # counted against whoever adds them
        added = _rows_add(event=event, customers=new, user=user, now=now)
        if added and event.status == Event.Status.SENT:
            event.status = Event.Status.PROCESSING
            event.finished_at = None
            event.save(update_fields=["status", "finished_at"])
        if added:
            transaction.on_commit(lambda: event_enqueue(event.pk))
    return EventAdded(event=event, added=added)


def _known(event: Event, customers: Iterable[Mapping[str, Any]]) -> set[str]:
    ids = [c["external_id"] for c in customers]
    return set(event.customers.filter(external_id__in=ids).values_list("external_id", flat=True))


def event_enqueue(event_id: int, *, countdown: float | None = None) -> bool:
    """Send the processing task (to run ``countdown`` seconds from now: the pacing's wait); if the broker is
    down, ``events_resume`` sends it later."""
    return task_send(EVENT_PROCESS, event_id, countdown=countdown)


def event_cancel(*, event_id: int, user: Any, now: datetime | None = None) -> Event:
    """Stop what has not been sent: customers not e-mailed yet are ``cancelled``. One e-mail already being
    sent finishes. Cancelling a cancelled event is answered as before; a sent one is a 409."""
    now = now or timezone.now()
    with transaction.atomic():
        event = Event.objects.select_for_update().filter(pk=event_id).first()
        if event is None:
            raise NotFound("Not found.")
        if event.status == Event.Status.SENT:
            raise Conflict(f"Event {event.pk} was sent in full; there is nothing left to cancel.")
        if event.status == Event.Status.PROCESSING:
            event.status = Event.Status.CANCELLED
            event.cancelled_by = user
            event.finished_at = now
            event.save(update_fields=["status", "cancelled_by", "finished_at"])
            event.customers.filter(status__in=(EventCustomer.Status.QUEUED, EventCustomer.Status.READY)).update(
                status=EventCustomer.Status.CANCELLED
            )
    return event


# --- Figures -------------------------------------------------------------------------------


# API.md's figures, then ours: ``cancelled``, customers a cancel stopped before their e-mail.
FIGURES = ("total", "processed", "emailed", "chosen", "declined", "escalated", "failed", "no_options", "cancelled")


def event_figures(event_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Each event's figures, counted from its rows now (two queries for any number of events).

    ``processed``: customers whose incident and offer set are made; ``chosen`` / ``declined``: live outcome
    submissions (accepted, recorded or waiting for approval; a rejected one frees the choice again);
    ``escalated``: customers who asked to be called.
    """
    Status = EventCustomer.Status
    rows = (
        EventCustomer.objects.filter(event_id__in=event_ids)
        .values("event_id")
        .annotate(
            total=Count("pk"),
            processed=Count("pk", filter=Q(offer_set__isnull=False)),
            emailed=Count("pk", filter=Q(status=Status.EMAILED)),
            failed=Count("pk", filter=Q(status=Status.FAILED)),
            cancelled=Count("pk", filter=Q(status=Status.CANCELLED)),
            no_options=Count("pk", filter=Q(no_options=True)),
            escalated=Count("pk", filter=Q(escalation__isnull=False)),
        )
        .order_by()
    )
    figures = {pk: dict.fromkeys(FIGURES, 0) for pk in event_ids}
    for row in rows:
        figures[row.pop("event_id")].update(row)
    choices = (
        OutcomeSubmission.objects.filter(offer_set__event_customer__event_id__in=event_ids)
        .exclude(status=OutcomeSubmission.Status.REJECTED)
        .values(event_id=F("offer_set__event_customer__event_id"))
        .annotate(
            declined=Count("pk", filter=Q(choice="declined")),
            chosen=Count("pk", filter=~Q(choice="declined")),
        )
        .order_by()
    )
    for row in choices:
        figures[row.pop("event_id")].update(row)
    return figures


# --- The job ----------------------------------------------------------------------------------
#
# The lease is the ``lease_until`` its holder wrote: a worker renews, releases and sends only while the event
# still carries its own value, so one whose hold ran out (stalled, or presumed dead) and was taken over can
# do none of these under the new holder. Every e-mail is claimed by a conditional update that also requires
# the lease, so two workers never both send for one event, and each row is claimed once.


def _lease_take(event_id: int, now: datetime) -> datetime | None:
    """Hold the event for ``LEASE`` if it is processing and nobody holds it (or their hold ran out); returns
    the hold (the ``lease_until`` written), or None."""
    until = now + LEASE
    taken = (
        Event.objects.filter(pk=event_id, status=Event.Status.PROCESSING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=until, worked_at=now)
    )
    return until if taken else None


def _lease_renew(event_id: int, held: datetime, now: datetime) -> datetime | None:
    """Extend the hold ``held``; None if it is not ours any more (it ran out and another worker took it)."""
    until = now + LEASE
    renewed = Event.objects.filter(pk=event_id, lease_until=held).update(lease_until=until, worked_at=now)
    return until if renewed else None


def _lease_release(event_id: int, held: datetime) -> None:
    Event.objects.filter(pk=event_id, lease_until=held).update(lease_until=None)


def _lease_held(event_id: int, held: datetime) -> Exists:
    return Exists(Event.objects.filter(pk=event_id, status=Event.Status.PROCESSING, lease_until=held))


def _cut_off_sends(event_id: int, now: datetime) -> int:
    """Rows a previous holder left ``sending``: it died mid-send, so the e-mail may or may not have gone.
    Called by the new holder only, so no live send of this job is cut off."""
    return EventCustomer.objects.filter(event_id=event_id, status=EventCustomer.Status.SENDING).update(
        status=EventCustomer.Status.FAILED, error=CUT_OFF
    )


@dataclass
class WorkDone:
    prepared: int = 0
    emailed: int = 0
    failed: int = 0  # sends that failed, and sends a previous holder's crash cut off
    finished: bool = False  # no customer left to process or e-mail (the event is sent), or it was cancelled
    again_in: float | None = None  # seconds until the next task should run; None: no task needed from us


def _pacing_interval() -> float:
    per_minute = settings.EVENT_EMAILS_PER_MINUTE
    return 60.0 / per_minute if per_minute else 0.0


def _pacing_start(event_id: int, interval: float) -> float:
    """Seconds to wait before this task's first e-mail, so the pace holds across tasks (the one before may
    have sent a moment ago, and a second task of the event may run in the gap): one interval after the
    event's last e-mail, by the wall clock."""
    if not interval:
        return 0.0
    last = EventCustomer.objects.filter(event_id=event_id, sent_at__isnull=False).aggregate(last=Max("sent_at"))["last"]
    if last is None:
        return 0.0
    return min(interval, max(0.0, interval - (timezone.now() - last).total_seconds()))


def event_work(
    *,
    event_id: int,
    now: datetime | None = None,
    index: PolicyIndex | None = None,
    seconds: float = SLICE_SECONDS,
    clock: Any = time.monotonic,
    sleep: Any = time.sleep,
) -> WorkDone:
    """Process the event for up to ``seconds``: batches of offer sets, then their e-mails, paced.

    Returns what was done and whether anything is left (the task then sends itself again after
    ``again_in``). Another worker holding the event makes this a no-op. ``now``: the time written (tests);
    the pacing and the slice use ``clock`` and ``sleep``.
    """
    done = WorkDone()
    started = clock()

    def time_now() -> datetime:
        return now or timezone.now()

    held = _lease_take(event_id, time_now())
    if held is None:
        done.finished = not Event.objects.filter(pk=event_id, status=Event.Status.PROCESSING).exists()
        return done
    try:
        done.failed += _cut_off_sends(event_id, time_now())
        interval = _pacing_interval()
        next_send = clock() + _pacing_start(event_id, interval)
        renewed = clock()

        def slice_over() -> bool:
            if clock() - started <= seconds:
                return False
            done.again_in = max(0.0, next_send - clock())
            return True

        while True:
            if clock() - renewed >= RENEW_SECONDS:
                held = _lease_renew(event_id, held, time_now())
                renewed = clock()
                if held is None:  # ran out and taken over: the new holder carries on
                    return done
            event = Event.objects.select_related("created_by").get(pk=event_id)
            if event.status != Event.Status.PROCESSING:
                done.finished = True
                return done
            ready = _ready_rows(event_id)
            if not ready:
                prepared = _prepare_batch(event, index or policy_index_get(), time_now())
                done.prepared += prepared
                if not prepared:
                    done.finished = _finish(event, time_now())
                    if not done.finished:  # rows another transaction holds (a cancel, a re-send): soon again
                        done.again_in = 1.0
                    return done
                if slice_over():
                    return done
                continue
            for row in ready:
                if interval:
                    wait = next_send - clock()
                    if wait > 0:
                        if clock() + wait - started > seconds:
                            done.again_in = wait
                            return done
                        sleep(wait)  # at most 60 s (one e-mail a minute), well inside the lease
                    next_send = max(next_send, clock()) + interval
                sent = _send_one(row=row, event=event, held=held, now=time_now())
                if sent == CANCELLED:  # meanwhile
                    done.finished = True
                    return done
                if sent == LOST:
                    held = None
                    return done
                done.emailed += sent == SENT
                done.failed += sent == FAILED
                if clock() - renewed >= RENEW_SECONDS:
                    held = _lease_renew(event_id, held, time_now())
                    renewed = clock()
                    if held is None:
                        return done
                if slice_over():
                    return done
    finally:
        if held is not None:
            _lease_release(event_id, held)


def _finish(event: Event, now: datetime) -> bool:
    """Mark the event sent if no customer is left to prepare or e-mail; True if it is not processing now."""
    Status = EventCustomer.Status
    with transaction.atomic():
        # The event's row first: customers added meanwhile commit before we look (an add holds it), and a
        # statement started after the lock sees them, where one UPDATE … NOT EXISTS would keep its old view.
        if Event.objects.select_for_update().filter(pk=event.pk, status=Event.Status.PROCESSING).exists():
            left = EventCustomer.objects.filter(
                event_id=event.pk, status__in=(Status.QUEUED, Status.READY, Status.SENDING)
            )
            if not left.exists():
                Event.objects.filter(pk=event.pk).update(status=Event.Status.SENT, finished_at=now)
    return not Event.objects.filter(pk=event.pk, status=Event.Status.PROCESSING).exists()


def _ready_rows(event_id: int) -> list[EventCustomer]:
    """The next customers to e-mail, with what their e-mail shows."""
    return list(
        EventCustomer.objects.filter(event_id=event_id, status=EventCustomer.Status.READY)
        .select_related("offer_set__customer", "offer_set__incident")
        .order_by("position")[:BATCH]
    )


def _incident_of(event: Event, row: EventCustomer, category: CompiledCategory) -> dict[str, Any]:
    return {
        "category": category,
        "severity": event.severity,
        "fault": event.fault,
        "correctable": event.correctable,
        "order_value": Decimal(str(row.data.get("order_value", "0.00"))),
        "currency": settings.DEFAULT_CURRENCY,
        "description": event.description or event.name,
        "occurred_at": event.occurred_at,
        "external_ref": row.data.get("external_ref") or None,
    }


def _customer_of(row: EventCustomer) -> dict[str, Any]:
    customer: dict[str, Any] = {"external_id": row.external_id}
    for name in CUSTOMER_FIELDS:
        if name in row.data:
            customer[name] = Decimal(row.data[name]) if name == "lifetime_value" else row.data[name]
    return customer


def _prepare_batch(event: Event, index: PolicyIndex, now: datetime) -> int:
    """One transaction: the next ``BATCH`` queued customers get their incident and offer set (the remedy is
    given with the e-mail). A customer the engine refuses fails alone, with the reason; a category
    deactivated mid-event fails the customers not prepared yet, saying so (those prepared are still
    e-mailed)."""
    Status = EventCustomer.Status
    category = index.categories_by_id.get(event.category_id)
    expires_at = now + timedelta(days=settings.EVENT_CHOICE_DAYS)
    with transaction.atomic():
        rows = list(
            EventCustomer.objects.select_for_update(skip_locked=True)
            .filter(event_id=event.pk, status=Status.QUEUED)
            .order_by("position")[:BATCH]
        )
        for row in rows:
            if category is None:
                row.status = Status.FAILED
                row.error = f"The category of the event (id {event.category_id}) is no longer active."
                continue
            try:
                created = offer_set_create(
                    user=event.created_by,
                    index=index,
                    customer=_customer_of(row),
                    incident=_incident_of(event, row, category),
                    now=now,
                    expires_at=expires_at,
                )
            except SoftTimeLimitExceeded:
                raise
            except Exception as exc:  # rolled back to its own savepoint; this customer fails alone
                logger.warning("event %s: customer %s could not be prepared: %s", event.pk, row.external_id, exc)
                row.status = Status.FAILED
                row.error = f"The offer set could not be made: {exc}"[:2000]
                continue
            row.offer_set = created.offer_set
            row.no_options = not created.offers
            row.email = created.offer_set.email
            row.status = Status.READY
        if rows:
            EventCustomer.objects.bulk_update(rows, ["offer_set", "no_options", "email", "status", "error"])
    return len(rows)


SENT, FAILED, SKIPPED, CANCELLED, LOST = "sent", "failed", "skipped", "cancelled", "lost"


def _send_one(*, row: EventCustomer, event: Event, held: datetime, now: datetime) -> str:
    """E-mail one customer at most once: ``SENT``, ``FAILED``, ``SKIPPED`` (not ready any more),
    ``CANCELLED`` (the event was cancelled meanwhile) or ``LOST`` (our hold ran out and was taken over).

    The claim (``ready`` → ``sending``, only while the event is processing and held by us) commits before
    the e-mail goes. A cancel that comes while the claim waits for the row finds it ``sending`` and lets it
    finish; one that went first leaves nothing to claim."""
    Status = EventCustomer.Status
    claimed = (
        EventCustomer.objects.filter(pk=row.pk, status=Status.READY)
        .filter(_lease_held(event.pk, held))
        .update(status=Status.SENDING, attempts=F("attempts") + 1)
    )
    if not claimed:
        state = Event.objects.filter(pk=event.pk).values_list("status", "lease_until").first()
        if state is None or state[0] != Event.Status.PROCESSING:
            return CANCELLED
        if state[1] != held:
            return LOST
        return SKIPPED
    return SENT if _deliver(row=row, event=event, now=now) else FAILED


def _deliver(*, row: EventCustomer, event: Event, now: datetime) -> bool:
    """Send the e-mail of a row marked ``sending`` (committed); then mark it, giving the remedy if it went.

    A customer who had no address when their set was made is written to at the address stored since, if any
    (a re-send after the customer data was fixed)."""
    if not row.email and row.offer_set is not None:
        stored = Customer.objects.filter(pk=row.offer_set.customer_id).values_list("email", flat=True).first()
        if stored:
            row.email = stored
            EventCustomer.objects.filter(pk=row.pk).update(email=stored)
    if not row.email:
        EventCustomer.objects.filter(pk=row.pk).update(
            status=EventCustomer.Status.FAILED, error="The customer has no e-mail address."
        )
        return False
    try:
        message = event_email(row=row, event=event)
        message.send()
    except Exception as exc:
        logger.warning("event %s: e-mail to customer %s failed: %s", event.pk, row.external_id, exc)
        EventCustomer.objects.filter(pk=row.pk).update(
            status=EventCustomer.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        if isinstance(exc, SoftTimeLimitExceeded):  # the task is out of time: stop here (it sends itself again)
            raise
        return False
    with transaction.atomic():
        EventCustomer.objects.filter(pk=row.pk).update(status=EventCustomer.Status.EMAILED, sent_at=now, error="")
        _remedy_give(row=row, event=event, now=now)
    return True


def _remedy_give(*, row: EventCustomer, event: Event, now: datetime) -> None:
    """The remedy goes with the e-mail that says it was done: the manager who posted the event gave it
    (managers never need approval), so no outcome waits for it."""
    offer_set = row.offer_set
    if offer_set is None:
        return
    # Pending only: one a manager refused (an earlier set of a reused ticket) stays refused.
    Remedy.objects.filter(incident_id=offer_set.incident_id, status=Remedy.Status.PENDING).update(
        status=Remedy.Status.GIVEN,
        given_at=now,
        tier=offer_set.customer.tier,
        agent_id=event.created_by_id,
    )


def event_resend(*, row_ids: Sequence[int], now: datetime | None = None) -> int:
    """The admin's "Re-send": these ``failed`` customers (with an offer set, of an event not cancelled) are
    e-mailed again by the job, as the others were: paced, under the event's hold, each at most once more, the
    remedy given as it goes. Their event is processing again until they are. Returns how many were queued."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = EventCustomer.objects.filter(
            pk__in=list(row_ids), status=EventCustomer.Status.FAILED, offer_set__isnull=False
        ).exclude(event__status=Event.Status.CANCELLED)
        event_ids = sorted(set(rows.values_list("event_id", flat=True)))
        if not event_ids:
            return 0
        list(Event.objects.select_for_update().filter(pk__in=event_ids).values_list("pk", flat=True))
        queued = rows.update(status=EventCustomer.Status.READY, error="")
        Event.objects.filter(pk__in=event_ids, status=Event.Status.SENT).update(
            status=Event.Status.PROCESSING, finished_at=None
        )
        for event_id in event_ids:
            transaction.on_commit(lambda event_id=event_id: event_enqueue(event_id))
    return queued


def events_resume(*, now: datetime | None = None) -> int:
    """Send the task again for processing events nobody holds: a worker died (its lease ran out), or the
    broker lost or never got the task. Periodic (beat)."""
    now = now or timezone.now()
    stale = now - LEASE
    ids = list(
        Event.objects.filter(status=Event.Status.PROCESSING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(worked_at__isnull=True) | Q(worked_at__lt=stale))
        .values_list("pk", flat=True)
    )
    for event_id in ids:
        event_enqueue(event_id)
    return len(ids)


# --- The e-mail ---------------------------------------------------------------------------------


def choice_url(token: str, option: str | None = None) -> str:
    base = f"{settings.PUBLIC_BASE_URL}/r/{token}/"
    return f"{base}?option={option}" if option else base


def first_name(name: str) -> str:
    return name.split()[0] if name.strip() else ""


def event_email(*, row: EventCustomer, event: Event) -> EmailMultiAlternatives:
    """The customer's own message: the apology, the remedy, each option with its own link, and links for
    "none of these" and "please call me"; plain text and HTML."""
    offer_set = row.offer_set
    assert offer_set is not None
    token = token_of(row.nonce)
    offers = list(Offer.objects.filter(offer_set=offer_set).order_by("rank"))
    context = {
        "first_name": first_name(offer_set.customer.name),
        "event": event,
        "incident": offer_set.incident,
        # What this e-mail says was put right: given, or given as it goes (not refused, not awaiting a manager).
        "remedies": list(
            Remedy.objects.filter(
                incident_id=offer_set.incident_id, status__in=(Remedy.Status.GIVEN, Remedy.Status.PENDING)
            ).order_by("pk")
        ),
        "options": [{"offer": offer, "url": choice_url(token, offer.label)} for offer in offers],
        "none_url": choice_url(token, "none"),
        "call_url": choice_url(token, "call"),
        "page_url": choice_url(token),
        "expires_at": offer_set.expires_at,
        "choice_days": settings.EVENT_CHOICE_DAYS,
    }
    subject = render_to_string("email/event_subject.txt", context).strip()
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=render_to_string("email/event.txt", context),
        to=[row.email],
        headers={"X-Recovery-Event": str(event.pk)},
    )
    message.attach_alternative(render_to_string("email/event.html", context), "text/html")
    return message


# --- The customer's page /r/{token}/ ---------------------------------------------------------------------

CALL = "call"
NONE = "none"  # the page's and the links' word for "declined"
TOKEN_LENGTH = 43
NOT_FOUND = "This link does not work. Check that it was copied in full, or open it again from our e-mail."


@dataclass
class ChoicePage:
    """What the customer's page shows."""

    row: EventCustomer
    event: Event
    offer_set: OfferSet
    offers: list[Offer]
    remedies: list[Remedy]
    submission: OutcomeSubmission | None  # the live choice, if one was made
    expired: bool
    unavailable: set[str]  # labels whose policy's budget cannot cover them any more
    refused: OutcomeSubmission | None = None  # the last choice a manager refused, when none is live: choose again

    @property
    def first_name(self) -> str:
        return first_name(self.offer_set.customer.name)

    @property
    def labels(self) -> list[str]:
        return [offer.label for offer in self.offers]

    @property
    def chosen_offer(self) -> Offer | None:
        return self._offer(self.submission)

    @property
    def refused_offer(self) -> Offer | None:
        return self._offer(self.refused)

    @property
    def awaiting_approval(self) -> bool:
        return self.submission is not None and self.submission.status == OutcomeSubmission.Status.AWAITING_APPROVAL

    @property
    def call_requested(self) -> bool:
        """The customer asked to be called and nobody has closed that request yet."""
        escalation = self.row.escalation
        return escalation is not None and escalation.status in OPEN_STATUSES

    @property
    def open_offers(self) -> list[Offer]:
        return [offer for offer in self.offers if offer.label not in self.unavailable]

    def _offer(self, submission: OutcomeSubmission | None) -> Offer | None:
        if submission is None or submission.offer_id is None:
            return None
        return next((offer for offer in self.offers if offer.pk == submission.offer_id), None)


def event_link_row(token: str) -> EventCustomer:
    """The event customer a link's token names; anything else (tampered, made up, another kind of token) is
    :class:`NotFound`. Only the hash is looked up, so no timing of the lookup tells a near miss."""
    if len(token) != TOKEN_LENGTH or any(c not in "0123456789abcdef" for c in token):
        raise NotFound(NOT_FOUND)
    row = (
        EventCustomer.objects.select_related(
            "event__created_by", "offer_set__customer", "offer_set__incident", "escalation"
        )
        .filter(token_hash=token_hash(token), offer_set__isnull=False)
        .first()
    )
    if row is None or row.status in (EventCustomer.Status.QUEUED, EventCustomer.Status.CANCELLED):
        raise NotFound(NOT_FOUND)
    return row


def _unavailable(offers: Sequence[Offer], now: datetime) -> set[str]:
    """Labels whose policy's monthly budget cannot cover them now (checked again, under its lock, on choosing;
    a per-customer cap is found out only then)."""
    policies = {offer.policy_id for offer in offers}
    if not policies:
        return set()
    caps = dict(Policy.objects.filter(pk__in=policies, monthly_cap__isnull=False).values_list("pk", "monthly_cap"))
    spent = dict(
        PolicyMonthSpend.objects.filter(policy_id__in=caps, month=month_start(now)).values_list("policy_id", "spent")
    )
    budgets = {policy_id: MonthBudget(cap, spent.get(policy_id, Decimal("0"))) for policy_id, cap in caps.items()}
    return {
        offer.label
        for offer in offers
        if offer.policy_id in budgets and offer.estimated_cost > budgets[offer.policy_id].remaining
    }


def event_page(token: str, *, now: datetime | None = None, row: EventCustomer | None = None) -> ChoicePage:
    """The page of a link: :class:`NotFound` for a bad token; :class:`Gone` once the choice has closed unused.
    A used link shows what was chosen, also after it closed. Reads only: opening a link records nothing."""
    now = now or timezone.now()
    row = row or event_link_row(token)
    offer_set = row.offer_set
    assert offer_set is not None
    submissions = list(OutcomeSubmission.objects.filter(offer_set_id=offer_set.pk).order_by("-submitted_at", "pk"))
    submission = next((s for s in submissions if s.status != OutcomeSubmission.Status.REJECTED), None)
    expired = offer_set.expires_at <= now
    if expired and submission is None:
        closed = timezone.localtime(offer_set.expires_at)
        raise Gone(
            f"The choice in our e-mail was open until {closed.day} {closed:%B %Y}, so this link no longer "
            "works. If you still need us, reply to our e-mail."
        )
    offers = list(Offer.objects.filter(offer_set_id=offer_set.pk).order_by("rank"))
    return ChoicePage(
        row=row,
        event=row.event,
        offer_set=offer_set,
        offers=offers,
        remedies=list(
            Remedy.objects.filter(incident_id=offer_set.incident_id)
            .exclude(status=Remedy.Status.REJECTED)
            .order_by("pk")
        ),
        submission=submission,
        expired=expired,
        unavailable=set() if submission is not None else _unavailable(offers, now),
        refused=submissions[0] if submission is None and submissions else None,
    )


def _said(page: ChoicePage) -> str:
    offer = page.chosen_offer
    return f"option {offer.label}, {offer.title}" if offer is not None else '"None of these"'


def _no_longer_available(label: str) -> Conflict:
    return Conflict(
        f"Option {label} is no longer available, sorry. The other choices on this page are still open.",
        ErrorCode.BUDGET_EXHAUSTED,
    )


def event_choose(*, token: str, choice: str, now: datetime | None = None) -> ChoicePage:
    """A button pressed on the page: ``a``/``b``/``c``, ``none`` (declined) or ``call``.

    A choice goes through the outcome path as the manager who posted the event, ``by_customer`` (budgets and
    caps, approval only where the option asks, one live choice per set). The same button again answers as
    before; another after a choice is a :class:`Conflict` (``outcome_exists``), an option whose budget ran out
    one with ``budget_exhausted``, in words for the customer (a policy's name or caps are not theirs to read).
    A value that is no button of this page is :class:`InvalidInput`. ``call`` opens (or finds) the
    incident's senior-manager escalation, naming the event, and leaves the choice open.
    """
    now = now or timezone.now()
    page = event_page(token, now=now)
    choice = choice.strip().lower()
    if choice not in {*page.labels, CALL, *([NONE] if page.offers else [])}:
        declining = ['"None of these"'] if page.offers else []
        buttons = ", ".join([*(f'"Choose {label}"' for label in page.labels), *declining, '"Please call me"'])
        raise InvalidInput({"choice": [f"Press one of the buttons: {buttons}."]})
    wanted = DECLINED if choice == NONE else choice
    if page.submission is not None:
        if choice != CALL and page.submission.choice == wanted:
            return page
        raise Conflict(
            f"You already chose {_said(page)}, so this link cannot change it. "
            "If you need something else, reply to our e-mail.",
            ErrorCode.OUTCOME_EXISTS,
        )
    if choice == CALL:
        return _call_me(page, now=now)
    if wanted in page.unavailable:
        raise _no_longer_available(wanted)
    try:
        with transaction.atomic():
            outcome_submit(
                user=page.event.created_by,
                offer_set_id=page.offer_set.pk,
                choice=wanted,
                # Staff read it on the outcome; the customer too, in the explanation e-mail that follows.
                notes=f"You chose this on the page of our e-mail about {page.event.name}.",
                now=now,
                by_customer=True,
            )
    except BudgetExhausted:
        raise _no_longer_available(wanted) from None
    except Conflict:
        # Another press won meanwhile (a double tap, a second device), or the choice closed: the page as it
        # stands now says which (the same choice again is answered as before).
        settled = event_page(token, now=now)
        if settled.submission is None:
            raise
        if settled.submission.choice == wanted:
            return settled
        page = settled
        raise Conflict(
            f"You already chose {_said(page)}, so this link cannot change it.", ErrorCode.OUTCOME_EXISTS
        ) from None
    return event_page(token, now=now, row=page.row)


def _call_me(page: ChoicePage, *, now: datetime) -> ChoicePage:
    """Open (or find) the incident's senior-manager escalation; an open one that does not name the event yet
    (the policy escalated when the set was made) is told that the customer asked to be called."""
    reason = (
        f"The customer asked to be called about the event \u201c{page.event.name}\u201d (event #{page.event.pk}) "
        "from the page of their e-mail, before choosing an option (their choice stays open)."
    )
    with transaction.atomic():
        row = EventCustomer.objects.select_for_update().get(pk=page.row.pk)
        escalation, created = escalation_open_for_incident(
            incident=page.offer_set.incident,
            customer=page.offer_set.customer,
            reason=reason,
            policy_id=None,
            now=now,
        )
        changed = []
        if not created and f"(event #{page.event.pk})" not in escalation.reason:
            escalation.reason = f"{escalation.reason}\n{reason}"
            changed.append("reason")
        if escalation.offer_set_id is None:
            escalation.offer_set = page.offer_set
            changed.append("offer_set")
        if changed:
            escalation.save(update_fields=changed)
        row.escalation = escalation
        row.save(update_fields=["escalation"])
        page.row.escalation = escalation
    return page
