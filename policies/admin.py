"""The Django admin for the people who write compensation policies."""

from __future__ import annotations

from typing import Any

import yaml
from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from policies.choices import Fault, Tier
from policies.conditions import CONDITION_NAMES
from policies.models import Category, OfferTemplate, Perk, Policy, PolicyVersion, RemedyTemplate
from policies.services import policy_duplicate, policy_set_active, policy_version_record


class InvalidFormIsBadRequest:
    """An add or change form posted with errors answers 400, still rendering the form and its errors.

    A browser shows the page as before; a script, a test or a proxy log sees that nothing was saved.
    """

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        if (
            request.method == "POST"
            and isinstance(response, TemplateResponse)
            and (response.context_data or {}).get("errors")
        ):
            response.status_code = 400
        return response


def titled_filter(title: str) -> type[admin.ChoicesFieldListFilter]:
    """A choices filter with its own title, for two related fields of the same name (offer kind, remedy kind)."""

    class TitledChoicesFilter(admin.ChoicesFieldListFilter):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.title = title

    return TitledChoicesFilter


class TagListField(forms.CharField):
    """A list of tags typed as ``sports, cooking``."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(value)
        return value or ""

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        text = super().to_python(value)
        return [part.strip().lower() for part in text.split(",") if part.strip()]


class PerkAdminForm(forms.ModelForm):
    tags = TagListField(
        label="Interest tags",
        required=False,
        help_text=Perk._meta.get_field("tags").help_text + " Separate with commas.",
    )

    class Meta:
        model = Perk
        fields = ["slug", "name", "description", "tags", "cost", "active"]


class PolicyAdminForm(forms.ModelForm):
    faults = forms.MultipleChoiceField(
        label="Fault",
        choices=Fault.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=Policy._meta.get_field("faults").help_text,
    )
    tiers = forms.MultipleChoiceField(
        label="Customer tiers",
        choices=Tier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=Policy._meta.get_field("tiers").help_text,
    )

    class Meta:
        model = Policy
        fields = [
            "slug",
            "name",
            "description",
            "active",
            "priority",
            "placement",
            "valid_from",
            "valid_until",
            "categories",
            *CONDITION_NAMES,
            "escalate",
            "generosity_per_severity",
            "generosity_per_repeat",
            "generosity_per_1000_lifetime_value",
            "generosity_max_multiplier",
            "monthly_cap",
            "per_customer_cap_30d",
        ]


class RemedyTemplateForm(forms.ModelForm):
    class Meta:
        model = RemedyTemplate
        fields = [
            "kind",
            "order",
            "title",
            "message",
            "value",
            "max_amount",
            "cost",
            "expires_in_days",
            "requires_approval",
        ]
        help_texts = {
            "title": "One line the agent reads out, e.g. Your {money} back. Placeholders: {first_name}, "
            "{customer_name}, {incident}, {value}, {amount}, {money}, {currency}, {ticket}, {repeat_count}, "
            "{same_category_repeat_count}.",
            "value": "Percent of the order (0–100) for a refund; an amount for credit, shipping, replacement and "
            "gift. Required.",
            "max_amount": "Cap on what a refund may be worth (optional); leave empty for the other kinds.",
            "expires_in_days": "How long a credit stays usable. Empty: no expiry.",
            "requires_approval": "A manager must approve the remedy before it is given, whatever it costs.",
        }


class OrderedStackedInline(admin.StackedInline):
    """A stacked inline of a policy's offers or remedies, with a description under its heading."""

    template = "admin/edit_inline/stacked_described.html"
    description = ""
    extra = 0
    ordering = ["order", "pk"]
    fieldsets = [
        (None, {"fields": [("kind", "order"), "title", "message"]}),
        (
            "Value and cost",
            {"fields": [("value", "max_amount", "cost"), ("expires_in_days", "requires_approval")]},
        ),
    ]


class RemedyTemplateInline(OrderedStackedInline):
    model = RemedyTemplate
    form = RemedyTemplateForm
    description = (
        "A double charge is refunded, a broken item replaced, whatever the customer then picks from the options. "
        "Given once per incident with its first recorded outcome, never ranked, never limited by budgets (nor "
        "counted against them); a manager approves it when it costs more than the agent may give. Kinds: refund, "
        "fixed credit, free shipping, expedited replacement, gift. Most policies need none."
    )


class OfferTemplateInline(OrderedStackedInline):
    model = OfferTemplate
    description = (
        "The options the agent offers, as a, b or c: ranked by score with every other applying policy's "
        "offers, and left out when the policy's budget cannot cover them."
    )

    def get_extra(self, request: HttpRequest, obj: Policy | None = None, **kwargs: Any) -> int:
        return 1 if obj is None else 0


class PolicyVersionInline(admin.TabularInline):
    model = PolicyVersion
    verbose_name = "version"
    verbose_name_plural = "Version history"
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-number"]
    fields = ["number", "created_at", "created_by", "reason", "changes_list", "saved_policy"]
    readonly_fields = fields

    @admin.display(description="changes")
    def changes_list(self, obj: PolicyVersion) -> str:
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((line,) for line in obj.changes)))

    @admin.display(description="policy as saved")
    def saved_policy(self, obj: PolicyVersion) -> str:
        text = yaml.safe_dump(obj.snapshot, sort_keys=False, allow_unicode=True, width=100)
        return format_html("<details><summary>show</summary><pre>{}</pre></details>", text)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Policy)
class PolicyAdmin(InvalidFormIsBadRequest, admin.ModelAdmin):
    form = PolicyAdminForm
    list_display = [
        "name",
        "slug",
        "active",
        "priority",
        "placement_code",
        "category_list",
        "escalate",
        "version",
        "monthly_cap",
        "per_customer_cap_30d",
        "updated_at",
    ]
    list_display_links = ["name", "slug"]
    list_filter = [
        "active",
        "placement",
        "escalate",
        "categories",
        ("offers__kind", titled_filter("offer kind")),
        ("remedies__kind", titled_filter("remedy kind")),
    ]
    search_fields = ["name", "slug", "description", "offers__title", "remedies__title"]
    ordering = ["-priority", "pk"]
    filter_horizontal = ["categories"]
    readonly_fields = ["version", "created_at", "updated_at"]
    inlines = [RemedyTemplateInline, OfferTemplateInline, PolicyVersionInline]
    radio_fields = {"placement": admin.VERTICAL}
    actions = ["activate", "deactivate", "duplicate"]
    save_on_top = True
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("name", "slug"),
                    "description",
                    ("active", "priority"),
                    "placement",
                    ("valid_from", "valid_until"),
                    ("version", "updated_at"),
                ]
            },
        ),
        (
            "Conditions: when does this policy apply?",
            {
                "description": "Every condition you set must hold. Leave a condition empty to accept anything.",
                "fields": [
                    "categories",
                    ("severity_min", "severity_max"),
                    "faults",
                    "tiers",
                    "correctable",
                    ("min_repeat_count", "min_same_category_repeat_count"),
                    ("min_lifetime_value", "min_order_value"),
                ],
            },
        ),
        ("Escalation", {"fields": ["escalate"]}),
        (
            "Generosity: give more when it matters",
            {
                "description": "Scales the value of credits, discounts and refunds (not perks or escalations) "
                "with the incident's severity, repeats of the same mistake, and the customer's lifetime value.",
                "fields": [
                    ("generosity_per_severity", "generosity_per_repeat"),
                    ("generosity_per_1000_lifetime_value", "generosity_max_multiplier"),
                ],
            },
        ),
        (
            "Budget",
            {
                "description": "Options the remaining budget cannot cover are not offered, so a budget is never "
                "overspent.",
                "fields": [("monthly_cap", "per_customer_cap_30d")],
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Policy]:
        return super().get_queryset(request).prefetch_related("categories")

    @admin.display(description="placement", ordering="placement")
    def placement_code(self, obj: Policy) -> str:
        return obj.placement  # "ranked" or "lead": the choices' labels are sentences, too long for a column

    @admin.display(description="categories")
    def category_list(self, obj: Policy) -> str:
        slugs = [c.slug for c in obj.categories.all()]
        return ", ".join(slugs) if slugs else "any"

    def get_inlines(self, request: HttpRequest, obj: Policy | None) -> list:
        # A policy being added has no history yet.
        return self.inlines if obj is not None else [i for i in self.inlines if i is not PolicyVersionInline]

    def get_fieldsets(self, request: HttpRequest, obj: Policy | None = None) -> list:
        if obj is not None:
            return self.fieldsets
        first = {**self.fieldsets[0][1], "fields": [f for f in self.fieldsets[0][1]["fields"] if "version" not in f]}
        return [(None, first), *self.fieldsets[1:]]

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        if formset.model in (OfferTemplate, RemedyTemplate):
            # Offers (remedies) added without an explicit order go after the existing ones, in the order shown.
            kept = [f.instance for f in formset.forms if f.instance.pk and f not in formset.deleted_forms]
            next_order = max((o.order for o in kept), default=-1) + 1
            for offer_form in formset.forms:
                offer = offer_form.instance
                if offer.pk is None and offer_form.has_changed() and "order" not in offer_form.changed_data:
                    offer.order = next_order
                    next_order += 1
        super().save_formset(request, form, formset, change)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        version = policy_version_record(
            policy=form.instance, actor=request.user, reason="edited in the admin" if change else "created in the admin"
        )
        if version is not None:
            messages.info(request, f"Saved as version {version.number}.")

    @admin.action(description="Activate selected policies", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Policy]) -> None:
        changed = policy_set_active(policies=queryset, active=True, actor=request.user)
        self.message_user(request, f"Activated {changed} {'policy' if changed == 1 else 'policies'}.")

    @admin.action(description="Deactivate selected policies", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Policy]) -> None:
        changed = policy_set_active(policies=queryset, active=False, actor=request.user)
        self.message_user(request, f"Deactivated {changed} {'policy' if changed == 1 else 'policies'}.")

    @admin.action(description="Duplicate selected policies (copies start inactive)", permissions=["add"])
    def duplicate(self, request: HttpRequest, queryset: QuerySet[Policy]) -> None:
        copies = [policy_duplicate(policy=policy, actor=request.user) for policy in queryset]
        self.message_user(
            request, "Created inactive copies: " + ", ".join(c.slug for c in copies), level=messages.SUCCESS
        )


@admin.register(Category)
class CategoryAdmin(InvalidFormIsBadRequest, admin.ModelAdmin):
    list_display = ["slug", "name", "active", "policy_count"]
    list_filter = ["active"]
    search_fields = ["slug", "name", "description"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        return super().get_queryset(request).annotate(_policy_count=Count("policies"))

    @admin.display(description="policies", ordering="_policy_count")
    def policy_count(self, obj: Category) -> int:
        return obj._policy_count


@admin.register(Perk)
class PerkAdmin(InvalidFormIsBadRequest, admin.ModelAdmin):
    form = PerkAdminForm
    list_display = ["name", "slug", "tag_list", "cost", "active"]
    list_filter = ["active"]
    search_fields = ["slug", "name", "description"]

    @admin.display(description="interest tags")
    def tag_list(self, obj: Perk) -> str:
        return ", ".join(obj.tags)
