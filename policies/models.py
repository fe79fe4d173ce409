"""What admins edit: categories, perks, policies and their offer templates.

A policy's every change is kept as a :class:`PolicyVersion` (a snapshot of the
policy with its offers, in pack format), and any change to these tables bumps
the single :class:`PolicyRevision` number the engine's cache watches.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from policies import validation
from policies.choices import REMEDY_KIND_CHOICES, OfferKind, Placement

MONEY = {"max_digits": 12, "decimal_places": 2}

slug_validator = RegexValidator(
    r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$",
    "use lowercase letters, digits, and single - or _ between them (for example late_delivery)",
    code="slug",
)


class Category(models.Model):
    slug = models.SlugField(
        "slug",
        max_length=64,
        unique=True,
        validators=[slug_validator],
        help_text="Short code agents' tools send as incident.category, e.g. late_delivery. Changing it breaks callers.",
    )
    name = models.CharField(
        "name",
        max_length=120,
        help_text='Human name; messages use it for {incident}, so write it to read well in "sorry about the …".',
    )
    description = models.TextField(
        "description", blank=True, help_text="What counts as this kind of incident, for agents and admins."
    )
    active = models.BooleanField(
        "active", default=True, help_text="Inactive categories are rejected when an incident is posted."
    )

    class Meta:
        ordering = ["slug"]
        verbose_name = "incident category"
        verbose_name_plural = "incident categories"

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class Perk(models.Model):
    slug = models.SlugField(
        "slug", max_length=64, unique=True, validators=[slug_validator], help_text="Stable code used in policy packs."
    )
    name = models.CharField(
        "name", max_length=120, help_text="What the customer gets, e.g. Premium Sports Pass, one month."
    )
    description = models.TextField("description", blank=True, help_text="Details for agents (optional).")
    tags = models.JSONField(
        "interest tags",
        default=list,
        blank=True,
        validators=[validation.validate_tags],
        help_text="Interests this perk suits (sports, cooking, …); matched against the customer's interests.",
    )
    cost = models.DecimalField(
        "cost",
        **MONEY,
        validators=[validation.validate_non_negative],
        help_text="What giving this perk costs us; charged to the policy's budget when chosen.",
    )
    active = models.BooleanField("active", default=True, help_text="Inactive perks are never offered.")

    class Meta:
        ordering = ["slug"]
        constraints = [models.CheckConstraint(condition=Q(cost__gte=0), name="perk_cost_gte_0")]

    def __str__(self) -> str:
        return self.name


class Policy(models.Model):
    slug = models.SlugField(
        "slug",
        max_length=64,
        unique=True,
        validators=[slug_validator],
        help_text="Stable code; policy packs match on it, so keep it when you rename the policy.",
    )
    name = models.CharField("name", max_length=120, help_text="Shown to agents next to each option it produces.")
    description = models.TextField(
        "description", blank=True, help_text="Why this policy exists and when it should apply, for the next admin."
    )
    active = models.BooleanField(
        "active", default=True, help_text="Only active policies produce options. Deactivate instead of deleting."
    )
    priority = models.PositiveSmallIntegerField(
        "priority",
        default=50,
        validators=[validation.validate_priority],
        help_text="0–100. A weight in ranking: higher-priority policies' options rank higher, all else equal.",
    )
    valid_from = models.DateField(
        "valid from", null=True, blank=True, help_text="First day the policy applies. Empty: already in force."
    )
    valid_until = models.DateField(
        "valid until",
        null=True,
        blank=True,
        help_text="Day the policy stops applying (exclusive, after valid from). Empty: no end.",
    )

    # Conditions: every condition that is set must hold; an empty one matches anything.
    categories = models.ManyToManyField(
        Category,
        blank=True,
        related_name="policies",
        verbose_name="incident categories",
        help_text="The incidents this policy covers. Choose none to cover every category.",
    )
    severity_min = models.PositiveSmallIntegerField(
        "lowest severity",
        null=True,
        blank=True,
        validators=[validation.validate_severity],
        help_text="1–5. Applies only to incidents at least this severe. Empty: any.",
    )
    severity_max = models.PositiveSmallIntegerField(
        "highest severity",
        null=True,
        blank=True,
        validators=[validation.validate_severity],
        help_text="1–5. Applies only to incidents at most this severe. Empty: any.",
    )
    faults = models.JSONField(
        "fault",
        default=list,
        blank=True,
        help_text="Whose fault the incident was. None ticked: any. Fault never has to block help: "
        "keep a goodwill policy for customer-fault incidents.",
    )
    tiers = models.JSONField(
        "customer tiers", default=list, blank=True, help_text="Customer tiers this applies to. None ticked: any."
    )
    correctable = models.BooleanField(
        "correctable",
        null=True,
        blank=True,
        help_text="Yes: only incidents we can still fix; No: only those we cannot (good for escalation). "
        "Unknown: either.",
    )
    min_repeat_count = models.PositiveIntegerField(
        "minimum incidents in window",
        null=True,
        blank=True,
        help_text="Applies when the customer had at least this many incidents in the repeat window "
        "(90 days by default), this one included. 2 = the second problem.",
    )
    min_same_category_repeat_count = models.PositiveIntegerField(
        "minimum same-category incidents",
        null=True,
        blank=True,
        help_text="Like the above, counting only incidents of the same category: 2 = the same mistake twice.",
    )
    min_lifetime_value = models.DecimalField(
        "minimum lifetime value",
        **MONEY,
        null=True,
        blank=True,
        validators=[validation.validate_non_negative],
        help_text="Applies to customers who have spent at least this much with us. Empty: any.",
    )
    min_order_value = models.DecimalField(
        "minimum order value",
        **MONEY,
        null=True,
        blank=True,
        validators=[validation.validate_non_negative],
        help_text="Applies when the affected order is worth at least this much. Empty: any.",
    )

    placement = models.CharField(
        "placement",
        max_length=8,
        choices=Placement.choices,
        default=Placement.RANKED,
        error_messages={"invalid_choice": "must be ranked or lead, got %(value)r"},
        help_text="Lead: when this policy applies, its best option is option a, whatever the score, because the "
        "policy was written for this case (several lead policies: the higher priority leads). Ranked: its options "
        "compete with the others by score.",
    )

    escalate = models.BooleanField(
        "escalate automatically",
        default=False,
        help_text="When this policy matches, open a senior-manager escalation right away, "
        "besides offering the options.",
    )

    generosity_per_severity = models.DecimalField(
        "extra per severity step",
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[validation.validate_non_negative],
        help_text="Makes credits, discounts and refunds bigger for worse incidents: 0.10 adds 10% of the value "
        "for each severity step above 1. 0: no scaling.",
    )
    generosity_per_repeat = models.DecimalField(
        "extra per repeat",
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[validation.validate_non_negative],
        help_text="0.25 adds 25% for each earlier incident of the same category in the repeat window: "
        "the same mistake twice deserves more.",
    )
    generosity_per_1000_lifetime_value = models.DecimalField(
        "extra per 1,000 lifetime value",
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[validation.validate_non_negative],
        help_text="0.05 adds 5% for every 1,000 the customer has spent with us: losing a little now to keep "
        "a valuable customer is good business.",
    )
    generosity_max_multiplier = models.DecimalField(
        "most generous multiplier",
        max_digits=5,
        decimal_places=2,
        default=2,
        validators=[validation.validate_multiplier],
        help_text="Cap on all the scaling above, e.g. 2.00 = never more than double. Percentages never pass 100.",
    )

    monthly_cap = models.DecimalField(
        "monthly budget",
        **MONEY,
        null=True,
        blank=True,
        validators=[validation.validate_non_negative],
        help_text="Most this policy may spend per calendar month. Options it cannot cover are not offered. "
        "Empty: unlimited.",
    )
    per_customer_cap_30d = models.DecimalField(
        "per-customer cap (30 days)",
        **MONEY,
        null=True,
        blank=True,
        validators=[validation.validate_non_negative],
        help_text="Most one customer may receive from this policy over any 30 days. Empty: unlimited.",
    )

    version = models.PositiveIntegerField(
        "version", default=0, editable=False, help_text="Goes up with every change to the policy or its offers."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "pk"]
        verbose_name_plural = "policies"
        constraints = [
            models.CheckConstraint(condition=Q(priority__gte=0, priority__lte=100), name="policy_priority_0_100"),
            models.CheckConstraint(
                condition=Q(severity_min__isnull=True) | Q(severity_min__gte=1, severity_min__lte=5),
                name="policy_severity_min_1_5",
            ),
            models.CheckConstraint(
                condition=Q(severity_max__isnull=True) | Q(severity_max__gte=1, severity_max__lte=5),
                name="policy_severity_max_1_5",
            ),
            models.CheckConstraint(
                condition=Q(severity_min__isnull=True)
                | Q(severity_max__isnull=True)
                | Q(severity_min__lte=models.F("severity_max")),
                name="policy_severity_min_le_max",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_from__lt=models.F("valid_until")),
                name="policy_valid_from_before_until",
            ),
            models.CheckConstraint(
                condition=Q(monthly_cap__isnull=True) | Q(monthly_cap__gte=0), name="policy_monthly_cap_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(min_lifetime_value__isnull=True) | Q(min_lifetime_value__gte=0),
                name="policy_min_lifetime_value_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(min_order_value__isnull=True) | Q(min_order_value__gte=0),
                name="policy_min_order_value_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(generosity_per_severity__gte=0)
                & Q(generosity_per_repeat__gte=0)
                & Q(generosity_per_1000_lifetime_value__gte=0)
                & Q(generosity_max_multiplier__gte=1),
                name="policy_generosity_valid",
            ),
            models.CheckConstraint(
                condition=Q(per_customer_cap_30d__isnull=True) | Q(per_customer_cap_30d__gte=0),
                name="policy_customer_cap_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        validation.raise_if(
            validation.policy_errors(
                valid_from=self.valid_from,
                valid_until=self.valid_until,
                severity_min=self.severity_min,
                severity_max=self.severity_max,
                faults=self.faults,
                tiers=self.tiers,
            )
        )


PLACEHOLDER_HELP = (
    "{first_name}, {customer_name}, {incident}, {value}, {amount}, {money}, {currency}, {ticket}, "
    "{repeat_count}, {same_category_repeat_count}, {perk_name}"
)


class OfferFields(models.Model):
    """What an offer and a remedy template share: the texts, the value and its limits."""

    title = models.CharField(
        "title",
        max_length=200,
        validators=[validation.validate_template],
        help_text="One line the agent reads out, e.g. {value}% off your next order. Placeholders: "
        + PLACEHOLDER_HELP
        + ".",
    )
    message = models.TextField(
        "message",
        blank=True,
        validators=[validation.validate_template],
        help_text="What to say or send, in a person's words, with the same placeholders as the title. "
        "Empty: a plain sentence is made from the title.",
    )
    value = models.DecimalField(
        "value",
        **MONEY,
        null=True,
        blank=True,
        validators=[validation.validate_non_negative],
        help_text="Percent (0–100) for percent discounts and refunds; an amount for credit, shipping, "
        "replacement and gift. Empty for personalized perks and escalations.",
    )
    max_amount = models.DecimalField(
        "maximum amount",
        **MONEY,
        null=True,
        blank=True,
        validators=[validation.validate_non_negative],
        help_text="Cap on what a percent offer may be worth. Required for percent discounts, optional for refunds.",
    )
    cost = models.DecimalField(
        "cost to us",
        **MONEY,
        null=True,
        blank=True,
        validators=[validation.validate_non_negative],
        help_text="What the budget is charged when it is chosen, if not its face value. Required for escalations.",
    )
    expires_in_days = models.PositiveIntegerField(
        "expires in (days)",
        null=True,
        blank=True,
        validators=[validation.validate_positive_days],
        help_text="How long the coupon or credit stays usable. Empty: no expiry.",
    )
    requires_approval = models.BooleanField(
        "requires approval",
        default=False,
        help_text="A manager must approve before this is given, whatever it costs.",
    )
    order = models.PositiveSmallIntegerField(
        "order", default=0, help_text="Position within the policy; packs list them in this order."
    )

    class Meta:
        abstract = True
        ordering = ["policy", "order", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"  # type: ignore[attr-defined]

    def clean(self) -> None:
        """The rules of the kind (``kind_rules``: offers' or remedies'), on value, maximum and cost."""
        validation.raise_if(
            self.kind_rules(  # type: ignore[attr-defined]
                kind=self.kind,  # type: ignore[attr-defined]
                value=self.value,
                max_amount=self.max_amount,
                cost=self.cost,
            )
        )


def amounts_not_negative(prefix: str) -> list[models.CheckConstraint]:
    """The database's backstop for ``validate_non_negative`` on an offer's or remedy's amounts."""
    return [
        models.CheckConstraint(
            condition=Q(**{f"{name}__isnull": True}) | Q(**{f"{name}__gte": 0}), name=f"{prefix}_{name}_gte_0"
        )
        for name in ("value", "max_amount", "cost")
    ]


class OfferTemplate(OfferFields):
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="offers")
    kind = models.CharField(
        "kind",
        max_length=32,
        choices=OfferKind.choices,
        help_text="What the customer gets. Percent kinds take a percent; credit, shipping, replacement and gift "
        "take an amount; a personalized perk takes its value from the matched perk; escalation takes a cost.",
    )

    kind_rules = staticmethod(validation.offer_errors)

    class Meta(OfferFields.Meta):
        constraints = amounts_not_negative("offer")


class RemedyTemplate(OfferFields):
    """What the policy puts right whenever it applies, before and apart from the a/b/c options.

    Given once per incident with its first recorded outcome, whatever the customer chooses; never
    ranked, never limited by budgets or caps, nor counted against them.
    """

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="remedies")
    kind = models.CharField(
        "kind",
        max_length=32,
        choices=REMEDY_KIND_CHOICES,
        help_text="What is put right: a refund (a percent of the order), a credit, free shipping, an express "
        "replacement or a gift (an amount). Discounts on the future, perks and escalations are options, "
        "not remedies.",
    )
    kind_rules = staticmethod(validation.remedy_errors)
    cost = models.DecimalField(
        "cost to us",
        **MONEY,
        null=True,
        blank=True,
        validators=[validation.validate_non_negative],
        help_text="What giving it costs us, if not its face value (reports show it as remedy cost). "
        "Budgets are never charged for a remedy.",
    )

    class Meta(OfferFields.Meta):
        verbose_name = "remedy"
        verbose_name_plural = "remedy: what we put right first, whatever the customer chooses"
        constraints = amounts_not_negative("remedy")


class PolicyVersion(models.Model):
    """One saved state of a policy with its offers, as the pack format writes it."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField("version")
    snapshot = models.JSONField("policy as saved", help_text="The policy and its offers in pack format.")
    changes = models.JSONField("changes", default=list, help_text="What changed since the previous version.")
    reason = models.CharField("how", max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField("saved at", auto_now_add=True)

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [models.UniqueConstraint(fields=["policy", "number"], name="policy_version_unique")]

    def __str__(self) -> str:
        return f"{self.policy} v{self.number}"


class PolicyRevision(models.Model):
    """A single row whose number changes with any save of the tables above.

    The engine keeps its compiled policy index until this number moves.
    """

    number = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"policy revision {self.number}"
