"""Follow-ups after an outcome: the explanation e-mail and the satisfaction check with its feedback link.

Each is sent once by a periodic task (``follow_ups_send``): a follow-up is
locked while it is sent, marked sent with the time, and on failure keeps its
place for the next run with the error and the attempt counted.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from compensation.errors import Conflict, ErrorCode, Gone, NotFound
from compensation.models import EventCustomer, FollowUp, Outcome, Remedy

logger = logging.getLogger("compensation")

FEEDBACK_SALT = "recovery.feedback"
BATCH = 200
NO_EMAIL = "The customer had no e-mail address when the offer set was made."


class FeedbackLinkInvalid(NotFound):
    """A token that was not made here, or names no satisfaction check."""

    def __init__(self) -> None:
        super().__init__("This feedback link is not valid.")


def feedback_token(follow_up: FollowUp) -> str:
    """A signed, timestamped token naming the satisfaction check; it expires with FEEDBACK_LINK_MAX_AGE_DAYS."""
    return signing.TimestampSigner(salt=FEEDBACK_SALT).sign(str(follow_up.pk))


def feedback_url(follow_up: FollowUp) -> str:
    return f"{settings.PUBLIC_BASE_URL}/api/v1/feedback/{feedback_token(follow_up)}/"


def _render(follow_up: FollowUp) -> tuple[str, str]:
    outcome = follow_up.outcome
    offer_set = outcome.offer_set
    context = {
        "customer": offer_set.customer,
        "incident": offer_set.incident,
        "category": offer_set.incident.category,
        "outcome": outcome,
        "offer": outcome.offer,
        "coupon": getattr(outcome, "coupon", None),
        # What this outcome put right (given, or waiting for a manager's approval), before the choice.
        "remedies": list(outcome.remedies.exclude(status=Remedy.Status.REJECTED).order_by("pk")),
        "feedback_url": feedback_url(follow_up) if follow_up.kind == FollowUp.Kind.SATISFACTION_CHECK else None,
        "feedback_days": settings.FEEDBACK_LINK_MAX_AGE_DAYS,
        # Chosen by the customer on an event's page: its note is ours, not a word from someone who helped them.
        "chosen_by_customer": EventCustomer.objects.filter(offer_set_id=offer_set.pk).exists(),
    }
    name = "explanation" if follow_up.kind == FollowUp.Kind.EXPLANATION else "satisfaction_check"
    subject = render_to_string(f"email/{name}_subject.txt", context).strip()
    return subject, render_to_string(f"email/{name}.txt", context)


def follow_up_send(*, follow_up_id: int, now: datetime | None = None) -> bool:
    """Send one due follow-up unless another run has it or it was sent; True when this call sent it."""
    now = now or timezone.now()
    with transaction.atomic():
        follow_up = (
            FollowUp.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related(
                "outcome__offer_set__customer",
                "outcome__offer_set__incident__category",
                "outcome__offer",
                "outcome__coupon",
            )
            .filter(pk=follow_up_id, status=FollowUp.Status.SCHEDULED, send_after__lte=now)
            .first()
        )
        if follow_up is None:
            return False
        # The address the customer had when the set was made, never a later change (which anyone posting
        # the same customer could make): the e-mail carries the coupon and the single-use feedback link.
        email = follow_up.outcome.offer_set.email
        if not email:
            follow_up.status = FollowUp.Status.SKIPPED
            follow_up.last_error = NO_EMAIL
            follow_up.save(update_fields=["status", "last_error"])
            return False
        follow_up.attempts += 1
        try:
            subject, body = _render(follow_up)
            send_mail(subject, body, None, [email])
        except Exception as exc:
            logger.warning("follow-up %s not sent (attempt %d): %s", follow_up.pk, follow_up.attempts, exc)
            follow_up.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            follow_up.save(update_fields=["attempts", "last_error"])
            return False
        follow_up.status = FollowUp.Status.SENT
        follow_up.sent_at = now
        follow_up.last_error = ""
        follow_up.save(update_fields=["status", "sent_at", "attempts", "last_error"])
    return True


def follow_ups_send(*, now: datetime | None = None, limit: int = BATCH) -> int:
    """Send the follow-ups whose time has come, oldest due first; returns how many were sent."""
    now = now or timezone.now()
    ids = list(
        FollowUp.objects.filter(status=FollowUp.Status.SCHEDULED, send_after__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(follow_up_send(follow_up_id=pk, now=now) for pk in ids)


def _feedback_follow_up_id(token: str) -> int:
    """The satisfaction check a token names; :class:`FeedbackLinkInvalid` or :class:`Gone` otherwise."""
    signer = signing.TimestampSigner(salt=FEEDBACK_SALT)
    try:
        value = signer.unsign(token, max_age=timedelta(days=settings.FEEDBACK_LINK_MAX_AGE_DAYS))
    except signing.SignatureExpired:
        raise Gone("This feedback link has expired.") from None
    except signing.BadSignature:
        raise FeedbackLinkInvalid() from None
    if not value.isdigit():
        raise FeedbackLinkInvalid()
    return int(value)


def feedback_link_check(token: str) -> None:
    """Raise as :func:`feedback_submit` would for a bad (404), expired (410) or used (409) link."""
    follow_up = FollowUp.objects.filter(pk=_feedback_follow_up_id(token), kind=FollowUp.Kind.SATISFACTION_CHECK).first()
    if follow_up is None:
        raise FeedbackLinkInvalid()
    if follow_up.responded_at is not None:
        raise Conflict("This feedback link was already used. Thank you!", ErrorCode.FEEDBACK_USED)


def feedback_submit(*, token: str, satisfaction: int, comment: str = "", now: datetime | None = None) -> FollowUp:
    """The customer's answer to the satisfaction check, once.

    Raises :class:`FeedbackLinkInvalid` (404), :class:`Gone` when the link
    expired (410) and :class:`Conflict` ``feedback_used`` when it was used (409).
    """
    now = now or timezone.now()
    follow_up_id = _feedback_follow_up_id(token)
    with transaction.atomic():
        follow_up = (
            FollowUp.objects.select_for_update().filter(pk=follow_up_id, kind=FollowUp.Kind.SATISFACTION_CHECK).first()
        )
        if follow_up is None:
            raise FeedbackLinkInvalid()
        if follow_up.responded_at is not None:
            raise Conflict("This feedback link was already used. Thank you!", ErrorCode.FEEDBACK_USED)
        follow_up.responded_at = now
        follow_up.feedback_satisfaction = satisfaction
        follow_up.feedback_comment = comment
        follow_up.save(update_fields=["responded_at", "feedback_satisfaction", "feedback_comment"])
        # The customer's own word is the satisfaction reports count.
        Outcome.objects.filter(pk=follow_up.outcome_id).update(satisfaction=satisfaction)
    return follow_up
