"""The outcome path of DESIGN.md: accept a choice in one transaction, record it in a task.

``outcome_submit`` checks the label, expiry and any earlier outcome, charges the
budget and writes the submission (the outbox); after commit the recording task
is enqueued. ``outcome_record`` claims the submission with a conditional update,
so a second delivery does nothing, and writes everything the choice promises.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from compensation.exceptions import Conflict
from compensation.models import (
    AcceptanceStat,
    Coupon,
    CreditEntry,
    Escalation,
    FollowUp,
    Offer,
    OfferSet,
    Outcome,
    OutcomeSubmission,
    PerkGrant,
)
from compensation.roles import Role, user_has_role
from compensation.services.budgets import budget_charge
from compensation.services.escalations import escalation_approval_open, escalation_open_for_incident
from policies.choices import OfferKind

logger = logging.getLogger("compensation")

DECLINED = "declined"
COUPON_KINDS = frozenset({OfferKind.PERCENT_DISCOUNT, OfferKind.FREE_SHIPPING})
CREDIT_KINDS = frozenset({OfferKind.FIXED_CREDIT, OfferKind.REFUND})
FOLLOW_UP_DUE = timedelta(hours=24)
# Crockford's base 32: no I, L, O or U, so codes read out on the phone are not misheard.
COUPON_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class Submitted:
    submission: OutcomeSubmission
    created: bool  # False: the identical choice was already accepted


def _labels(offers: Iterable[Offer]) -> dict[str, Offer]:
    return {offer.label: offer for offer in offers}


def _live_submission(offer_set: OfferSet) -> OutcomeSubmission | None:
    return (
        OutcomeSubmission.objects.filter(offer_set=offer_set).exclude(status=OutcomeSubmission.Status.REJECTED).first()
    )


def _same_or_conflict(existing: OutcomeSubmission, choice: str) -> Submitted:
    if existing.choice == choice:
        return Submitted(existing, created=False)
    raise Conflict(f"This offer set already has an outcome ({existing.choice!r}, {existing.status}).", "outcome_exists")


def outcome_enqueue(submission_id: Any) -> None:
    """Send the recording task; if the broker is down, the requeue task sends it later."""
    from compensation.tasks import outcome_record_task

    try:
        outcome_record_task.apply_async((str(submission_id),), retry=False)
    except Exception:
        logger.warning("could not enqueue outcome %s; it stays pending and will be re-sent", submission_id)


def outcome_submit(
    *,
    user: Any,
    offer_set: OfferSet,
    choice: str,
    satisfaction: int | None = None,
    notes: str = "",
    now: datetime | None = None,
) -> Submitted:
    """Accept the customer's choice: one transaction that charges the budget and writes the outbox row.

    Raises ``ValidationError`` for a label the set does not have and
    :class:`Conflict` (``outcome_exists``, ``expired``, ``budget_exhausted``).
    """
    now = now or timezone.now()
    offers = _labels(offer_set.offers.all())
    if choice != DECLINED and choice not in offers:
        valid = ", ".join([*sorted(offers), DECLINED])
        raise ValidationError({"choice": [f"{choice!r} is not an option of this offer set; choose one of: {valid}"]})
    try:
        with transaction.atomic():
            existing = _live_submission(offer_set)
            if existing is not None:
                return _same_or_conflict(existing, choice)
            if offer_set.expires_at <= now:
                raise Conflict(
                    f"This offer set expired at {offer_set.expires_at.isoformat()}; ask for new options.", "expired"
                )
            offer = offers.get(choice)
            charge = None
            needs_approval = False
            if offer is not None:
                charge = budget_charge(
                    policy_id=offer.policy_id,
                    customer_id=offer_set.customer_id,
                    amount=offer.estimated_cost,
                    now=now,
                )
                needs_approval = offer.requires_approval and not user_has_role(user, Role.MANAGER)
            submission = OutcomeSubmission(
                offer_set=offer_set,
                offer=offer,
                choice=choice,
                satisfaction=satisfaction,
                notes=notes,
                submitted_by=user,
                submitted_at=now,
                status=OutcomeSubmission.Status.AWAITING_APPROVAL
                if needs_approval
                else OutcomeSubmission.Status.PENDING,
                charge=charge,
                enqueued_at=None if needs_approval else now,
            )
            submission.save(force_insert=True)
            if needs_approval:
                submission.approval = escalation_approval_open(submission=submission, user=user, now=now)
                submission.save(update_fields=["approval"])
            else:
                transaction.on_commit(lambda: outcome_enqueue(submission.pk))
    except IntegrityError:
        # A concurrent request for the same set won the one live submission.
        existing = _live_submission(offer_set)
        if existing is None:
            raise
        return _same_or_conflict(existing, choice)
    return Submitted(submission, created=True)


def coupon_code_new() -> str:
    """``RCV-XXXX-XXXX-XXXX-XXXX``: 80 random bits; the unique index rejects the astronomically rare clash."""
    chars = "".join(secrets.choice(COUPON_ALPHABET) for _ in range(16))
    return "RCV-" + "-".join(chars[i : i + 4] for i in range(0, 16, 4))


def acceptance_stats_add(*, category_id: int, offered: Iterable[int | None], chosen: int | None) -> None:
    """Count one more showing of each offer template and, for the chosen one, one more choice.

    One upsert with atomic increments; rows in template order, so concurrent
    recordings lock them in the same order. Templates deleted since are skipped.
    """
    template_ids = sorted({t for t in offered if t is not None})
    if not template_ids:
        return
    q = connection.ops.quote_name
    stat = q(AcceptanceStat._meta.db_table)
    templates = q(AcceptanceStat._meta.get_field("offer_template").related_model._meta.db_table)
    marks = ", ".join(["%s"] * len(template_ids))
    sql = (
        f"INSERT INTO {stat} (offer_template_id, category_id, offered, chosen) "  # noqa: S608
        f"SELECT t.id, %s, 1, CASE WHEN t.id = %s THEN 1 ELSE 0 END FROM {templates} t "
        f"WHERE t.id IN ({marks}) ORDER BY t.id "
        f"ON CONFLICT (category_id, offer_template_id) DO UPDATE SET "
        f"offered = {stat}.offered + EXCLUDED.offered, chosen = {stat}.chosen + EXCLUDED.chosen"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [category_id, chosen or 0, *template_ids])


def _follow_ups(outcome: Outcome, now: datetime) -> list[FollowUp]:
    explanation_at = now + timedelta(minutes=settings.FOLLOW_UP_EXPLANATION_DELAY_MINUTES)
    check_at = now + timedelta(hours=settings.FOLLOW_UP_SATISFACTION_DELAY_HOURS)
    return [
        FollowUp(
            outcome=outcome,
            kind=FollowUp.Kind.EXPLANATION,
            send_after=explanation_at,
            due_at=now + FOLLOW_UP_DUE,
        ),
        FollowUp(
            outcome=outcome,
            kind=FollowUp.Kind.SATISFACTION_CHECK,
            send_after=check_at,
            due_at=check_at + FOLLOW_UP_DUE,
        ),
    ]


def _issue(outcome: Outcome, offer: Offer, *, now: datetime) -> Escalation | None:
    """What the chosen option promises: a coupon, a credit, a perk, or a senior manager."""
    customer_id = outcome.customer_id
    if offer.kind in COUPON_KINDS:
        template = offer.offer_template
        Coupon.objects.create(
            code=coupon_code_new(),
            outcome=outcome,
            customer_id=customer_id,
            kind=offer.kind,
            value=offer.value,
            unit=offer.unit or "",
            max_amount=template.max_amount if template is not None else None,
            currency=offer.currency,
            created_at=now,
            expires_at=now + timedelta(days=offer.expires_in_days) if offer.expires_in_days else None,
        )
    elif offer.kind in CREDIT_KINDS:
        # A refund's value is a percentage: what goes back is the amount computed for this order.
        amount = offer.estimated_cost if offer.kind == OfferKind.REFUND else offer.value
        CreditEntry.objects.create(
            outcome=outcome,
            customer_id=customer_id,
            kind=offer.kind,
            amount=amount if amount is not None else Decimal("0"),
            currency=offer.currency,
            created_at=now,
        )
    elif offer.kind == OfferKind.PERSONALIZED_PERK and offer.perk_id is not None:
        PerkGrant.objects.create(customer_id=customer_id, perk_id=offer.perk_id, granted_at=now)
    elif offer.kind == OfferKind.ESCALATION:
        offer_set = outcome.offer_set
        existing = offer_set.escalation
        if existing is not None and not existing.is_closed:
            return None  # the set already opened one: reuse it
        escalation, created = escalation_open_for_incident(
            incident=offer_set.incident,
            customer=offer_set.customer,
            reason=f"The customer chose {offer.title!r} (option {offer.label}).",
            policy_id=offer.policy_id,
            now=now,
        )
        if escalation.offer_set_id is None:
            escalation.offer_set = offer_set
            escalation.save(update_fields=["offer_set"])
        if offer_set.escalation_id != escalation.pk:
            offer_set.escalation = escalation
            offer_set.save(update_fields=["escalation"])
        return escalation if created else None
    return None


def outcome_record(*, submission_id: Any, now: datetime | None = None) -> Outcome | None:
    """Record a pending submission once; None when it is not pending (already recorded, or awaiting approval)."""
    from compensation.services.escalations import escalation_notify_enqueue

    now = now or timezone.now()
    with transaction.atomic():
        claimed = OutcomeSubmission.objects.filter(pk=submission_id, status=OutcomeSubmission.Status.PENDING).update(
            status=OutcomeSubmission.Status.RECORDED, recorded_at=now
        )
        if not claimed:
            return None
        submission = OutcomeSubmission.objects.select_related(
            "offer__offer_template", "offer_set__incident", "offer_set__customer", "offer_set__escalation"
        ).get(pk=submission_id)
        offer_set = submission.offer_set
        offer = submission.offer
        incident = offer_set.incident
        outcome = Outcome.objects.create(
            submission=submission,
            offer_set=offer_set,
            offer=offer,
            choice=submission.choice,
            accepted=offer is not None,
            kind=offer.kind if offer is not None else "",
            policy_id=offer.policy_id if offer is not None else None,
            category_id=incident.category_id,
            tier=offer_set.customer.tier,
            customer_id=offer_set.customer_id,
            agent_id=offer_set.created_by_id,
            cost=offer.estimated_cost if offer is not None else Decimal("0"),
            currency=offer.currency if offer is not None else settings.DEFAULT_CURRENCY,
            satisfaction=submission.satisfaction,
            notes=submission.notes,
            offer_set_created_at=offer_set.created_at,
            submitted_at=submission.submitted_at,
            recorded_at=now,
            follow_up_due_at=now + FOLLOW_UP_DUE,
        )
        opened = _issue(outcome, offer, now=now) if offer is not None else None
        FollowUp.objects.bulk_create(_follow_ups(outcome, now))
        shown = Offer.objects.filter(offer_set=offer_set).values_list("offer_template_id", flat=True)
        acceptance_stats_add(
            category_id=incident.category_id,
            offered=list(shown),
            chosen=offer.offer_template_id if offer is not None else None,
        )
        if opened is not None:
            escalation_notify_enqueue(opened.pk)
    return outcome


def outcome_submissions_requeue(*, now: datetime | None = None, older_than: timedelta | None = None) -> int:
    """Send again the recording task of submissions still pending ``older_than`` after they were last sent.

    The broker may have been down at commit, or a worker killed with the
    message unacknowledged: the outbox row is what makes sure it is recorded.
    """
    now = now or timezone.now()
    cutoff = now - (older_than if older_than is not None else timedelta(seconds=settings.OUTCOME_REQUEUE_AFTER_SECONDS))
    ids = list(
        OutcomeSubmission.objects.filter(status=OutcomeSubmission.Status.PENDING, enqueued_at__lte=cutoff)
        .order_by("enqueued_at")
        .values_list("pk", flat=True)[:5000]
    )
    for submission_id in ids:
        # Mark first: a second sweep a moment later does not send it again.
        if OutcomeSubmission.objects.filter(
            pk=submission_id, status=OutcomeSubmission.Status.PENDING, enqueued_at__lte=cutoff
        ).update(enqueued_at=now):
            outcome_enqueue(submission_id)
    if ids:
        logger.info("re-enqueued %d pending outcome submissions", len(ids))
    return len(ids)
