"""What happens at run time: customers, incidents, offer sets and their options,
escalations, budget spending and the acceptance statistics ranking learns from."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q

from policies.choices import Fault, OfferKind, Tier
from policies.models import MONEY, Category, OfferTemplate, Perk, Policy, RemedyTemplate


class Customer(models.Model):
    external_id = models.CharField("external id", max_length=64, unique=True)
    name = models.CharField("name", max_length=200, blank=True)
    email = models.EmailField("e-mail", blank=True)
    tier = models.CharField("tier", max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    lifetime_value = models.DecimalField("lifetime value", **MONEY, default=0)
    interests = models.JSONField("interests", default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(lifetime_value__gte=0), name="customer_ltv_gte_0")]

    def __str__(self) -> str:
        return f"{self.name or self.external_id} ({self.external_id})"


class CustomerChange(models.Model):
    """One field of a stored customer changed: who changed it, when, from what to what.

    Written by the same statement path that updates the customer, so no change goes unrecorded.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="changes", db_index=False)
    at = models.DateTimeField("at")
    by = models.CharField("by", max_length=150, help_text="The username of whoever made the change.")
    field = models.CharField("field", max_length=32)
    old = models.JSONField("old value", null=True, blank=True)
    new = models.JSONField("new value", null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["customer", "-at"], name="customerchange_customer_time")]

    def __str__(self) -> str:
        return f"{self.field} changed by {self.by}"


class AuthorityLimit(models.Model):
    """How much an agent in this group may give without a manager's approval, per option and per month.

    An agent's limit is the highest of their groups' that set one; with none,
    ``AGENT_APPROVAL_LIMIT`` per option and no monthly limit.
    """

    group = models.OneToOneField(
        "auth.Group", on_delete=models.CASCADE, related_name="authority_limit", verbose_name="group"
    )
    per_option = models.DecimalField(
        "per option", **MONEY, null=True, blank=True, help_text="The most one chosen option may cost."
    )
    per_month = models.DecimalField(
        "per month",
        **MONEY,
        null=True,
        blank=True,
        help_text="The most an agent's chosen options may cost in a calendar month; empty for no monthly limit.",
    )

    class Meta:
        verbose_name = "authority limit"
        constraints = [
            models.CheckConstraint(
                condition=Q(per_option__isnull=True) | Q(per_option__gte=0), name="authoritylimit_per_option_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(per_month__isnull=True) | Q(per_month__gte=0), name="authoritylimit_per_month_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"Authority limit of {self.group}"


class Incident(models.Model):
    # No index of its own: (customer, occurred_at) below serves it, one index less to write per incident.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="incidents", db_index=False)
    external_ref = models.CharField(  # noqa: DJ001 - NULL, not "", means "no ticket" for the unique constraint
        "ticket reference", max_length=128, null=True, blank=True
    )
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="incidents")
    severity = models.PositiveSmallIntegerField("severity")
    fault = models.CharField("fault", max_length=16, choices=Fault.choices, default=Fault.COMPANY)
    correctable = models.BooleanField("correctable", default=True)
    order_value = models.DecimalField("order value", **MONEY, default=0)
    currency = models.CharField("currency", max_length=3)
    description = models.TextField("description", blank=True)
    occurred_at = models.DateTimeField("occurred at")
    repeat_count = models.PositiveIntegerField(
        "incidents in window", default=1, help_text="This customer's incidents in the repeat window, this one included."
    )
    same_category_repeat_count = models.PositiveIntegerField("same-category incidents in window", default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "external_ref"],
                condition=Q(external_ref__isnull=False),
                name="incident_customer_ref_unique",
            ),
            models.CheckConstraint(condition=Q(severity__gte=1, severity__lte=5), name="incident_severity_1_5"),
            models.CheckConstraint(condition=Q(order_value__gte=0), name="incident_order_value_gte_0"),
        ]
        indexes = [models.Index(fields=["customer", "occurred_at"], name="incident_customer_time")]

    def __str__(self) -> str:
        return f"{self.category_id} for {self.customer_id} ({self.external_ref or self.pk})"


class OfferSet(models.Model):
    """The a/b/c options an agent was given: an immutable snapshot."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(  # indexed by offerset_agent_time below
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="offer_sets",
        verbose_name="agent",
        db_index=False,
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="offer_sets")
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="offer_sets")
    policy_revision = models.PositiveBigIntegerField("policy revision")
    created_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField()
    not_offered = models.JSONField("policies that gave no option", default=list, blank=True)
    email = models.EmailField(
        "customer e-mail",
        blank=True,
        help_text="The customer's e-mail when the set was made: follow-ups go here, never to a later change.",
    )
    escalation = models.ForeignKey(
        "Escalation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The senior-manager escalation a policy opened (or reused) for this set.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_by", "-created_at"], name="offerset_agent_time")]

    def __str__(self) -> str:
        return str(self.id)


class Offer(models.Model):
    """One labelled option of an offer set, exactly as it was shown."""

    # Indexed by the unique (offer_set, label) constraint below.
    offer_set = models.ForeignKey(OfferSet, on_delete=models.CASCADE, related_name="offers", db_index=False)
    label = models.CharField(max_length=1)
    rank = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=32, choices=OfferKind.choices)
    title = models.TextField()  # rendered: names and perks can make it longer than its template
    message = models.TextField(blank=True)
    value = models.DecimalField(**MONEY, null=True)
    unit = models.CharField(max_length=16, null=True)  # noqa: DJ001 - the API shows null for escalations
    estimated_cost = models.DecimalField(**MONEY)
    max_amount = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="The cap of a percent discount or refund, as shown."
    )
    currency = models.CharField(max_length=3)
    requires_approval = models.BooleanField(default=False)
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="+")
    policy_name = models.CharField(max_length=120)
    policy_version = models.PositiveIntegerField()
    offer_template = models.ForeignKey(OfferTemplate, null=True, on_delete=models.SET_NULL, related_name="+")
    perk = models.ForeignKey(Perk, null=True, on_delete=models.SET_NULL, related_name="+")
    expires_in_days = models.PositiveIntegerField(null=True)
    score = models.FloatField()
    score_breakdown = models.JSONField(default=dict)
    propensity_mean = models.FloatField(
        null=True, help_text="The posterior mean of its propensity when ranked (none for sets made before v2)."
    )
    reasons = models.JSONField(default=list)

    class Meta:
        ordering = ["offer_set", "rank"]
        constraints = [models.UniqueConstraint(fields=["offer_set", "label"], name="offer_label_unique")]

    def __str__(self) -> str:
        return f"{self.label}) {self.title}"


class Remedy(models.Model):
    """One thing an incident is owed put right (a refund, a replacement, ...), whatever the customer chooses.

    Written with the first offer set of the incident that carried it; given once, with the incident's
    first recorded outcome (any choice, declined included), after a manager's approval when it costs
    more than the agent may give. Never charged to a budget. Reports count it apart as remedy cost.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (given with the incident's first recorded outcome)"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting a manager's approval"
        GIVEN = "given", "Given"
        REJECTED = "rejected", "Rejected (tried again at the incident's next recorded outcome)"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="remedies", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="remedies")
    offer_set = models.ForeignKey(
        OfferSet, on_delete=models.CASCADE, related_name="+", help_text="The offer set that first showed it."
    )
    kind = models.CharField(max_length=32, choices=OfferKind.choices)
    title = models.TextField()
    message = models.TextField(blank=True)
    value = models.DecimalField(**MONEY, null=True)
    unit = models.CharField(max_length=16, null=True)  # noqa: DJ001 - as options show it
    estimated_cost = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    requires_approval = models.BooleanField(default=False)
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="+", db_index=False)
    policy_name = models.CharField(max_length=120)
    policy_version = models.PositiveIntegerField()
    remedy_template = models.ForeignKey(RemedyTemplate, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    given_at = models.DateTimeField(null=True, blank=True)
    outcome = models.ForeignKey(
        "Outcome",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="remedies",
        help_text="The recorded outcome it was given (or asked approval) with.",
    )
    approval = models.ForeignKey(
        "Escalation", null=True, blank=True, on_delete=models.SET_NULL, related_name="remedies"
    )
    # What reports group by, copied in when given: the category, the tier, the agent who made the set.
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+", db_index=False)
    tier = models.CharField(max_length=16, choices=Tier.choices, blank=True)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        verbose_name_plural = "remedies"
        ordering = ["incident", "pk"]
        constraints = [models.UniqueConstraint(fields=["incident", "kind"], name="remedy_one_per_kind")]
        indexes = [models.Index(fields=["given_at"], condition=Q(status="given"), name="remedy_given_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for incident {self.incident_id} ({self.status})"


class Escalation(models.Model):
    class Kind(models.TextChoices):
        SENIOR_MANAGER = "senior_manager", "Senior manager"
        APPROVAL = "approval", "Approval"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    reason = models.TextField()
    due_at = models.DateTimeField()
    offer_set = models.ForeignKey(
        OfferSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="escalations"
    )
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="escalations")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="escalations")
    policy = models.ForeignKey(Policy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the managers were told by e-mail that it was opened."
    )
    overdue_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the managers were told, once, that it passed its due time."
    )

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [models.Index(fields=["status", "due_at"], name="escalation_status_due")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_closed(self) -> bool:
        return self.status not in (self.Status.OPEN, self.Status.ACKNOWLEDGED)

    def is_overdue(self, now: datetime) -> bool:
        return not self.is_closed and self.due_at < now


class PolicyMonthSpend(models.Model):
    """What a policy spent in one calendar month; charged with one conditional update."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="month_spends")
    month = models.DateField(help_text="First day of the month, in TIME_ZONE.")
    spent = models.DecimalField(**MONEY, default=0)
    cap = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="The policy's monthly budget when it was last charged."
    )
    alerted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When managers were e-mailed that this month's spend passed 80% of the cap (once a month).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "month"], name="policy_month_unique"),
            models.CheckConstraint(condition=Q(spent__gte=0), name="policy_month_spent_gte_0"),
            # The backstop behind the conditional update: never more spent than the cap.
            models.CheckConstraint(
                condition=Q(cap__isnull=True) | Q(spent__lte=models.F("cap")), name="policy_month_spent_lte_cap"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy_id} {self.month:%Y-%m}: {self.spent}"


class BudgetCharge(models.Model):
    """One amount charged to a policy for a customer; the 30-day per-customer cap sums these."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="budget_charges")
    amount = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(db_index=True)
    month = models.DateField(help_text="The budget month charged, as in PolicyMonthSpend.")
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["customer", "policy", "created_at"], name="charge_customer_policy_time")]

    def __str__(self) -> str:
        return f"{self.amount} to {self.policy_id} for {self.customer_id}"


class PerkGrant(models.Model):
    """A perk a customer received, so the engine does not offer it again too soon."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="perk_grants")
    perk = models.ForeignKey(Perk, on_delete=models.CASCADE, related_name="+")
    granted_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["customer", "granted_at"], name="perkgrant_customer_time")]

    def __str__(self) -> str:
        return f"{self.perk_id} to {self.customer_id}"


class AcceptanceStat(models.Model):
    """How often an offer template was shown (at a, b and c) and chosen, per incident category.

    Counted by the recording worker for sets with a recorded outcome, declined
    ones included. Each (category, template) has up to ``STAT_SHARDS`` rows,
    one per shard, so concurrent recordings seldom wait on one row; readers
    sum them (compensation/learning.py).
    """

    offer_template = models.ForeignKey(OfferTemplate, on_delete=models.CASCADE, related_name="+")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    shard = models.PositiveSmallIntegerField(default=0)
    offered = models.PositiveIntegerField(default=0, help_text="Recorded sets that showed it (a + b + c).")
    shown_a = models.PositiveIntegerField(default=0)
    shown_b = models.PositiveIntegerField(default=0)
    shown_c = models.PositiveIntegerField(default=0)
    chosen = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["category", "offer_template", "shard"], name="acceptance_category_template_shard"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.offer_template_id}/{self.category_id}#{self.shard}: {self.chosen}/{self.offered}"


class PositionStat(models.Model):
    """Per incident category: recorded outcomes, and how many chose the option at a, b and c.

    The position shares of clicks over expected clicks (declines count in
    ``outcomes`` and choose none). Sharded like ``AcceptanceStat``: every
    recording in a category adds here, so one row would make them queue.
    """

    # Indexed by the unique (category, shard) constraint below.
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+", db_index=False)
    shard = models.PositiveSmallIntegerField(default=0)
    outcomes = models.PositiveIntegerField(default=0)
    chosen_a = models.PositiveIntegerField(default=0)
    chosen_b = models.PositiveIntegerField(default=0)
    chosen_c = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["category", "shard"], name="position_category_shard")]

    def __str__(self) -> str:
        return f"{self.category_id}#{self.shard}: {self.chosen_a}/{self.chosen_b}/{self.chosen_c} of {self.outcomes}"


class IdempotencyRecord(models.Model):
    """A response kept for 24 hours under a client's ``Idempotency-Key``."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=200)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "scope", "key"], name="idempotency_user_scope_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


class OutcomeSubmission(models.Model):
    """The outbox: a customer's choice as the API accepted it, budget already charged.

    The recording task turns it into an :class:`Outcome`; a periodic task
    re-enqueues any left pending, so nothing the API accepted is lost.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (accepted, not yet recorded)"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        RECORDED = "recorded", "Recorded"
        REJECTED = "rejected", "Rejected (approval refused, or released after failing)"
        FAILED = "failed", "Failed (recording kept failing; retry or release)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    offer_set = models.ForeignKey(OfferSet, on_delete=models.PROTECT, related_name="submissions")
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    choice = models.CharField(max_length=16, help_text="The option's label, or 'declined'.")
    satisfaction = models.PositiveSmallIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    charge = models.OneToOneField(
        BudgetCharge, null=True, blank=True, on_delete=models.SET_NULL, related_name="submission"
    )
    approval = models.ForeignKey(
        Escalation, null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions"
    )
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="Last time the recording task was sent.")
    recorded_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Recording attempts that failed.")
    last_error = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    failure_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When managers were e-mailed that this submission failed."
    )

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [
            # One live choice per offer set; a rejected one leaves room for the next.
            models.UniqueConstraint(
                fields=["offer_set"], condition=~Q(status="rejected"), name="submission_one_live_per_set"
            ),
            models.CheckConstraint(
                condition=Q(satisfaction__isnull=True) | Q(satisfaction__gte=1, satisfaction__lte=5),
                name="submission_satisfaction_1_5",
            ),
        ]
        indexes = [
            models.Index(fields=["enqueued_at"], condition=Q(status="pending"), name="submission_pending"),
            models.Index(fields=["failed_at"], condition=Q(status="failed"), name="submission_failed"),
        ]

    def __str__(self) -> str:
        return f"{self.offer_set_id}: {self.choice} ({self.status})"


class Outcome(models.Model):
    """A recorded customer choice, with the facts reports group by copied in."""

    submission = models.OneToOneField(OutcomeSubmission, on_delete=models.PROTECT, related_name="outcome")
    offer_set = models.OneToOneField(OfferSet, on_delete=models.PROTECT, related_name="outcome")
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    choice = models.CharField(max_length=16)
    accepted = models.BooleanField(help_text="False when the customer declined every option.")
    kind = models.CharField(max_length=32, choices=OfferKind.choices, blank=True)
    policy = models.ForeignKey(  # indexed by outcome_policy_time below
        Policy, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+")
    tier = models.CharField(max_length=16, choices=Tier.choices)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="outcomes")
    agent = models.ForeignKey(  # indexed by outcome_agent_time below
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    cost = models.DecimalField(**MONEY, default=0)
    remedy_cost = models.DecimalField(  # a sum of several amounts, so wider than one
        max_digits=14,
        decimal_places=2,
        default=0,
        help_text="What the remedies given with this outcome cost (after approval, if needed).",
    )
    currency = models.CharField(max_length=3)
    satisfaction = models.PositiveSmallIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True)
    offer_set_created_at = models.DateTimeField()
    submitted_at = models.DateTimeField()
    recorded_at = models.DateTimeField()  # indexed newest first below
    follow_up_due_at = models.DateTimeField(help_text="When the explanation e-mail is due, at the latest.")

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        indexes = [
            # Reports and the outcome list: a time range, newest first, then the groups they filter on.
            models.Index(fields=["-recorded_at", "-id"], name="outcome_recorded_newest"),
            models.Index(fields=["policy", "recorded_at"], name="outcome_policy_time"),
            models.Index(fields=["agent", "recorded_at"], name="outcome_agent_time"),
        ]

    def __str__(self) -> str:
        return f"{self.offer_set_id}: {self.choice}"


class OutcomeOption(models.Model):
    """One option shown in an offer set that got a recorded outcome: what reports count as "offered".

    Written with the outcome, with the facts reports group and filter by copied
    in, so the per-policy and per-kind reports read one narrow table instead of
    joining every option to its outcome.
    """

    outcome = models.ForeignKey(Outcome, on_delete=models.CASCADE, related_name="options")
    offer = models.OneToOneField(Offer, on_delete=models.CASCADE, related_name="+")
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(max_length=32, choices=OfferKind.choices)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+", db_index=False)
    tier = models.CharField(max_length=16, choices=Tier.choices)
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    chosen = models.BooleanField()
    recorded_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["recorded_at"], name="outcomeoption_time"),
            models.Index(fields=["policy", "recorded_at"], name="outcomeoption_policy_time"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome_id}: {self.kind} ({'chosen' if self.chosen else 'shown'})"


class Coupon(models.Model):
    """A discount the customer redeems with a code: unguessable and unique."""

    code = models.CharField(max_length=32, unique=True)
    outcome = models.OneToOneField(Outcome, on_delete=models.CASCADE, related_name="coupon")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="coupons")
    kind = models.CharField(max_length=32, choices=OfferKind.choices)
    value = models.DecimalField(**MONEY, null=True)
    unit = models.CharField(max_length=16, blank=True)
    max_amount = models.DecimalField(**MONEY, null=True)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.code


class CreditEntry(models.Model):
    """Money put on the customer's account (a credit) or returned (a refund)."""

    outcome = models.OneToOneField(Outcome, on_delete=models.CASCADE, related_name="credit")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="credits")
    kind = models.CharField(max_length=32, choices=OfferKind.choices)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "credit entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency}"


class FollowUp(models.Model):
    """An e-mail owed to the customer after an outcome: the explanation, then the satisfaction check."""

    class Kind(models.TextChoices):
        EXPLANATION = "explanation", "Explanation"
        SATISFACTION_CHECK = "satisfaction_check", "Satisfaction check"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped (no e-mail address)"

    outcome = models.ForeignKey(Outcome, on_delete=models.CASCADE, related_name="follow_ups")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    send_after = models.DateTimeField()
    due_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    feedback_satisfaction = models.PositiveSmallIntegerField(null=True, blank=True)
    feedback_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["due_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["outcome", "kind"], name="followup_outcome_kind")]
        indexes = [
            models.Index(fields=["send_after"], condition=Q(status="scheduled"), name="followup_scheduled"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.outcome_id} ({self.status})"


class Simulation(models.Model):
    """A policy-pack draft replayed over recent incidents in Celery (compensation/simulation.py).

    Kept 7 days (``SIMULATION_KEEP_DAYS``). One running simulation per user, held by the partial unique
    constraint below, so two requests at once cannot both start one.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    days = models.PositiveSmallIntegerField(default=30)
    pack = models.JSONField("draft pack", help_text="The pack as posted, validated before the run.")
    progress = models.FloatField(default=0.0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)  # noqa: DJ001 - the API shows null until a run fails
    created_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by"], condition=Q(status="running"), name="simulation_one_running_per_user"
            ),
            models.CheckConstraint(condition=Q(progress__gte=0, progress__lte=1), name="simulation_progress_0_1"),
        ]

    def __str__(self) -> str:
        return f"simulation {self.id} ({self.status})"


class Event(models.Model):
    """An operational event (an outage, a missed batch of deliveries): every affected customer is reached
    first, each with the remedy and their own a/b/c choice (compensation/services/events.py).

    Its figures are counted from its customers' rows when read, so they stay exact whoever writes.
    """

    class Status(models.TextChoices):
        PROCESSING = "processing", "processing"
        SENT = "sent", "sent"
        CANCELLED = "cancelled", "cancelled"

    name = models.CharField("name", max_length=200)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+")
    severity = models.PositiveSmallIntegerField("severity")
    fault = models.CharField("fault", max_length=16, choices=Fault.choices, default=Fault.COMPANY)
    correctable = models.BooleanField("correctable", default=True)
    description = models.TextField("description", blank=True)
    occurred_at = models.DateTimeField("occurred at")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name="created by"
    )
    created_at = models.DateTimeField("created at", db_index=True)
    status = models.CharField("status", max_length=12, choices=Status.choices, default=Status.PROCESSING)
    finished_at = models.DateTimeField("finished at", null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="While a worker processes the event, the time its hold runs out."
    )
    worked_at = models.DateTimeField(null=True, blank=True, help_text="When a worker last made progress.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.CheckConstraint(condition=Q(severity__gte=1, severity__lte=5), name="event_severity_1_5")]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class EventCustomer(models.Model):
    """One customer of an event: their row as posted, then their incident and offer set, then the e-mail.

    ``queued`` → ``ready`` (incident, offer set and remedy made, in the batch's transaction) → ``sending``
    (committed before the e-mail goes: at most once) → ``emailed``, or ``failed`` (a send that raised, or
    one a crash cut off: still ``sending`` when the event is taken up again); ``cancelled`` if the event was
    cancelled before its e-mail went.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        READY = "ready", "offer set made, e-mail not sent"
        SENDING = "sending", "sending"
        EMAILED = "emailed", "e-mailed"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="customers", db_index=False)
    position = models.PositiveIntegerField(help_text="The order it was posted in, within the event.")
    external_id = models.CharField("external id", max_length=64)
    data = models.JSONField(help_text="The customer's row as posted and validated.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    offer_set = models.OneToOneField(
        OfferSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="event_customer"
    )
    no_options = models.BooleanField(default=False, help_text="Its offer set has no option (budgets, caps).")
    email = models.EmailField("e-mail", blank=True, help_text="Where the e-mail went (or was to go).")
    nonce = models.CharField(max_length=32, help_text="With SECRET_KEY, makes the link's token.")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the link's token.")
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="E-mails tried.")
    error = models.TextField(blank=True)
    escalation = models.ForeignKey(
        Escalation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text='The senior-manager escalation "Please call me" opened.',
    )
    added_by = models.ForeignKey(  # indexed with created_at below: the daily cap counts by it
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        help_text="The manager who put the customer into the event (EVENT_MAX_CUSTOMERS_PER_DAY counts per manager).",
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["event", "position"]
        constraints = [
            models.UniqueConstraint(fields=["event", "external_id"], name="eventcustomer_one_per_event"),
            models.UniqueConstraint(fields=["event", "position"], name="eventcustomer_position"),
        ]
        indexes = [
            models.Index(fields=["event", "status", "position"], name="eventcustomer_work"),
            models.Index(fields=["added_by", "created_at"], name="eventcustomer_added"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} in event {self.event_id} ({self.status})"
