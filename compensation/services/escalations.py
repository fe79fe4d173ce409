"""Escalations: a senior manager's queue and approvals above an agent's authority.

Opened by a policy (``escalate``), by a customer choosing an escalation option,
or by an option that needs approval. Managers are told by e-mail (through
Celery); they acknowledge and resolve, or approve and reject; a periodic task
flags the ones past their due time and tells the managers once more.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from compensation.authority import MonthOverLimit
from compensation.errors import Conflict, ErrorCode
from compensation.models import Customer, Escalation, Incident, Outcome, OutcomeSubmission, Remedy
from compensation.queue import ESCALATION_NOTIFY, outcome_enqueue, task_send
from compensation.selectors import manager_emails
from compensation.services.budgets import budget_release
from policies.money import money

logger = logging.getLogger("compensation")

OPEN_STATUSES = (Escalation.Status.OPEN, Escalation.Status.ACKNOWLEDGED)


def escalation_due(now: datetime) -> datetime:
    return now + timedelta(hours=settings.ESCALATION_SLA_HOURS)


def escalation_notify_enqueue(escalation_id: int, *, overdue: bool = False) -> None:
    """Tell the managers after commit, through Celery; a broker outage only delays the e-mail."""
    transaction.on_commit(lambda: task_send(ESCALATION_NOTIFY, escalation_id, overdue=overdue))


def escalation_open_for_incident(
    *, incident: Incident, customer: Customer, reason: str, policy_id: int | None, now: datetime
) -> tuple[Escalation, bool]:
    """The open senior-manager escalation for this incident, or a new one due within the SLA.

    Returns the escalation and whether it was created (and the managers notified).
    """
    existing = (
        Escalation.objects.filter(incident=incident, kind=Escalation.Kind.SENIOR_MANAGER, status__in=OPEN_STATUSES)
        .order_by("pk")
        .first()
    )
    if existing is not None:
        return existing, False
    escalation = Escalation.objects.create(
        kind=Escalation.Kind.SENIOR_MANAGER,
        status=Escalation.Status.OPEN,
        reason=reason,
        due_at=escalation_due(now),
        incident=incident,
        customer=customer,
        policy_id=policy_id,
    )
    escalation_notify_enqueue(escalation.pk)
    return escalation, True


def escalation_approval_open(
    *,
    submission: OutcomeSubmission,
    user: Any,
    now: datetime,
    per_option: Decimal | None = None,
    over_month: MonthOverLimit | None = None,
    by_customer: bool = False,
) -> Escalation:
    """An approval request for a choice above the agent's authority; the outcome waits for it.

    ``per_option``: the agent's limit per option, when the option itself needs approval (above it, or
    its policy asks); ``over_month``: when the choice takes the agent past their monthly limit.
    """
    offer = submission.offer
    offer_set = submission.offer_set
    assert offer is not None
    # A customer choosing on an event's page asks through the manager who posted the event, who made the set.
    name = "The customer (on the page of an event's e-mail)" if by_customer else user.get_username()
    why = []
    if over_month is None or offer.requires_approval:
        cost = f"costs {money(offer.estimated_cost)} {offer.currency}"
        if per_option is not None and offer.estimated_cost > per_option:
            why.append(f"{cost}, above {name}'s limit of {money(per_option)} per option")
        elif offer.offer_template is not None and offer.offer_template.requires_approval:
            why.append("its policy asks for a manager's approval")
        else:  # the limit was lower when the options were made, and the option was shown as needing approval
            why.append(f"{cost}, above {name}'s limit per option when the options were made")
    if over_month is not None:
        why.append(
            f"with it, {name}'s chosen options in {over_month.month} come to {money(over_month.total)} "
            f"{offer.currency}, above their monthly limit of {money(over_month.limit)}"
        )
    escalation = Escalation.objects.create(
        kind=Escalation.Kind.APPROVAL,
        status=Escalation.Status.OPEN,
        reason=f"{name} asks to give {offer.title!r} (option {offer.label}): {'; '.join(why)}.",
        due_at=escalation_due(now),
        offer_set=offer_set,
        incident_id=offer_set.incident_id,
        customer_id=offer_set.customer_id,
        policy_id=offer.policy_id,
    )
    escalation_notify_enqueue(escalation.pk)
    return escalation


def escalation_remedy_approval_open(
    *, remedies: list[Remedy], outcome: Outcome, user: Any, now: datetime, per_option: Decimal
) -> Escalation:
    """An approval request for a remedy above the agent's authority (``per_option``, their limit per option);
    the customer's choice is recorded meanwhile."""
    limit = per_option
    total = sum((r.estimated_cost for r in remedies), Decimal("0"))
    titles = ", ".join(repr(r.title) for r in remedies)
    why = (
        f"it costs {money(total)} {remedies[0].currency}, above {user.get_username()}'s limit of {money(limit)} "
        "per option"
        if total > limit
        else "its policy asks for a manager's approval"
    )
    escalation = Escalation.objects.create(
        kind=Escalation.Kind.APPROVAL,
        status=Escalation.Status.OPEN,
        reason=f"{user.get_username()} asks to give the remedy {titles} for incident {outcome.offer_set.incident_id} "
        f"(the customer chose {outcome.choice}): {why}.",
        due_at=escalation_due(now),
        offer_set_id=outcome.offer_set_id,
        incident_id=outcome.offer_set.incident_id,
        customer_id=outcome.customer_id,
        policy_id=remedies[0].policy_id,
    )
    escalation_notify_enqueue(escalation.pk)
    return escalation


def remedies_give(*, remedies: list[Remedy], outcome_id: int, now: datetime) -> None:
    """Mark the remedy items given now, with the outcome they came with, which counts their cost."""
    for remedy in remedies:
        remedy.status = Remedy.Status.GIVEN
        remedy.given_at = now
    Remedy.objects.bulk_update(remedies, ["status", "given_at"])
    total = sum((r.estimated_cost for r in remedies), Decimal("0"))
    Outcome.objects.filter(pk=outcome_id).update(remedy_cost=F("remedy_cost") + total)


def _locked(escalation_id: int) -> Escalation:
    return Escalation.objects.select_for_update().get(pk=escalation_id)


def _closed(escalation: Escalation, action: str) -> Conflict:
    return Conflict(
        f"Escalation {escalation.pk} is {escalation.status}; it cannot be {action}.", ErrorCode.ESCALATION_CLOSED
    )


def escalation_acknowledge(*, escalation_id: int, user: Any, now: datetime | None = None) -> Escalation:
    """A manager takes it on; acknowledging again changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        escalation = _locked(escalation_id)
        if escalation.status == Escalation.Status.ACKNOWLEDGED:
            return escalation
        if escalation.status != Escalation.Status.OPEN:
            raise _closed(escalation, "acknowledged")
        escalation.status = Escalation.Status.ACKNOWLEDGED
        escalation.acknowledged_at = now
        escalation.assigned_to = escalation.assigned_to or user
        escalation.save(update_fields=["status", "acknowledged_at", "assigned_to"])
    return escalation


def _close(escalation: Escalation, *, status: str, resolution: str, user: Any, now: datetime) -> Escalation:
    """Close it (resolved, approved or rejected) by ``user``, who takes it if nobody had."""
    escalation.status = status
    escalation.resolved_at = now
    escalation.resolution = resolution
    escalation.assigned_to = escalation.assigned_to or user
    escalation.save(update_fields=["status", "resolved_at", "resolution", "assigned_to"])
    return escalation


def escalation_resolve(*, escalation_id: int, user: Any, resolution: str, now: datetime | None = None) -> Escalation:
    now = now or timezone.now()
    with transaction.atomic():
        escalation = _locked(escalation_id)
        if escalation.kind == Escalation.Kind.APPROVAL:
            raise Conflict("An approval is closed by approving or rejecting it.", ErrorCode.APPROVAL_REQUIRED)
        if escalation.status not in OPEN_STATUSES:
            raise _closed(escalation, "resolved")
        return _close(escalation, status=Escalation.Status.RESOLVED, resolution=resolution, user=user, now=now)


def _approval_to_decide(
    escalation_id: int, *, decision: str, verb: str
) -> tuple[Escalation, OutcomeSubmission | None, list[Remedy]]:
    """The approval with its waiting outcome or waiting remedy, locked; neither when it already has this
    ``decision`` (a repeat)."""
    escalation = _locked(escalation_id)
    if escalation.kind != Escalation.Kind.APPROVAL:
        raise Conflict(f"Only approval escalations are {verb}; resolve this one.", ErrorCode.NOT_AN_APPROVAL)
    if escalation.status == decision:
        return escalation, None, []
    if escalation.status not in OPEN_STATUSES:
        raise _closed(escalation, verb)
    submission = (
        OutcomeSubmission.objects.select_for_update(of=("self",))
        .filter(approval=escalation, status=OutcomeSubmission.Status.AWAITING_APPROVAL)
        .select_related("charge")
        .first()
    )
    remedies = list(
        Remedy.objects.select_for_update()
        .filter(approval=escalation, status=Remedy.Status.AWAITING_APPROVAL)
        .order_by("pk")
    )
    if submission is None and not remedies:
        raise Conflict(
            f"Escalation {escalation.pk} has no outcome or remedy waiting for approval.", ErrorCode.ESCALATION_CLOSED
        )
    return escalation, submission, remedies


def escalation_approve(*, escalation_id: int, user: Any, now: datetime | None = None) -> Escalation:
    """Let the waiting outcome be recorded; approving again changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        escalation, submission, remedies = _approval_to_decide(
            escalation_id, decision=Escalation.Status.APPROVED, verb="approved"
        )
        if submission is None and not remedies:
            return escalation
        if submission is not None:
            submission.status = OutcomeSubmission.Status.PENDING
            submission.enqueued_at = now
            submission.save(update_fields=["status", "enqueued_at"])
            transaction.on_commit(lambda: outcome_enqueue(submission.pk))
        if remedies:
            remedies_give(remedies=remedies, outcome_id=remedies[0].outcome_id, now=now)
        return _close(escalation, status=Escalation.Status.APPROVED, resolution="Approved.", user=user, now=now)


def escalation_reject(*, escalation_id: int, user: Any, reason: str, now: datetime | None = None) -> Escalation:
    """Refuse the waiting outcome (its budget is released and the agent may post a new choice) or the waiting
    remedy (not given; tried again, with the same rule, at the incident's next recorded outcome)."""
    now = now or timezone.now()
    with transaction.atomic():
        escalation, submission, remedies = _approval_to_decide(
            escalation_id, decision=Escalation.Status.REJECTED, verb="rejected"
        )
        if submission is None and not remedies:
            return escalation
        if submission is not None:
            if submission.charge is not None:
                budget_release(charge=submission.charge, now=now)
            submission.status = OutcomeSubmission.Status.REJECTED
            submission.save(update_fields=["status"])
        if remedies:
            Remedy.objects.filter(pk__in=[r.pk for r in remedies]).update(status=Remedy.Status.REJECTED)
        return _close(escalation, status=Escalation.Status.REJECTED, resolution=reason, user=user, now=now)


def escalation_notify(*, escalation_id: int, overdue: bool = False, now: datetime | None = None) -> bool:
    """E-mail the managers' group about an escalation; False when there was nothing to send."""
    now = now or timezone.now()
    escalation = Escalation.objects.select_related("customer", "incident__category").filter(pk=escalation_id).first()
    if escalation is None or (escalation.is_closed and not overdue):
        return False
    recipients = manager_emails()
    if recipients:
        context = {"escalation": escalation, "overdue": overdue, "base_url": settings.PUBLIC_BASE_URL}
        subject = ("OVERDUE: " if overdue else "") + (
            f"{escalation.get_kind_display()} escalation #{escalation.pk}: {escalation.incident.category.name}"
        )
        send_mail(
            subject,
            render_to_string("email/escalation.txt", context),
            None,
            recipients,
        )
    else:
        logger.warning("escalation %s: no manager has an e-mail address to notify", escalation_id)
    if not overdue:
        Escalation.objects.filter(pk=escalation_id, notified_at=None).update(notified_at=now)
    return bool(recipients)


def escalations_flag_overdue(*, now: datetime | None = None) -> int:
    """Tell the managers, once, about every open escalation past its due time."""
    now = now or timezone.now()
    ids = list(
        Escalation.objects.filter(status__in=OPEN_STATUSES, due_at__lt=now, overdue_notified_at=None).values_list(
            "pk", flat=True
        )[:1000]
    )
    flagged = 0
    for escalation_id in ids:
        with transaction.atomic():
            if Escalation.objects.filter(pk=escalation_id, overdue_notified_at=None).update(overdue_notified_at=now):
                flagged += 1
                escalation_notify_enqueue(escalation_id, overdue=True)
    return flagged
