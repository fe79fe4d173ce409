"""The outcome path of DESIGN.md: accept a choice in one transaction, record it in a task.

``outcome_submit`` checks the label, expiry and any earlier outcome, charges the
budget and writes the submission (the outbox); after commit the recording task
is enqueued. ``outcome_record`` claims the submission with a conditional update,
so a second delivery does nothing, and writes everything the choice promises.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import uuid
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
    BudgetCharge,
    Coupon,
    CreditEntry,
    FollowUp,
    Offer,
    OfferSet,
    Outcome,
    OutcomeSubmission,
    PerkGrant,
)
from compensation.roles import Role, user_has_role
from compensation.selectors import budget_month
from compensation.services.budgets import (
    BudgetExhausted,
    PolicyCaps,
    budget_charge,
    insert_select_sql,
    month_fits,
    month_spend_add_sql,
    policy_caps,
)
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


def _submission_for(
    *,
    user: Any,
    offer_set: OfferSet,
    offer: Offer | None,
    choice: str,
    satisfaction: int | None,
    notes: str,
    now: datetime,
) -> OutcomeSubmission:
    return OutcomeSubmission(
        id=uuid.uuid4(),
        offer_set=offer_set,
        offer=offer,
        choice=choice,
        satisfaction=satisfaction,
        notes=notes,
        submitted_by=user,
        submitted_at=now,
        status=OutcomeSubmission.Status.PENDING,
        enqueued_at=now,
    )


def _charged_and_saved(*, submission: OutcomeSubmission, offer: Offer, caps: PolicyCaps, now: datetime) -> bool:
    """PostgreSQL: charge the month, write the charge and the submission in one statement.

    A data-modifying CTE: the month's conditional upsert feeds the charge
    insert, which feeds the submission insert. When the budget is short, the
    upsert returns no row, nothing is written and this returns False. One
    statement is atomic, so no transaction round trips are needed.
    """
    if not month_fits(offer.estimated_cost, caps.monthly_cap):
        return False
    month = budget_month(now)
    charge = BudgetCharge(
        policy_id=offer.policy_id,
        customer_id=submission.offer_set.customer_id,
        amount=offer.estimated_cost,
        created_at=now,
        month=month,
    )
    spend_sql, spend_params = month_spend_add_sql(
        policy_id=offer.policy_id, month=month, amount=offer.estimated_cost, cap=caps.monthly_cap
    )
    charge_sql, charge_params = insert_select_sql(charge, source="spend")
    submission_sql, submission_params = insert_select_sql(submission, source="charge", columns={"charge_id": "id"})
    sql = f"WITH spend AS ({spend_sql}), charge AS ({charge_sql} RETURNING id) {submission_sql} RETURNING charge_id"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*spend_params, *charge_params, *submission_params])
        row = cursor.fetchone()
    if row is None:
        return False
    submission.charge_id = row[0]
    submission._state.adding = False
    return True


def outcome_submit(
    *,
    user: Any,
    offer_set: OfferSet,
    offers: Iterable[Offer] | None = None,
    choice: str,
    satisfaction: int | None = None,
    notes: str = "",
    now: datetime | None = None,
) -> Submitted:
    """Accept the customer's choice: charge the budget and write the outbox row, atomically.

    Raises ``ValidationError`` for a label the set does not have and
    :class:`Conflict` (``outcome_exists``, ``expired``, ``budget_exhausted``).
    The common case (no per-customer cap, no approval, PostgreSQL) is a single
    statement; the earlier outcome is looked up only when the write cannot go
    through, since the unique "one live submission per set" index decides.
    """
    now = now or timezone.now()
    by_label = _labels(offer_set.offers.all() if offers is None else offers)
    if choice != DECLINED and choice not in by_label:
        valid = ", ".join([*sorted(by_label), DECLINED])
        raise ValidationError({"choice": [f"{choice!r} is not an option of this offer set; choose one of: {valid}"]})
    if offer_set.expires_at <= now:
        existing = _live_submission(offer_set)
        if existing is not None:  # the same choice again, even after expiry, is answered as before
            return _same_or_conflict(existing, choice)
        # A manager may take hours to refuse an approval; the agent's new choice is still owed an answer.
        rejected = OutcomeSubmission.objects.filter(offer_set=offer_set, status=OutcomeSubmission.Status.REJECTED)
        if not rejected.exists():
            raise Conflict(
                f"This offer set expired at {offer_set.expires_at.isoformat()}; ask for new options.", "expired"
            )
    offer = by_label.get(choice)
    submission = _submission_for(
        user=user, offer_set=offer_set, offer=offer, choice=choice, satisfaction=satisfaction, notes=notes, now=now
    )
    # Inside a caller's transaction (Idempotency-Key, tests) a failed write must not break it: a savepoint.
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with guard:
            _write(submission=submission, offer=offer, user=user, now=now)
    except (IntegrityError, BudgetExhausted):
        # A live submission exists (a repeat, or a concurrent request that won): it decides the answer.
        existing = _live_submission(offer_set)
        if existing is None:
            raise
        return _same_or_conflict(existing, choice)
    if submission.status == OutcomeSubmission.Status.PENDING:
        transaction.on_commit(lambda: outcome_enqueue(submission.pk))
    return Submitted(submission, created=True)


def _write(*, submission: OutcomeSubmission, offer: Offer | None, user: Any, now: datetime) -> None:
    """Charge the budget (unless declined) and save the submission, or raise and write nothing."""
    if offer is None:  # declined: nothing to charge
        submission.save(force_insert=True)
        return
    needs_approval = offer.requires_approval and not user_has_role(user, Role.MANAGER)
    caps = policy_caps(offer.policy_id)
    if caps is None:
        raise BudgetExhausted("The policy of this option no longer exists.")
    if caps.per_customer_cap_30d is None and not needs_approval and connection.vendor == "postgresql":
        if not _charged_and_saved(submission=submission, offer=offer, caps=caps, now=now):
            raise BudgetExhausted(f"Policy {caps.name!r} has not enough monthly budget left for this option.")
        return
    with transaction.atomic():
        submission.charge = budget_charge(
            caps=caps,
            policy_id=offer.policy_id,
            customer_id=submission.offer_set.customer_id,
            amount=offer.estimated_cost,
            now=now,
        )
        if needs_approval:
            submission.status = OutcomeSubmission.Status.AWAITING_APPROVAL
            submission.enqueued_at = None
        submission.save(force_insert=True)
        if needs_approval:
            submission.approval = escalation_approval_open(submission=submission, user=user, now=now)
            submission.save(update_fields=["approval"])


def coupon_code_new() -> str:
    """``RCV-XXXX-XXXX-XXXX-XXXX``: 80 random bits; the unique index rejects the astronomically rare clash."""
    chars = "".join(secrets.choice(COUPON_ALPHABET) for _ in range(16))
    return "RCV-" + "-".join(chars[i : i + 4] for i in range(0, 16, 4))


def acceptance_stats_sql(*, offer_set_id: Any, category_id: int, chosen: int | None) -> tuple[str, list]:
    """One more showing of each offer template of the set and, for the chosen one, one more choice.

    An upsert with atomic increments that reads the set's options itself; rows
    in template order, so concurrent recordings lock them in the same order.
    Templates deleted since the set was made are skipped.
    """
    q = connection.ops.quote_name
    stat = q(AcceptanceStat._meta.db_table)
    offers = q(Offer._meta.db_table)
    templates = q(Offer._meta.get_field("offer_template").related_model._meta.db_table)
    sql = (
        f"INSERT INTO {stat} (offer_template_id, category_id, offered, chosen) "  # noqa: S608
        f"SELECT DISTINCT t.id, %s, 1, CASE WHEN t.id = %s THEN 1 ELSE 0 END "
        f"FROM {offers} o JOIN {templates} t ON t.id = o.offer_template_id "
        f"WHERE o.offer_set_id = %s ORDER BY t.id "
        f"ON CONFLICT (category_id, offer_template_id) DO UPDATE SET "
        f"offered = {stat}.offered + EXCLUDED.offered, chosen = {stat}.chosen + EXCLUDED.chosen"
    )
    offer_set_param = Offer._meta.get_field("offer_set").get_db_prep_value(offer_set_id, connection)
    return sql, [category_id, chosen or 0, offer_set_param]


def acceptance_stats_add(*, offer_set_id: Any, category_id: int, chosen: int | None) -> None:
    """Run :func:`acceptance_stats_sql` on its own (SQLite, and callers outside recording)."""
    sql, params = acceptance_stats_sql(offer_set_id=offer_set_id, category_id=category_id, chosen=chosen)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


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


def _issued(outcome: Outcome, offer: Offer, *, now: datetime) -> list[Coupon | CreditEntry | PerkGrant]:
    """What the chosen option promises, as unsaved rows: a coupon, a credit or a perk grant."""
    customer_id = outcome.customer_id
    if offer.kind in COUPON_KINDS:
        template = offer.offer_template
        return [
            Coupon(
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
        ]
    if offer.kind in CREDIT_KINDS:
        # A refund's value is a percentage: what goes back is the amount computed for this order.
        amount = offer.estimated_cost if offer.kind == OfferKind.REFUND else offer.value
        return [
            CreditEntry(
                outcome=outcome,
                customer_id=customer_id,
                kind=offer.kind,
                amount=amount if amount is not None else Decimal("0"),
                currency=offer.currency,
                created_at=now,
            )
        ]
    if offer.kind == OfferKind.PERSONALIZED_PERK and offer.perk_id is not None:
        return [PerkGrant(customer_id=customer_id, perk_id=offer.perk_id, granted_at=now)]
    return []


def _escalate(outcome: Outcome, offer: Offer, *, now: datetime) -> None:
    """The customer chose a senior manager: the set's open escalation, or a new one (which tells the managers)."""
    offer_set = outcome.offer_set
    existing = offer_set.escalation
    if existing is not None and not existing.is_closed:
        return  # the set already opened one: reuse it
    escalation, _ = escalation_open_for_incident(
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


def _outcome_rows_insert(
    *, outcome: Outcome, submission: OutcomeSubmission, rows: list[Any], chosen_template_id: int | None
) -> None:
    """PostgreSQL: the claim, the outcome, what it issues, its follow-ups and the statistics in one statement."""
    outcome_sql, params = insert_select_sql(outcome, source=None)
    parts = [f"outcome AS ({outcome_sql} RETURNING id)"]
    q = connection.ops.quote_name
    parts.append(
        f"claim AS (UPDATE {q(OutcomeSubmission._meta.db_table)} SET status = %s, recorded_at = %s WHERE id = %s)"  # noqa: S608
    )
    params += [submission.status, submission.recorded_at, submission.pk]
    for n, row in enumerate(rows):
        link = {"outcome_id": "id"} if any(f.column == "outcome_id" for f in row._meta.concrete_fields) else {}
        sql, row_params = insert_select_sql(row, source="outcome", columns=link)
        parts.append(f"row{n} AS ({sql})")
        params += row_params
    stats_sql, stats_params = acceptance_stats_sql(
        offer_set_id=outcome.offer_set_id, category_id=outcome.category_id, chosen=chosen_template_id
    )
    parts.append(f"stats AS ({stats_sql})")
    params += stats_params
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT id FROM outcome", params)  # noqa: S608 - names only  # noqa: S608 - names only
        outcome.pk = cursor.fetchone()[0]
    outcome._state.adding = False


def outcome_record(*, submission_id: Any, now: datetime | None = None) -> Outcome | None:
    """Record a pending submission once; None when it is not pending (already recorded, or awaiting approval).

    The claim and every write are one transaction, committed without waiting
    for the disk (PostgreSQL): should the database lose that commit in a crash,
    the submission is pending again, durably, and the requeue task records it.
    On PostgreSQL that is three round trips: the locked read, one statement for
    every write, and the commit.
    """
    now = now or timezone.now()
    postgres = connection.vendor == "postgresql"
    with transaction.atomic():
        queryset = OutcomeSubmission.objects.select_related(
            "offer__offer_template", "offer_set__incident", "offer_set__customer", "offer_set__escalation"
        ).select_for_update(of=("self",))
        if postgres:
            # Relax this transaction's commit (see above) in the same round trip as the claim.
            queryset = queryset.extra(select={"_relaxed": "set_config('synchronous_commit', 'off', true)"})
        # The claim: the row lock makes a second delivery wait, then find it recorded.
        submission = queryset.filter(pk=submission_id, status=OutcomeSubmission.Status.PENDING).first()
        if submission is None:
            return None
        submission.status = OutcomeSubmission.Status.RECORDED
        submission.recorded_at = now
        offer_set = submission.offer_set
        offer = submission.offer
        incident = offer_set.incident
        outcome = Outcome(
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
        issued = _issued(outcome, offer, now=now) if offer is not None else []
        follow_ups = _follow_ups(outcome, now)
        chosen_template_id = offer.offer_template_id if offer is not None else None
        if postgres:
            _outcome_rows_insert(
                outcome=outcome,
                submission=submission,
                rows=[*issued, *follow_ups],
                chosen_template_id=chosen_template_id,
            )
        else:
            submission.save(update_fields=["status", "recorded_at"])
            outcome.save(force_insert=True)
            for row in issued:
                row.save(force_insert=True)
            FollowUp.objects.bulk_create(follow_ups)
            acceptance_stats_add(offer_set_id=offer_set.pk, category_id=incident.category_id, chosen=chosen_template_id)
        if offer is not None and offer.kind == OfferKind.ESCALATION:
            _escalate(outcome, offer, now=now)
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
