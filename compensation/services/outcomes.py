"""The outcome path (docs/architecture.md): accept a choice in one transaction, record it in a task.

``outcome_submit`` checks the label, expiry and any earlier outcome, charges the
budget and writes the submission (the outbox); after commit the recording task
is enqueued. ``outcomes_record`` claims the pending submission under a row lock
(``SELECT … FOR UPDATE``, then marks it recorded), so a second delivery does
nothing, and writes everything the choice promises. A submission whose
recording keeps failing is marked ``failed`` after ``OUTCOME_MAX_ATTEMPTS``
and left for a manager to retry or release.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from compensation.authority import UNLIMITED, Authority, month_over_limit, user_authority
from compensation.engine import remedy_needs_approval
from compensation.errors import BudgetExhausted, Conflict, ErrorCode, InvalidInput, NotFound
from compensation.learning import StatisticsDelta
from compensation.models import (
    BudgetCharge,
    Coupon,
    CreditEntry,
    FollowUp,
    Offer,
    OfferSet,
    Outcome,
    OutcomeOption,
    OutcomeSubmission,
    PerkGrant,
    Remedy,
)
from compensation.periods import month_start
from compensation.queue import OUTCOME_FAILURE_NOTIFY, outcome_enqueue, task_send
from compensation.roles import Role, user_has_role
from compensation.services.budgets import PolicyCaps, budget_charge, budget_release, month_spend_upsert_sql
from compensation.services.escalations import (
    escalation_approval_open,
    escalation_open_for_incident,
    escalation_remedy_approval_open,
    manager_emails,
)
from compensation.services.learning import learning_counters_add
from compensation.sql import insert_select_sql
from policies.choices import OfferKind
from policies.models import Policy
from policies.money import cents

logger = logging.getLogger("compensation")

DECLINED = "declined"
COUPON_KINDS = frozenset({OfferKind.PERCENT_DISCOUNT, OfferKind.FREE_SHIPPING})
CREDIT_KINDS = frozenset({OfferKind.FIXED_CREDIT, OfferKind.REFUND})
FOLLOW_UP_DUE = timedelta(hours=24)
# Crockford's base 32: no I, L, O or U, so codes read out on the phone are not misheard.
COUPON_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _live_submission(offer_set_id: Any) -> OutcomeSubmission | None:
    return (
        OutcomeSubmission.objects.filter(offer_set_id=offer_set_id)
        .exclude(status=OutcomeSubmission.Status.REJECTED)
        .first()
    )


def _same_or_conflict(existing: OutcomeSubmission, choice: str) -> OutcomeSubmission:
    if existing.choice == choice:
        return existing  # the identical choice, already accepted
    raise Conflict(
        f"This offer set already has an outcome ({existing.choice!r}, {existing.status}).", ErrorCode.OUTCOME_EXISTS
    )


# --- The rules of a submission, defined once ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmissionFacts:
    """One row of :func:`_facts_sql`: the set, the chosen option (if the label names one) and each rule's answer."""

    offer_set_id: Any
    customer_id: int
    open: bool  # the set has not expired
    offer_id: int | None  # None: declined, or a label the set does not have
    policy_id: int | None
    estimated_cost: Decimal | None
    needs_approval: bool  # the option requires approval and the user is an agent
    policy_name: str | None
    monthly_cap: Decimal | None
    per_customer_cap_30d: Decimal | None

    @property
    def caps(self) -> PolicyCaps:
        return PolicyCaps(self.policy_name or "", self.monthly_cap, self.per_customer_cap_30d)


@functools.cache
def _facts_sql(*, agent: bool, vendor: str, customer: bool = False) -> str:
    """The submission's facts in one row; the single definition of who may answer a set, of expiry and of approval.

    No row: the set does not exist or the user may not answer it (an agent answers only their own sets).
    Both ways of submitting read it: :func:`_submitted_in_one_statement` as the first part of its
    statement, keeping the row only when every rule lets it through, and :func:`outcome_submit` as a
    query, to say which rule refused. ``customer``: the customer chooses on an event's page (any set of
    the event, which the caller found by the link's token; approval only where the option itself asks).
    """
    q = connection.ops.quote_name
    # Managers never need approval; an agent, or a customer choosing for themselves, where the option says so.
    needs_approval = "o.requires_approval" if agent or customer else "FALSE"
    return (
        f"SELECT s.id AS offer_set_id, s.customer_id, (s.expires_at > %s) AS open, "  # noqa: S608 - names only
        f"o.id AS offer_id, o.policy_id, o.estimated_cost, ({needs_approval}) AS needs_approval, "
        f"p.name AS policy_name, p.monthly_cap, p.per_customer_cap_30d "
        f"FROM {q(OfferSet._meta.db_table)} s "
        f"LEFT JOIN {q(Offer._meta.db_table)} o ON o.offer_set_id = s.id AND o.label = %s "
        f"LEFT JOIN {q(Policy._meta.db_table)} p ON p.id = o.policy_id "
        f"WHERE s.id = %s" + (" AND s.created_by_id = %s" if agent else "")
    )


def _facts_params(*, user: Any, agent: bool, offer_set_id: Any, choice: str, now: datetime) -> list[Any]:
    set_id = OfferSet._meta.pk.get_db_prep_value(offer_set_id, connection)
    return [connection.ops.adapt_datetimefield_value(now), choice, set_id, *([user.pk] if agent else [])]


def _facts(
    *, user: Any, offer_set_id: Any, choice: str, now: datetime, customer: bool = False
) -> SubmissionFacts | None:
    agent = not customer and not user_has_role(user, Role.MANAGER)
    with connection.cursor() as cursor:
        cursor.execute(
            _facts_sql(agent=agent, vendor=connection.vendor, customer=customer),
            _facts_params(user=user, agent=agent, offer_set_id=offer_set_id, choice=choice, now=now),
        )
        row = cursor.fetchone()
    if row is None:
        return None
    converters = {2: bool, 6: bool}  # SQLite answers booleans as 0 and 1
    values = [converters[i](v) if i in converters and v is not None else v for i, v in enumerate(row)]
    for i in (5, 8, 9):  # money: SQLite answers floats
        if values[i] is not None:
            values[i] = cents(Decimal(str(values[i])))
    values[0] = OfferSet._meta.pk.to_python(values[0])
    return SubmissionFacts(*values)


def _submission_for(
    *,
    user: Any,
    offer_set_id: Any,
    offer_id: int | None,
    choice: str,
    satisfaction: int | None,
    notes: str,
    now: datetime,
) -> OutcomeSubmission:
    """A new pending outbox row, its id made here."""
    return OutcomeSubmission(
        id=uuid.uuid4(),
        offer_set_id=offer_set_id,
        offer_id=offer_id,
        choice=choice,
        satisfaction=satisfaction,
        notes=notes,
        submitted_by=user,
        submitted_at=now,
        status=OutcomeSubmission.Status.PENDING,
        enqueued_at=now,
    )


def _submitted_in_one_statement(
    *,
    user: Any,
    offer_set_id: Any,
    choice: str,
    satisfaction: int | None,
    notes: str,
    now: datetime,
    customer: bool = False,
) -> OutcomeSubmission | None:
    """PostgreSQL, the common case: the facts, the charge and the outbox row in one statement.

    A data-modifying CTE: ``facts`` is :func:`_facts_sql`; ``chosen`` keeps its
    row when the set is open, the label names an option, no approval is needed
    and the policy has no per-customer cap (that one is checked under a lock,
    by :func:`~compensation.services.budgets.budget_charge`); ``spend`` is the
    month's conditional upsert (:func:`month_spend_upsert_sql`, shared with
    ``budget_charge``); the charge and the submission follow only if it was
    charged. A repeat hits the unique "one live submission per set" index. No
    row back (refused, or a case this statement leaves out) means
    :func:`outcome_submit` takes the general path, which says why. One
    statement is atomic, so no transaction round trips are needed.
    """
    agent = not customer and not user_has_role(user, Role.MANAGER)
    facts_sql = _facts_sql(agent=agent, vendor=connection.vendor, customer=customer)
    facts_params = _facts_params(user=user, agent=agent, offer_set_id=offer_set_id, choice=choice, now=now)
    spend_sql = month_spend_upsert_sql(
        "SELECT policy_id, CAST(%s AS date) AS month, estimated_cost AS spent, monthly_cap AS cap FROM chosen"
    )
    month = month_start(now)
    charge = BudgetCharge(created_at=now, month=month)
    charge_sql, charge_params = insert_select_sql(
        charge,
        source="chosen JOIN spend ON spend.policy_id = chosen.policy_id",
        columns={
            "policy_id": "chosen.policy_id",
            "customer_id": "chosen.customer_id",
            "amount": "chosen.estimated_cost",
        },
    )
    submission = _submission_for(
        user=user,
        offer_set_id=offer_set_id,
        offer_id=None,  # the statement fills in offer_id
        choice=choice,
        satisfaction=satisfaction,
        notes=notes,
        now=now,
    )
    submission_sql, submission_params = insert_select_sql(
        submission, source="chosen, charge", columns={"offer_id": "chosen.offer_id", "charge_id": "charge.id"}
    )
    sql = (
        f"WITH facts AS ({facts_sql}), "  # noqa: S608 - names only; values are parameters
        "chosen AS (SELECT * FROM facts WHERE open AND offer_id IS NOT NULL AND NOT needs_approval "
        "AND per_customer_cap_30d IS NULL), "
        f"spend AS ({spend_sql} RETURNING policy_id), charge AS ({charge_sql} RETURNING id) "
        f"{submission_sql} RETURNING offer_id, charge_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*facts_params, month, *charge_params, *submission_params])
        row = cursor.fetchone()
    if row is None:
        return None
    submission.offer_id, submission.charge_id = row
    submission._state.adding = False
    return submission


def outcome_submit(
    *,
    user: Any,
    offer_set_id: Any,
    choice: str,
    satisfaction: int | None = None,
    notes: str = "",
    now: datetime | None = None,
    by_customer: bool = False,
) -> OutcomeSubmission:
    """Accept the customer's choice: charge the budget and write the outbox row, atomically.

    ``by_customer``: the customer chose on an event's page (``user`` is the manager who posted the event,
    who made the set): no agent's limit applies, and the choice waits for approval only where the option
    itself requires it.

    Raises :class:`NotFound` when the user may not answer the set,
    :class:`InvalidInput` for a label the set does not have and
    :class:`Conflict` (``outcome_exists``, ``expired``, ``budget_exhausted``).
    On PostgreSQL the common case takes one statement and nothing is read
    first; the earlier outcome is looked up only when the write cannot go
    through, since the unique "one live submission per set" index decides.
    An agent whose groups set a monthly limit (compensation/authority.py)
    needs a manager's approval for a choice that takes them past it.
    """
    now = now or timezone.now()
    authority = UNLIMITED if by_customer else user_authority(user)
    # An agent with a monthly limit takes the general path, which counts the month under a lock.
    if connection.vendor == "postgresql" and choice != DECLINED and authority.per_month is None:
        try:
            with _savepoint():
                submission = _submitted_in_one_statement(
                    user=user,
                    offer_set_id=offer_set_id,
                    choice=choice,
                    satisfaction=satisfaction,
                    notes=notes,
                    now=now,
                    customer=by_customer,
                )
        except IntegrityError:
            submission = None  # a repeat, or a concurrent answer: the general path says which
        if submission is not None:
            transaction.on_commit(lambda: outcome_enqueue(submission.pk))
            return submission
    facts = _facts(user=user, offer_set_id=offer_set_id, choice=choice, now=now, customer=by_customer)
    if facts is None:
        raise NotFound("Not found.")
    if choice != DECLINED and facts.offer_id is None:
        labels = Offer.objects.filter(offer_set_id=offer_set_id).order_by("label").values_list("label", flat=True)
        valid = ", ".join([*labels, DECLINED])
        raise InvalidInput({"choice": [f"{choice!r} is not an option of this offer set; choose one of: {valid}"]})
    if not facts.open:
        existing = _live_submission(offer_set_id)
        if existing is not None:  # the same choice again, even after expiry, is answered as before
            return _same_or_conflict(existing, choice)
        # A manager may take hours to refuse an approval; the agent's new choice is still owed an answer.
        rejected = OutcomeSubmission.objects.filter(offer_set_id=offer_set_id, status=OutcomeSubmission.Status.REJECTED)
        if not rejected.exists():
            expires_at = OfferSet.objects.values_list("expires_at", flat=True).get(pk=offer_set_id)
            raise Conflict(
                f"This offer set expired at {expires_at.isoformat()}; ask for new options.", ErrorCode.EXPIRED
            )
    submission = _submission_for(
        user=user,
        offer_set_id=offer_set_id,
        offer_id=facts.offer_id,
        choice=choice,
        satisfaction=satisfaction,
        notes=notes,
        now=now,
    )
    try:
        with _savepoint():
            _write(submission=submission, facts=facts, user=user, authority=authority, now=now, by_customer=by_customer)
    except (IntegrityError, BudgetExhausted):
        # A live submission exists (a repeat, or a concurrent request that won): it decides the answer.
        existing = _live_submission(offer_set_id)
        if existing is None:
            raise
        return _same_or_conflict(existing, choice)
    if submission.status == OutcomeSubmission.Status.PENDING:
        transaction.on_commit(lambda: outcome_enqueue(submission.pk))
    return submission


def _savepoint() -> Any:
    """Inside a caller's transaction (Idempotency-Key, tests) a failed write must not break it."""
    return transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()


def _write(
    *,
    submission: OutcomeSubmission,
    facts: SubmissionFacts,
    user: Any,
    authority: Authority,
    now: datetime,
    by_customer: bool = False,
) -> None:
    """Charge the budget (unless declined) and save the submission, or raise and write nothing.

    The choice waits for a manager's approval when the option needs it, or when it takes the agent past
    their monthly limit (counted under a lock per agent, taken first, before the budget's locks).
    """
    if facts.offer_id is None:  # declined: nothing to charge
        submission.save(force_insert=True)
        return
    with transaction.atomic():
        over_month = None
        if authority.per_month is not None:
            over_month = month_over_limit(user=user, amount=facts.estimated_cost, limit=authority.per_month, now=now)
        needs_approval = facts.needs_approval or over_month is not None
        submission.charge = budget_charge(
            caps=facts.caps,
            policy_id=facts.policy_id,  # an option always has its policy (PROTECT)
            customer_id=facts.customer_id,
            amount=facts.estimated_cost,
            now=now,
        )
        if needs_approval:
            submission.status = OutcomeSubmission.Status.AWAITING_APPROVAL
            submission.enqueued_at = None
        submission.save(force_insert=True)
        if needs_approval:
            submission.offer = Offer.objects.select_related("offer_set").get(pk=facts.offer_id)
            submission.offer_set = submission.offer.offer_set
            submission.approval = escalation_approval_open(
                submission=submission,
                user=user,
                now=now,
                per_option=authority.per_option if facts.needs_approval else None,
                over_month=over_month,
                by_customer=by_customer,
            )
            submission.save(update_fields=["approval"])


def coupon_code_new() -> str:
    """``RCV-XXXX-XXXX-XXXX-XXXX``: 80 random bits; the unique index rejects the astronomically rare clash."""
    chars = "".join(secrets.choice(COUPON_ALPHABET) for _ in range(16))
    return "RCV-" + "-".join(chars[i : i + 4] for i in range(0, 16, 4))


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
        return [
            Coupon(
                code=coupon_code_new(),
                outcome=outcome,
                customer_id=customer_id,
                kind=offer.kind,
                value=offer.value,
                unit=offer.unit or "",
                max_amount=offer.max_amount,  # as the agent read it out, not as the template says now
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


RECORD_RELATED = ("offer", "offer_set__incident", "offer_set__customer", "offer_set__escalation")


def _claim(*, submission_id: Any, batch: int) -> list[OutcomeSubmission]:
    """Lock this submission and, if it is still pending, up to ``batch - 1`` other pending ones.

    Alone, the lock makes a second delivery wait and then find it recorded. In
    a batch, rows another worker holds are skipped (it is recording them), so
    workers never wait on each other; the oldest pending are taken first. A
    message whose submission a batch already recorded costs one lookup.
    """
    pending = OutcomeSubmission.objects.filter(status=OutcomeSubmission.Status.PENDING)
    queryset = pending.select_related(*RECORD_RELATED).order_by()
    claimed = list(queryset.select_for_update(of=("self",), skip_locked=batch > 1).filter(pk=submission_id))
    if not claimed or batch <= 1:
        return claimed
    oldest = pending.order_by("enqueued_at").select_for_update(skip_locked=True).values("pk")[: batch - 1]
    others = queryset.select_for_update(of=("self",), skip_locked=True).filter(pk__in=oldest).exclude(pk=submission_id)
    return claimed + list(others)


def _outcome_for(submission: OutcomeSubmission, now: datetime) -> Outcome:
    offer_set = submission.offer_set
    offer = submission.offer
    return Outcome(
        submission=submission,
        offer_set=offer_set,
        offer=offer,
        choice=submission.choice,
        accepted=offer is not None,
        kind=offer.kind if offer is not None else "",
        policy_id=offer.policy_id if offer is not None else None,
        category_id=offer_set.incident.category_id,
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


ShownRow = tuple[Any, Any, int, str, int | None, int]  # offer id, offer set id, policy id, kind, template id, rank


def _shown(outcomes: list[Outcome]) -> dict[Any, list[ShownRow]]:
    """The options each outcome's set showed, by offer set id (one query)."""
    rows = Offer.objects.filter(offer_set_id__in=[o.offer_set_id for o in outcomes]).values_list(
        "pk", "offer_set_id", "policy_id", "kind", "offer_template_id", "rank"
    )
    shown: dict[Any, list[ShownRow]] = {}
    for row in rows:
        shown.setdefault(row[1], []).append(row)
    return shown


def _statistics(outcomes: list[Outcome], shown: dict[Any, list[ShownRow]]) -> StatisticsDelta:
    """What these outcomes add to the learning counters: per (category, offer template), where each set showed
    it and whether it was chosen; per category, the outcome and the position chosen (declines choose none)."""
    delta = StatisticsDelta()
    for outcome in outcomes:
        rows = shown.get(outcome.offer_set_id, ())
        chosen_rank = next((row[5] for row in rows if row[0] == outcome.offer_id), None)
        delta.add(category_id=outcome.category_id, shown=[(row[4], row[5]) for row in rows], chosen_rank=chosen_rank)
    return delta


def _options(outcomes: list[Outcome], shown: dict[Any, list[ShownRow]]) -> list[OutcomeOption]:
    """What reports count as offered: each option the recorded sets showed, with the outcome's facts."""
    return [
        OutcomeOption(
            outcome=outcome,
            offer_id=offer_id,
            policy_id=policy_id,
            kind=kind,
            category_id=outcome.category_id,
            tier=outcome.tier,
            agent_id=outcome.agent_id,
            chosen=offer_id == outcome.offer_id,
            recorded_at=outcome.recorded_at,
        )
        for outcome in outcomes
        for offer_id, _, policy_id, kind, _, _ in shown.get(outcome.offer_set_id, ())
    ]


REMEDY_TO_GIVE = (Remedy.Status.PENDING, Remedy.Status.REJECTED)


def _remedies_to_give(outcomes: list[Outcome]) -> dict[int, list[Remedy]]:
    """The remedy items not given yet of these outcomes' incidents, locked, by incident id (one query).

    Locked: another worker recording another set of the same incident waits, then finds them given.
    """
    incident_ids = {outcome.offer_set.incident_id for outcome in outcomes}
    rows = Remedy.objects.select_for_update().filter(incident_id__in=incident_ids, status__in=REMEDY_TO_GIVE)
    grouped: dict[int, list[Remedy]] = {}
    for remedy in rows.order_by("pk"):
        grouped.setdefault(remedy.incident_id, []).append(remedy)
    return grouped


def _remedies_decide(outcomes: list[Outcome], *, now: datetime) -> list[Remedy]:
    """Each incident's remedy goes with its first outcome recorded: given now (the outcome counts its
    cost), or sent for a manager's approval when its summed cost is above the per-option limit of the
    agent who submitted the outcome, or its policy asks (managers never need approval). Returns the
    remedy rows changed, to save with the outcomes."""
    to_give = _remedies_to_give(outcomes)
    changed: list[Remedy] = []
    limits: dict[int, Decimal | None] = {}  # per submitting user: a batch reads each user's limit once
    for outcome in outcomes:
        remedies = to_give.pop(outcome.offer_set.incident_id, None)
        if not remedies:
            continue
        approval = None
        user = outcome.submission.submitted_by
        if user.pk not in limits:
            limits[user.pk] = user_authority(user).per_option
        if remedy_needs_approval([(r.estimated_cost, r.requires_approval) for r in remedies], limits[user.pk]):
            approval = escalation_remedy_approval_open(
                remedies=remedies, outcome=outcome, user=user, now=now, per_option=limits[user.pk]
            )
        for remedy in remedies:
            remedy.outcome = outcome
            remedy.tier = outcome.tier
            remedy.agent_id = outcome.agent_id
            remedy.approval = approval
            remedy.status = Remedy.Status.AWAITING_APPROVAL if approval else Remedy.Status.GIVEN
            remedy.given_at = None if approval else now
        if approval is None:
            outcome.remedy_cost = sum((r.estimated_cost for r in remedies), Decimal("0"))
        changed.extend(remedies)
    return changed


def outcomes_record(*, submission_id: Any, batch: int = 1, now: datetime | None = None) -> list[Outcome]:
    """Record this pending submission (and, with ``batch`` > 1, other pending ones) exactly once.

    The claim and every write are one transaction: the submission rows are
    locked, marked recorded, and the outcomes, the options they showed (what
    reports count as offered), coupons, credits, perk grants, follow-ups and
    statistics written in a handful of bulk statements. A
    submission already recorded, or locked by another worker, is left alone.
    Batching lets one task drain a backlog: the messages of submissions
    recorded in another's batch then find nothing to do. (The commit is fully
    durable: once GET shows a coupon code, a crash cannot change it.)

    When recording fails, the attempt counts against the submission
    (:func:`outcome_record_failed`) if it was the only one being recorded,
    and the error is raised again for the task's retries. A batch's failure
    is not pinned on any of them: each is then recorded alone at once, so
    the good ones are recorded and only the one that fails counts a failure
    (and the error is raised if it is this call's own submission).
    """
    now = now or timezone.now()
    if not OutcomeSubmission.objects.filter(pk=submission_id, status=OutcomeSubmission.Status.PENDING).exists():
        return []  # recorded (often in another's batch), awaiting approval or failed: one cheap read
    claimed: list[OutcomeSubmission] = []
    try:
        return _record_claimed(submission_id=submission_id, batch=batch, now=now, claimed=claimed)
    except Exception as exc:
        if len(claimed) <= 1:
            outcome_record_failed(submission_id=submission_id, error=exc, now=now)
            raise
        logger.warning("recording a batch of %d outcomes failed (%s); recording each alone", len(claimed), exc)
    recorded: list[Outcome] = []
    own_error: Exception | None = None
    for pk in sorted((s.pk for s in claimed), key=lambda pk: pk != submission_id):  # this call's own first
        try:
            recorded += outcomes_record(submission_id=pk, batch=1, now=now)
        except Exception as exc:  # counted against it alone; the sweep sends it again
            if pk == submission_id:
                own_error = exc
    if own_error is not None:
        raise own_error
    return recorded


def _record_claimed(
    *, submission_id: Any, batch: int, now: datetime, claimed: list[OutcomeSubmission]
) -> list[Outcome]:
    """:func:`outcomes_record`'s transaction; ``claimed`` is filled with the rows it claimed, for its caller."""
    with transaction.atomic():
        claimed.extend(_claim(submission_id=submission_id, batch=batch))
        if not claimed:
            return []
        OutcomeSubmission.objects.filter(pk__in=[s.pk for s in claimed]).update(
            status=OutcomeSubmission.Status.RECORDED, recorded_at=now
        )
        outcomes = [_outcome_for(s, now) for s in claimed]
        remedies = _remedies_decide(outcomes, now=now)
        outcomes = Outcome.objects.bulk_create(outcomes)
        if remedies:  # their outcome has its id now
            Remedy.objects.bulk_update(remedies, ["outcome", "tier", "agent", "approval", "status", "given_at"])
        issued: dict[type, list[Any]] = {}
        for outcome in outcomes:
            if outcome.offer is not None:
                for row in _issued(outcome, outcome.offer, now=now):
                    issued.setdefault(type(row), []).append(row)
        for model, rows in issued.items():
            model.objects.bulk_create(rows)
        FollowUp.objects.bulk_create([f for outcome in outcomes for f in _follow_ups(outcome, now)])
        shown = _shown(outcomes)
        OutcomeOption.objects.bulk_create(_options(outcomes, shown))
        learning_counters_add(delta=_statistics(outcomes, shown))
        for outcome in outcomes:
            if outcome.offer is not None and outcome.offer.kind == OfferKind.ESCALATION:
                _escalate(outcome, outcome.offer, now=now)
    return outcomes


ERROR_MAX_CHARS = 2000


def error_text(error: BaseException) -> str:
    """``module.Class: message`` (builtins without their module), cut to ``ERROR_MAX_CHARS``."""
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    text = f"{name}: {error}".strip()
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


def outcome_record_failed(*, submission_id: Any, error: BaseException, now: datetime) -> OutcomeSubmission | None:
    """Count a failed recording attempt, in a transaction of its own so the count outlives the rollback.

    Keeps the last error; the ``OUTCOME_MAX_ATTEMPTS``-th failure marks the submission ``failed``: no
    longer sent again, its budget still reserved, and the managers told once (after commit, through
    Celery). Returns the submission, or None when it is no longer pending or the count could not be
    written (the database itself failing: then nothing is lost, it stays pending and is sent again).
    """
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()  # a broken connection is replaced, not reused
    try:
        with transaction.atomic():
            submission = (
                OutcomeSubmission.objects.select_for_update()
                .filter(pk=submission_id, status=OutcomeSubmission.Status.PENDING)
                .first()
            )
            if submission is None:
                return None
            submission.attempts += 1
            submission.last_error = error_text(error)
            fields = ["attempts", "last_error"]
            if submission.attempts >= settings.OUTCOME_MAX_ATTEMPTS:
                submission.status = OutcomeSubmission.Status.FAILED
                submission.failed_at = now
                fields += ["status", "failed_at"]
                pk = submission.pk
                transaction.on_commit(lambda: task_send(OUTCOME_FAILURE_NOTIFY, str(pk)))
            submission.save(update_fields=fields)
    except DatabaseError:
        logger.warning("could not count the failed recording of submission %s", submission_id, exc_info=True)
        return None
    if submission.status == OutcomeSubmission.Status.FAILED:
        logger.error(
            "outcome submission %s failed %d times and is no longer retried: %s",
            submission_id,
            submission.attempts,
            submission.last_error,
        )
    else:
        logger.warning(
            "recording outcome submission %s failed (attempt %d of %d): %s",
            submission_id,
            submission.attempts,
            settings.OUTCOME_MAX_ATTEMPTS,
            submission.last_error,
        )
    return submission


def outcome_failure_notify(*, submission_id: Any, now: datetime | None = None) -> bool:
    """E-mail the managers, once, that a submission failed; False when there was nothing to send.

    Under a lock on the submission, so two deliveries of the task send one e-mail; if sending fails,
    nothing is marked and the task's retry, or the requeue sweep, sends it later.
    """
    now = now or timezone.now()
    with transaction.atomic():
        submission = (
            OutcomeSubmission.objects.select_for_update(of=("self",))
            .select_related("offer", "offer_set__customer", "offer_set__incident__category", "submitted_by")
            .filter(pk=submission_id, status=OutcomeSubmission.Status.FAILED, failure_notified_at=None)
            .first()
        )
        if submission is None:
            return False
        recipients = manager_emails()
        if recipients:
            context = {
                "submission": submission,
                "offer_set": submission.offer_set,
                "base_url": settings.PUBLIC_BASE_URL,
            }
            send_mail(
                f"Outcome not recorded: offer set {submission.offer_set_id} (choice {submission.choice})",
                render_to_string("email/outcome_failed.txt", context),
                None,
                recipients,
            )
        else:
            logger.warning("failed outcome submission %s: no manager has an e-mail address to notify", submission_id)
        submission.failure_notified_at = now
        submission.save(update_fields=["failure_notified_at"])
    return bool(recipients)


def _failed_locked(submission_id: Any, verb: str) -> OutcomeSubmission:
    submission = (
        OutcomeSubmission.objects.select_for_update(of=("self",))
        .select_related("charge")
        .filter(pk=submission_id)
        .first()
    )
    if submission is None:
        raise NotFound(f"Outcome submission {submission_id} does not exist.")
    if submission.status != OutcomeSubmission.Status.FAILED:
        raise Conflict(f"Submission {submission.pk} is {submission.status}; only failed submissions can be {verb}.")
    return submission


def outcome_submission_retry(*, submission_id: Any, now: datetime | None = None) -> OutcomeSubmission:
    """Send a failed submission to be recorded again (once the fault is fixed): pending, its attempts from
    zero, enqueued after commit. Recording claims it, so it is recorded once however often it is sent."""
    now = now or timezone.now()
    with transaction.atomic():
        submission = _failed_locked(submission_id, "retried")
        submission.status = OutcomeSubmission.Status.PENDING
        submission.attempts = 0
        submission.failed_at = None
        submission.failure_notified_at = None  # should it fail again, the managers hear of it again
        submission.enqueued_at = now
        submission.save(update_fields=["status", "attempts", "failed_at", "failure_notified_at", "enqueued_at"])
        transaction.on_commit(lambda: outcome_enqueue(submission.pk))
    return submission


def outcome_submission_release(*, submission_id: Any, now: datetime | None = None) -> OutcomeSubmission:
    """Give up on a failed submission: ``rejected``, its budget charge released as a refused approval's is;
    the agent may post a new choice."""
    now = now or timezone.now()
    with transaction.atomic():
        submission = _failed_locked(submission_id, "released")
        if submission.charge is not None:
            budget_release(charge=submission.charge, now=now)
        submission.status = OutcomeSubmission.Status.REJECTED
        submission.save(update_fields=["status"])
    return submission


def outcome_record(*, submission_id: Any, now: datetime | None = None) -> Outcome | None:
    """Record one pending submission once; None when it is not pending (recorded, awaiting approval, failed)."""
    recorded = outcomes_record(submission_id=submission_id, batch=1, now=now)
    return recorded[0] if recorded else None


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
    # Failed ones are not sent again; the managers' e-mail is, if it has not gone out (a broker or mail outage).
    unnotified = OutcomeSubmission.objects.filter(
        status=OutcomeSubmission.Status.FAILED, failure_notified_at=None, failed_at__lte=cutoff
    ).values_list("pk", flat=True)[:100]
    for submission_id in unnotified:
        task_send(OUTCOME_FAILURE_NOTIFY, str(submission_id))
    return len(ids)
