"""The Django admin for the people who write compensation policies."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from policies.choices import Fault, Tier
from policies.conditions import CONDITION_NAMES
from policies.history import CompareGroup, snapshot_changes, snapshots_compare
from policies.models import Category, OfferTemplate, Perk, Policy, PolicyVersion, RemedyTemplate
from policies.packs import RestoreError, policy_restore
from policies.serialization import policy_to_pack
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


class VersionCompareForm(forms.Form):
    """The two versions to put side by side, chosen from the policy's own."""

    left = forms.TypedChoiceField(label="From version", coerce=int)
    right = forms.TypedChoiceField(label="To version", coerce=int)
    only_changed = forms.BooleanField(label="Only rows that differ", required=False)

    def __init__(self, *args: Any, versions: list[PolicyVersion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(v.number, _version_label(v)) for v in versions]
        existing = ", ".join(f"v{v.number}" for v in reversed(versions)) or "none"
        for name in ("left", "right"):
            field = self.fields[name]
            field.choices = choices
            field.error_messages["invalid_choice"] = (
                f"%(value)s is not a version of this policy; its versions are {existing}."
            )


def _version_label(version: PolicyVersion) -> str:
    when = timezone.localtime(version.created_at).strftime("%Y-%m-%d %H:%M")
    who = f" by {version.created_by}" if version.created_by else ""
    how = f", {version.reason}" if version.reason else ""
    return f"v{version.number} ({when}{who}{how})"


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


def _may(request: HttpRequest, action: str) -> bool:
    """Whether the user has the ``action`` permission on policies."""
    opts = Policy._meta
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")


class PolicyVersionInline(admin.TabularInline):
    """The policy's versions, newest first, each with what changed in words, a comparison and a restore."""

    model = PolicyVersion
    verbose_name = "version"
    verbose_name_plural = "Version history"
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-number"]
    fields = ["number", "created_at", "created_by", "reason", "changes_list", "compare_link"]
    readonly_fields = [*fields, "compare_and_restore"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PolicyVersion]:
        # Each version's lines are computed from its snapshot and the one before, so versions saved
        # before the lines were in words read in words too.
        previous = PolicyVersion.objects.filter(policy=OuterRef("policy"), number__lt=OuterRef("number"))
        previous = previous.order_by("-number")
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(
                previous_number=Subquery(previous.values("number")[:1]),
                previous_snapshot=Subquery(previous.values("snapshot")[:1], output_field=models.JSONField()),
                current_number=F("policy__version"),
            )
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and _may(request, "change"):
            return [*self.fields[:-1], "compare_and_restore"]
        return list(self.fields)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Versions are part of the policy: whoever may see the policy may see its history.
        return _may(request, "view") or _may(request, "change")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="changes")
    def changes_list(self, obj: PolicyVersion) -> str:
        before = getattr(obj, "previous_snapshot", None)
        lines = obj.changes if before is None and obj.number > 1 else snapshot_changes(before, obj.snapshot)
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((line,) for line in lines)))

    @admin.display(description="compare")
    def compare_link(self, obj: PolicyVersion) -> str:
        current = getattr(obj, "current_number", None) or obj.policy.version
        other = getattr(obj, "previous_number", None) if obj.number == current else current
        now = mark_safe("<br>(current)") if obj.number == current else ""
        if other is None:
            return format_html("–{}", now)
        left, right = sorted((obj.number, other))
        url = reverse("admin:policies_policy_versions_compare", args=[obj.policy_id])
        return format_html('<a href="{}?left={}&amp;right={}">Compare with v{}</a>{}', url, left, right, other, now)

    @admin.display(description="compare")
    def compare_and_restore(self, obj: PolicyVersion) -> str:
        current = getattr(obj, "current_number", None) or obj.policy.version
        if obj.number == current:
            return self.compare_link(obj)
        url = reverse("admin:policies_policy_version_restore", args=[obj.policy_id, obj.number])
        return format_html(
            '{}<br><a class="button" href="{}" aria-label="Restore v{}">Restore…</a>',
            self.compare_link(obj),
            url,
            obj.number,
        )


def _wrappable(slug: str) -> str:
    """The slug, escaped, its line allowed to break after each underscore."""
    return format_html_join(mark_safe("_<wbr>"), "{}", ((part,) for part in slug.split("_")))


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
        "escalates",
        "version",
        "monthly_cap",
        "per_customer_cap_30d",
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

    class Media:
        css = {"all": ["policies/policy_admin.css"]}  # the list's columns wrap; wide title fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Policy]:
        return super().get_queryset(request).prefetch_related("categories")

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/versions/compare/",
                view(self.versions_compare_view),
                name="policies_policy_versions_compare",
            ),
            path(
                "<path:object_id>/versions/<int:number>/restore/",
                view(self.version_restore_view),
                name="policies_policy_version_restore",
            ),
            *super().get_urls(),
        ]

    def _policy_or_404(self, request: HttpRequest, object_id: str) -> Policy:
        policy = self.get_object(request, unquote(object_id))
        if policy is None:
            raise Http404(f"No policy with id {object_id!r}.")
        return policy

    def _page_context(self, request: HttpRequest, policy: Policy, title: str) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "policy": policy,
            "change_url": reverse("admin:policies_policy_change", args=[policy.pk]),
        }

    def versions_compare_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Two versions of the policy side by side, the rows that differ marked, and the change lines between."""
        policy = self._policy_or_404(request, object_id)
        if not self.has_view_permission(request, policy):
            raise PermissionDenied
        versions = list(policy.versions.select_related("created_by").defer("snapshot", "changes").order_by("-number"))
        numbers = [v.number for v in versions]
        defaults = {"right": numbers[0], "left": numbers[1] if len(numbers) > 1 else numbers[0]} if numbers else {}
        form = VersionCompareForm({**defaults, **request.GET.dict()}, versions=versions)
        context = self._page_context(request, policy, f"Compare versions of {policy.name}")
        context.update({"form": form, "versions": versions})
        status = 200
        if not versions:
            pass  # the page says there is nothing to compare
        elif form.is_valid():
            left, right = form.cleaned_data["left"], form.cleaned_data["right"]
            snapshots = dict(policy.versions.filter(number__in=[left, right]).values_list("number", "snapshot"))
            groups = snapshots_compare(snapshots[left], snapshots[right])
            if form.cleaned_data["only_changed"]:
                groups = [CompareGroup(g.title, tuple(r for r in g.rows if r.differs)) for g in groups if g.differs]
            context.update(
                {
                    "left": left,
                    "right": right,
                    "groups": groups,
                    "lines": snapshot_changes(snapshots[left], snapshots[right]) if left != right else [],
                }
            )
        else:
            status = 404  # a version the policy does not have
        return TemplateResponse(request, "admin/policies/policy/versions_compare.html", context, status=status)

    def version_restore_view(self, request: HttpRequest, object_id: str, number: int) -> HttpResponse:
        """GET: what restoring version ``number`` would change, and a button; POST: restore it."""
        policy = self._policy_or_404(request, object_id)
        if not self.has_change_permission(request, policy):
            raise PermissionDenied
        context = self._page_context(request, policy, f"Restore {policy.name} to v{number}?")
        context["number"] = number
        version = policy.versions.filter(number=number).first()
        if version is None:
            numbers = list(policy.versions.order_by("number").values_list("number", flat=True))
            context["errors"] = [
                f"{policy.name} has no version {number}; its versions are {', '.join(f'v{n}' for n in numbers)}."
            ]
            return TemplateResponse(request, "admin/policies/policy/version_restore.html", context, status=404)
        if request.method == "POST":
            try:
                restored = policy_restore(policy=policy, number=number, actor=request.user)
            except RestoreError as exc:
                context["errors"] = exc.errors
                return TemplateResponse(request, "admin/policies/policy/version_restore.html", context, status=400)
            if restored is None:
                self.message_user(request, f"{policy.name} is already as v{number}; nothing changed.", messages.INFO)
            else:
                self.log_change(request, policy, f"Restored v{number} as v{restored.number}.")
                self.message_user(request, f"Restored v{number} as v{restored.number}.", messages.SUCCESS)
            return redirect(context["change_url"])
        current = policy_to_pack(Policy.objects.prefetch_related("categories", "offers", "remedies").get(pk=policy.pk))
        context["lines"] = snapshot_changes(current, version.snapshot) if current != version.snapshot else []
        context["next_number"] = policy.version + 1
        return TemplateResponse(request, "admin/policies/policy/version_restore.html", context)

    @admin.display(description="placement", ordering="placement")
    def placement_code(self, obj: Policy) -> str:
        return obj.placement  # "ranked" or "lead": the choices' labels are sentences, too long for a column

    @admin.display(description="escalates", boolean=True, ordering="escalate")
    def escalates(self, obj: Policy) -> bool:
        return obj.escalate

    @admin.display(description="categories")
    def category_list(self, obj: Policy) -> str:
        # A long slug may wrap after an underscore (<wbr>), so the column stays narrow.
        slugs = [c.slug for c in obj.categories.all()]
        if not slugs:
            return "any"
        return format_html_join(", ", "{}", ((_wrappable(slug),) for slug in slugs))

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
