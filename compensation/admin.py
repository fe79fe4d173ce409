"""Admin for run-time records (read-only), the "Try it" preview of the engine, and the policies' admin with
what their budgets spent this month (policies' own admin cannot read compensation's tables)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from compensation.engine_types import RemedyItem
from compensation.errors import ApplicationError
from compensation.event_admin import EventAdmin, EventCustomerAdmin
from compensation.models import (
    AuthorityLimit,
    Coupon,
    CreditEntry,
    Customer,
    CustomerChange,
    Escalation,
    Event,
    EventCustomer,
    FollowUp,
    Incident,
    Offer,
    OfferSet,
    Outcome,
    OutcomeSubmission,
    PolicyMonthSpend,
    Remedy,
)
from compensation.periods import month_start
from compensation.roles import Role, user_has_role
from compensation.selectors import BUDGET_ALERT_SHARE, MonthBudget, policy_month_spent
from compensation.services.authority import authority_amount_problem
from compensation.services.escalations import (
    escalation_acknowledge,
    escalation_approve,
    escalation_reject,
    escalation_resolve,
)
from compensation.services.offer_sets import offer_set_preview
from compensation.services.outcomes import outcome_submission_release, outcome_submission_retry
from compensation.simulation_admin import PolicySimulateMixin
from policies import admin as policies_admin
from policies.choices import Fault, Tier
from policies.index import policy_index_get
from policies.models import Policy
from policies.money import money


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened are never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.register(Event, EventAdmin)  # operational events: compensation/event_admin.py
admin.site.register(EventCustomer, EventCustomerAdmin)


class PreviewForm(forms.Form):
    """A sample customer and incident, as an agent's tool would post them."""

    customer_name = forms.CharField(label="Customer name", initial="Linda Park", max_length=200)
    external_id = forms.CharField(
        label="Customer external id",
        required=False,
        max_length=64,
        help_text="Optional: an existing customer's id, to take their recent perks and caps into account "
        "(with CUSTOMER_FACTS=trusted, also their stored tier, lifetime value and interests instead of those below; "
        "for an id not stored yet, those a new customer starts with).",
    )
    tier = forms.ChoiceField(label="Tier", choices=Tier.choices, initial=Tier.STANDARD)
    lifetime_value = forms.DecimalField(label="Lifetime value", min_value=0, decimal_places=2, initial=Decimal("0"))
    interests = forms.CharField(
        label="Interests", required=False, help_text="Comma-separated, e.g. sports, cooking.", max_length=400
    )
    category = forms.ChoiceField(label="Incident category")
    severity = forms.IntegerField(label="Severity", min_value=1, max_value=5, initial=3)
    fault = forms.ChoiceField(label="Fault", choices=Fault.choices, initial=Fault.COMPANY)
    correctable = forms.BooleanField(label="Correctable", required=False, initial=True)
    order_value = forms.DecimalField(label="Order value", min_value=0, decimal_places=2, initial=Decimal("50.00"))
    repeat_count = forms.IntegerField(
        label="Incidents in the repeat window", min_value=1, initial=1, help_text="This one included."
    )
    same_category_repeat_count = forms.IntegerField(
        label="Same-category incidents in the window", min_value=1, initial=1
    )

    def __init__(self, *args: Any, categories: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = categories

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("same_category_repeat_count", 1) > data.get("repeat_count", 1):
            self.add_error("same_category_repeat_count", "cannot exceed the incidents in the window")
        return data


class OfferInline(admin.TabularInline):
    model = Offer
    extra = 0
    can_delete = False
    fields = ["label", "kind", "title", "value", "unit", "estimated_cost", "policy_name", "policy_version", "score"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OfferSet)
class OfferSetAdmin(ReadOnlyAdmin):
    inlines = [OfferInline]
    list_display = ["id", "created_at", "created_by", "customer", "incident", "expires_at"]
    list_filter = ["incident__category"]
    search_fields = ["id", "customer__external_id", "incident__external_ref"]
    date_hierarchy = "created_at"

    def get_urls(self) -> list:
        preview = path("try/", self.admin_site.admin_view(self.try_view), name="compensation_try")
        return [preview, *super().get_urls()]

    def try_view(self, request: HttpRequest) -> HttpResponse:
        """What the engine would offer now for a sample incident; creates nothing."""
        if not request.user.has_perm("policies.view_policy"):
            raise PermissionDenied
        index = policy_index_get()
        categories = [(c.slug, f"{c.name} ({c.slug})") for c in sorted(index.categories.values(), key=lambda c: c.slug)]
        form = PreviewForm(request.POST or None, categories=categories)
        result = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            result = offer_set_preview(
                index=index,
                customer={
                    "external_id": data["external_id"],
                    "name": data["customer_name"],
                    "tier": data["tier"],
                    "lifetime_value": data["lifetime_value"],
                    "interests": [t.strip().lower() for t in data["interests"].split(",") if t.strip()],
                },
                incident={**data, "category": index.categories[data["category"]]},
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Try the policies",
            "form": form,
            "result": result,
            "currency": settings.DEFAULT_CURRENCY,
            "opts": self.model._meta,
            "exploring": settings.RANKING_EXPLORATION == "thompson",
        }
        if result is not None:
            context.update(_preview_remedy(result.remedy))
            context["policies_not_offered"] = [entry for entry in result.not_offered if entry.offer is None]
            context["offers_not_shown"] = [entry for entry in result.not_offered if entry.offer is not None]
        return TemplateResponse(request, "admin/compensation/try.html", context)


def _preview_remedy(remedy: list[RemedyItem]) -> dict[str, Any]:
    """The remedy's summed cost and whether an agent would need a manager's approval to give it."""
    cost = sum((item.candidate.estimated_cost for item in remedy), Decimal("0"))
    limit = settings.AGENT_APPROVAL_LIMIT
    asked = any(item.candidate.offer.requires_approval for item in remedy)
    return {"remedy_cost": cost, "approval_limit": limit, "remedy_over_limit": cost > limit, "remedy_asks": asked}


class CustomerChangeInline(admin.TabularInline):
    """Every change to the customer's stored fields, newest first (the model's ordering); read-only."""

    model = CustomerChange
    extra = 0
    can_delete = False
    fields = ["at", "by", "field", "old", "new"]
    readonly_fields = fields
    verbose_name_plural = "changes (newest first)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    inlines = [CustomerChangeInline]
    list_display = ["external_id", "name", "tier", "lifetime_value", "updated_at"]
    list_filter = ["tier"]
    search_fields = ["external_id", "name", "email"]


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ["id", "customer", "category", "severity", "fault", "repeat_count", "created_at"]
    list_filter = ["category", "severity", "fault"]
    search_fields = ["external_ref", "customer__external_id"]
    list_select_related = ["customer", "category"]


class _EscalationAction:
    """An admin action that runs an escalation service on each selected row, as the API does."""

    def __init__(self, service: Callable[..., Any], verb: str, **extra: Any) -> None:
        self.service = service
        self.verb = verb
        self.extra = extra

    def __call__(self, modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:
        if not user_has_role(request.user, Role.MANAGER):
            modeladmin.message_user(request, "Only managers act on escalations.", messages.ERROR)
            return
        done = 0
        note = f"{self.verb.capitalize()} in the admin by {request.user.get_username()}."
        for pk in queryset.values_list("pk", flat=True):
            try:
                self.service(escalation_id=pk, user=request.user, **dict.fromkeys(self.extra, note))
            except ApplicationError as exc:
                modeladmin.message_user(request, f"#{pk}: {exc.message}", messages.WARNING)
            else:
                done += 1
        if done:
            modeladmin.message_user(request, f"{done} escalation(s) {self.verb}.", messages.SUCCESS)


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "status", "is_overdue", "due_at", "customer", "incident", "assigned_to", "created_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["customer", "incident", "assigned_to"]
    search_fields = ["customer__external_id", "reason"]
    actions = ["acknowledge", "resolve", "approve", "reject"]

    @admin.display(boolean=True, description="overdue")
    def is_overdue(self, obj: Escalation) -> bool:
        return obj.is_overdue(timezone.now())

    acknowledge = admin.action(description="Acknowledge (take it on)")(
        _EscalationAction(escalation_acknowledge, "acknowledged")
    )
    resolve = admin.action(description="Resolve senior-manager escalations")(
        _EscalationAction(escalation_resolve, "resolved", resolution=True)
    )
    approve = admin.action(description="Approve (the outcome is recorded)")(
        _EscalationAction(escalation_approve, "approved")
    )
    reject = admin.action(description="Reject (budget released, the agent may choose again)")(
        _EscalationAction(escalation_reject, "rejected", reason=True)
    )


class _FailedSubmissionAction:
    """An admin action for failed submissions only: runs ``service`` on each, and says what it did."""

    def __init__(self, service: Callable[..., Any], done: str) -> None:
        self.service = service
        self.done = done

    def __call__(self, modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:
        if not user_has_role(request.user, Role.MANAGER):
            modeladmin.message_user(request, "Only managers act on failed submissions.", messages.ERROR)
            return
        done = skipped = 0
        for pk, status in queryset.order_by().values_list("pk", "status"):
            if status != OutcomeSubmission.Status.FAILED:
                skipped += 1
                continue
            try:
                self.service(submission_id=pk)
            except ApplicationError as exc:  # it changed meanwhile
                modeladmin.message_user(request, exc.message, messages.WARNING)
            else:
                done += 1
        if done:
            modeladmin.message_user(request, f"{done} failed submission(s) {self.done}.", messages.SUCCESS)
        if skipped:
            modeladmin.message_user(
                request, f"{skipped} selected submission(s) had not failed and were left alone.", messages.WARNING
            )


@admin.register(OutcomeSubmission)
class OutcomeSubmissionAdmin(ReadOnlyAdmin):
    """Choices as the API accepted them. A failed one (its recording kept failing) holds its budget and its
    offer set until a manager retries it, once the fault is fixed, or releases it."""

    list_display = [
        "id",
        "offer_set",
        "choice",
        "status",
        "attempts",
        "submitted_by",
        "submitted_at",
        "recorded_at",
        "failed_at",
    ]
    list_filter = ["status"]
    list_select_related = ["submitted_by"]
    search_fields = ["id", "offer_set__id"]
    date_hierarchy = "submitted_at"
    actions = ["retry", "release"]

    retry = admin.action(description="Retry failed submissions (record them again, once the fault is fixed)")(
        _FailedSubmissionAction(outcome_submission_retry, "sent to be recorded again")
    )
    release = admin.action(description="Release failed submissions (mark them rejected, give their budget back)")(
        _FailedSubmissionAction(outcome_submission_release, "released: marked rejected, their budget given back")
    )


# --- Authority limits: on their own page and on each group's ---------------------------------------


class AuthorityLimitForm(forms.ModelForm):
    class Meta:
        model = AuthorityLimit
        fields = ["group", "per_option", "per_month"]

    def _amount(self, name: str) -> Decimal | None:
        value = self.cleaned_data.get(name)
        if value is not None and (problem := authority_amount_problem(value)) is not None:
            raise forms.ValidationError(problem)
        return value

    def clean_per_option(self) -> Decimal | None:
        return self._amount("per_option")

    def clean_per_month(self) -> Decimal | None:
        return self._amount("per_month")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors and data.get("per_option") is None and data.get("per_month") is None:
            raise forms.ValidationError("Set a limit per option, per month, or both (or delete this limit).")
        return data


AUTHORITY_HELP = (
    "What an agent in the group may give without a manager's approval. An agent's limit is the highest among "
    "their groups that set one; per option, AGENT_APPROVAL_LIMIT when none does; per month, none means no "
    "monthly limit. Managers never need approval."
)


@admin.register(AuthorityLimit)
class AuthorityLimitAdmin(admin.ModelAdmin):
    form = AuthorityLimitForm
    list_display = ["group", "per_option", "per_month"]
    list_select_related = ["group"]
    search_fields = ["group__name"]
    ordering = ["group__name"]
    fieldsets = [(None, {"fields": ["group", "per_option", "per_month"], "description": AUTHORITY_HELP})]


class AuthorityLimitInline(admin.StackedInline):
    model = AuthorityLimit
    form = AuthorityLimitForm
    fieldsets = [(None, {"fields": ["per_option", "per_month"], "description": AUTHORITY_HELP})]
    max_num = 1
    extra = 1
    verbose_name_plural = "authority limit"


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """Django's group page, with the group's authority limit."""

    inlines = [*DjangoGroupAdmin.inlines, AuthorityLimitInline]


class FollowUpInline(admin.TabularInline):
    model = FollowUp
    extra = 0
    can_delete = False
    fields = ["kind", "status", "send_after", "due_at", "sent_at", "attempts", "last_error", "responded_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Outcome)
class OutcomeAdmin(ReadOnlyAdmin):
    inlines = [FollowUpInline]
    list_display = [
        "offer_set",
        "choice",
        "kind",
        "policy",
        "category",
        "cost",
        "remedy_cost",
        "satisfaction",
        "agent",
        "recorded_at",
    ]
    list_filter = ["accepted", "kind", "category", "tier"]
    list_select_related = ["policy", "category", "agent"]
    search_fields = ["offer_set__id", "customer__external_id"]
    date_hierarchy = "recorded_at"


@admin.register(Remedy)
class RemedyAdmin(ReadOnlyAdmin):
    """What incidents were owed put right, and where each stands (given, awaiting approval, rejected)."""

    list_display = ["incident", "kind", "title", "estimated_cost", "status", "given_at", "policy_name", "customer"]
    list_filter = ["status", "kind", "category"]
    list_select_related = ["incident", "customer"]
    search_fields = ["customer__external_id", "incident__external_ref", "title"]
    date_hierarchy = "created_at"


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ["code", "customer", "kind", "value", "unit", "created_at", "expires_at"]
    search_fields = ["code", "customer__external_id"]


@admin.register(CreditEntry)
class CreditEntryAdmin(ReadOnlyAdmin):
    list_display = ["customer", "kind", "amount", "currency", "created_at"]
    search_fields = ["customer__external_id"]


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "status", "send_after", "due_at", "sent_at", "attempts", "feedback_satisfaction"]
    list_filter = ["kind", "status"]


# --- Policies, with their budget this month ------------------------------------------------------


def _amount(value: Decimal) -> str:
    return f"{value:,.2f}"


def budget_meter(budget: MonthBudget) -> SafeString:
    """A capped budget as text and a bar: ``420.00 / 1,000.00 (42%)`` and a ``<meter>`` past which 80% shows
    as bad; the text carries everything the bar shows. Uncapped: ``no cap · 120.00 spent``."""
    if budget.cap is None:
        return format_html('<span class="budget">no cap · {} spent</span>', _amount(budget.spent))
    return format_html(
        '<span class="budget">{} / {} ({}%) '
        '<meter min="0" max="{}" low="{}" high="{}" optimum="0" value="{}" aria-label="{}% of the monthly cap spent" '
        'style="width: 6em; vertical-align: middle">{}%</meter></span>',
        _amount(budget.spent),
        _amount(budget.cap),
        budget.percent,
        money(budget.cap),
        money(budget.cap * BUDGET_ALERT_SHARE),
        money(budget.cap * BUDGET_ALERT_SHARE),
        money(min(budget.spent, budget.cap)),
        budget.percent,
        budget.percent,
    )


admin.site.unregister(Policy)


@admin.register(Policy)
class PolicyAdmin(PolicySimulateMixin, policies_admin.PolicyAdmin):
    """The policies' admin (policies/admin.py) with each policy's spend this month against its cap (a column
    in the list and a read-only field in the change form's Budget fieldset) and the "Simulate" button and
    pack page (compensation/simulation_admin.py).

    The month's spend is annotated by :meth:`get_queryset` (one subquery: no query per row), for the month
    now is in, in TIME_ZONE.
    """

    list_display = [
        "budget_this_month" if column == "monthly_cap" else column for column in policies_admin.PolicyAdmin.list_display
    ]
    readonly_fields = [*policies_admin.PolicyAdmin.readonly_fields, "spent_this_month"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Policy]:
        return super().get_queryset(request).annotate(month_spent=policy_month_spent(month_start(timezone.now())))

    def get_fieldsets(self, request: HttpRequest, obj: Policy | None = None) -> list:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:  # a policy being added has spent nothing
            return fieldsets
        return [
            (name, {**options, "fields": [*options["fields"], "spent_this_month"]})
            if name == "Budget"
            else (name, options)
            for name, options in fieldsets
        ]

    @admin.display(description="budget this month", ordering="month_spent")
    def budget_this_month(self, obj: Policy) -> SafeString:
        return budget_meter(self._month_budget(obj))

    @admin.display(description="spent this month")
    def spent_this_month(self, obj: Policy) -> SafeString:
        budget = self._month_budget(obj)
        month = f"{month_start(timezone.now()):%B %Y}"
        if budget.remaining is None:
            return format_html("{} in {}", budget_meter(budget), month)
        return format_html("{}, {} left in {}", budget_meter(budget), _amount(budget.remaining), month)

    def _month_budget(self, obj: Policy) -> MonthBudget:
        spent = getattr(obj, "month_spent", None)
        if spent is None:  # an instance not read through get_queryset
            month = month_start(timezone.now())
            spent = PolicyMonthSpend.objects.filter(policy=obj, month=month).values_list("spent", flat=True).first()
        return MonthBudget(cap=obj.monthly_cap, spent=spent if spent is not None else Decimal("0.00"))
