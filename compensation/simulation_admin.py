"""Policy simulations in the admin: "Simulate" on a policy's add and change forms, and a page that takes a pack.

"Simulate" runs the form as posted (the policy and its remedy and offer inlines, unsaved) as a one-policy draft
through ``simulate_policies`` and shows the result above the same form, posted values intact, so an admin can
adjust, simulate again and then save. Nothing is saved: no policy, no offer, no version, no revision move.

The simulation runs in the request. Over more than ``SIMULATION_ADMIN_SAMPLE`` incidents in the window it
replays every n-th incident (n the smallest that brings the count under the limit) and the page says so.

:class:`PolicySimulateMixin` goes first in the bases of the registered policy admin class (compensation/admin.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.forms.formsets import all_valid
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import select_template
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from compensation.models import Incident
from compensation.services.simulations import SimulationError, simulate_policies
from policies.models import OfferTemplate, Policy, RemedyTemplate
from policies.packs import PackError, pack_load
from policies.serialization import policy_to_pack

SIMULATE = "_simulate"  # the change form's button
DAYS_PREFIX = "_simulate"  # its days select posts as "_simulate-days", apart from the policy's own fields
DAYS_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days")]
DEFAULT_DAYS = 30


# --- Running a simulation for a page -----------------------------------------------------------


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


@dataclass(frozen=True)
class AdminSimulation:
    """A simulation's result (``simulate_policies --json``'s shape) as the admin shows it.

    ``focus`` holds the slugs of the policies the draft names (the form's one, or the pack's), shown first.
    """

    result: dict[str, Any]
    seconds: float
    focus: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def days(self) -> int:
        return self.result["days"]

    @property
    def sample_note(self) -> str | None:
        sample = self.result.get("sample")
        if not sample:
            return None
        every = sample["every"]
        return (
            f"A sample: every {_ordinal(every)} incident ({sample['incidents']:,} of {sample['of']:,}); counts and "
            f"costs are the sample's; projections scale the sample's daily cost up by {every:,}."
        )

    @property
    def cost_change(self) -> str:
        change = Decimal(self.result["expected_cost_after"]) - Decimal(self.result["expected_cost_before"])
        return f"{change:+.2f}"

    @property
    def focus_rows(self) -> list[dict[str, Any]]:
        rows = {row["slug"]: row for row in self.result["policies"]}
        return [rows[slug] for slug in self.focus if slug in rows]

    @property
    def other_changed_rows(self) -> list[dict[str, Any]]:
        """Policies outside the draft whose figures the draft changes (they lose or win places among a/b/c)."""
        return [
            row
            for row in self.result["policies"]
            if row["slug"] not in self.focus
            and (row["shown_before"] != row["shown_after"] or row["expected_cost_before"] != row["expected_cost_after"])
        ]

    def _names_focus(self, warning: str) -> bool:
        """A warning about a policy of the draft, or about no policy in particular (no incidents at all)."""
        return not warning.startswith("policy ") or any(warning.startswith(f"policy {slug!r}") for slug in self.focus)

    @property
    def focus_warnings(self) -> list[str]:
        return [w for w in self.result["warnings"] if self._names_focus(w)]

    @property
    def other_warnings(self) -> list[str]:
        return [w for w in self.result["warnings"] if not self._names_focus(w)]


def admin_sample_every(*, days: int, now: datetime) -> int:
    """Every how many incidents the admin replays one: 1 up to ``SIMULATION_ADMIN_SAMPLE`` incidents in the
    window, else the smallest n that brings them under it."""
    in_window = Incident.objects.filter(created_at__gte=now - timedelta(days=days), created_at__lte=now).count()
    return max(1, math.ceil(in_window / settings.SIMULATION_ADMIN_SAMPLE))


def admin_simulate(
    document: Any, *, days: int, focus: Sequence[str] = (), notes: Sequence[str] = (), now: datetime | None = None
) -> AdminSimulation:
    """``simulate_policies`` in the request, sampled as :func:`admin_sample_every` says. Writes nothing.

    Raises ``packs.PackError`` or ``SimulationError`` as ``simulate_policies`` does."""
    now = now or timezone.now()
    started = time.perf_counter()
    every = admin_sample_every(days=days, now=now)
    result = simulate_policies(document, days=days, now=now, sample_every=every)
    return AdminSimulation(result=result, seconds=time.perf_counter() - started, focus=tuple(focus), notes=tuple(notes))


# --- The unsaved form as a pack entry ---------------------------------------------------------------


def _formset_rows(formset: Any) -> list[Any]:
    """The inline rows a save would keep, unsaved, in the order they would be stored.

    Left out: rows marked for deletion and extra forms left empty. A new row without an order of its own goes
    after the kept ones, in the order shown, as ``PolicyAdmin.save_formset`` numbers it; stored rows sort by
    (order, id) and new ones after the stored ones of the same order, as their new ids would put them."""
    deleted = set(map(id, formset.deleted_forms))
    kept = [f for f in formset.forms if id(f) not in deleted and (f.instance.pk is not None or f.has_changed())]
    next_order = max((f.instance.order for f in kept if f.instance.pk is not None), default=-1) + 1
    keyed = []
    for position, row_form in enumerate(kept):
        row = row_form.instance
        order = row.order
        if row.pk is None and "order" not in row_form.changed_data:
            order, next_order = next_order, next_order + 1
        keyed.append(((order, row.pk is None, row.pk or position), row))
    return [row for _, row in sorted(keyed, key=lambda pair: pair[0])]


def policy_form_pack(form: forms.ModelForm, formsets: Iterable[Any], *, slug: str | None = None) -> dict[str, Any]:
    """The validated policy form and its inline formsets as one pack entry, nothing saved.

    ``slug``: the stored policy's slug, so a draft that renames the policy is still that policy (an import
    matches by slug; a save keeps the row, its offers and what ranking learned about them)."""
    policy = form.instance
    if "categories" in form.cleaned_data:
        categories = [category.slug for category in form.cleaned_data["categories"]]
    else:
        categories = [category.slug for category in policy.categories.all()] if policy.pk else []
    rows: dict[type, list[Any]] = {OfferTemplate: [], RemedyTemplate: []}
    for formset in formsets:
        if formset.model in rows:
            rows[formset.model] = _formset_rows(formset)
    entry = policy_to_pack(policy, categories=categories, offers=rows[OfferTemplate], remedies=rows[RemedyTemplate])
    if slug is not None:
        entry["slug"] = slug
    return entry


# --- Forms ----------------------------------------------------------------------------------------


def _days_field(help_text: str) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label="Simulate over the last",
        choices=DAYS_CHOICES,
        coerce=int,
        required=False,  # left out: the default
        empty_value=DEFAULT_DAYS,
        initial=DEFAULT_DAYS,
        help_text=help_text,
    )


class SimulateDaysForm(forms.Form):
    days = _days_field(
        "Replays the incidents created in these days against the live policies and against them with "
        "this form's policy as posted. Nothing is saved."
    )


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{math.ceil(n / 1024):,} KB"


class PackSimulateForm(forms.Form):
    pack = forms.FileField(
        label="Policy pack",
        help_text="A YAML or JSON pack as import_policies takes it (a .json file is read as JSON, any other as "
        "YAML). Policies match the live ones by slug; live policies it does not name stay as they are.",
    )
    days = _days_field("Replays the incidents created in these days.")

    def clean_pack(self) -> tuple[str, str]:
        upload = self.cleaned_data["pack"]
        limit = settings.SIMULATION_PACK_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"The file is {_size(upload.size)}; a pack may be at most {_size(limit)}.")
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError(f"{upload.name}: is not UTF-8 text; a pack is a YAML or JSON file.") from None
        return upload.name, text


# --- The admin ------------------------------------------------------------------------------------


class PolicySimulateMixin:
    """For the policy ``ModelAdmin``: the "Simulate" button on its add and change forms, the pack page
    (``simulate/``) and a policy's simulate-able form by slug (``simulate/<slug>/``)."""

    simulate_change_form_template = "admin/policies/policy/change_form_simulate.html"
    simulate_pack_template = "admin/policies/policy/simulate.html"

    # -- URLs

    def get_urls(self) -> list:
        view = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path("simulate/", view(self.pack_simulate_view), name=self._url_name("simulate")),
            path("simulate/<str:slug>/", view(self.policy_simulate_view), name=self._url_name("simulate_policy")),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def _url_name(self, view: str) -> str:
        opts = self.opts  # type: ignore[attr-defined]
        return f"{opts.app_label}_{opts.model_name}_{view}"

    def _pack_url(self) -> str:
        return reverse(f"admin:{self._url_name('simulate')}")

    # -- The change form

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "simulate_pack_url": self._pack_url()}
        return super().changelist_view(request, extra_context)  # type: ignore[misc]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        response = super().render_change_form(  # type: ignore[misc]
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )
        if not isinstance(response, TemplateResponse) or context.get("is_popup"):
            return response
        # Our template adds the button and the result to whichever change form template the class would use.
        response.context_data["simulate_base_template"] = select_template(response.template_name).template.name
        response.template_name = self.simulate_change_form_template
        if "simulate_days_form" not in response.context_data:
            posted = request.method == "POST" and f"{DAYS_PREFIX}-days" in request.POST
            response.context_data["simulate_days_form"] = SimulateDaysForm(
                request.POST if posted else None, prefix=DAYS_PREFIX
            )
        response.context_data["simulate_button"] = SIMULATE
        model_admin: Any = self
        response.context_data["simulate_allowed"] = (
            model_admin.has_add_permission(request) if add else model_admin.has_change_permission(request, obj)
        )
        return response

    def _changeform_view(
        self, request: HttpRequest, object_id: str | None, form_url: str, extra_context: dict[str, Any] | None
    ) -> HttpResponse:
        if request.method == "POST" and SIMULATE in request.POST and "_saveasnew" not in request.POST:
            return self._simulate_changeform(request, object_id, form_url, extra_context)
        return super()._changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def _simulate_changeform(
        self, request: HttpRequest, object_id: str | None, form_url: str, extra_context: dict[str, Any] | None
    ) -> HttpResponse:
        """Django's POST of the add or change form (the same permissions, forms, formsets and validation), with a
        simulation where the save would be, and the form rendered again whatever the outcome."""
        model_admin: Any = self
        add = object_id is None
        if add:
            if not model_admin.has_add_permission(request):
                raise PermissionDenied
            obj = None
        else:
            obj = model_admin.get_object(request, unquote(object_id))
            if not model_admin.has_change_permission(request, obj):
                raise PermissionDenied
            if obj is None:
                return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
        stored_slug = obj.slug if obj is not None else None

        fieldsets = model_admin.get_fieldsets(request, obj)
        model_form = model_admin.get_form(request, obj, change=not add, fields=flatten_fieldsets(fieldsets))
        form = model_form(request.POST, request.FILES, instance=obj)
        formsets, inline_instances = model_admin._create_formsets(request, form.instance, change=not add)
        form_valid = form.is_valid()
        formsets_valid = all_valid(formsets)
        days_form = SimulateDaysForm(request.POST, prefix=DAYS_PREFIX)

        simulation, problems = None, []
        if form_valid and formsets_valid and days_form.is_valid():
            notes = []
            new_slug = form.cleaned_data.get("slug")
            if stored_slug is not None and new_slug and new_slug != stored_slug:
                notes.append(
                    f"The slug becomes {new_slug!r} when saved; the simulation names the policy by its stored slug "
                    f"{stored_slug!r}, as it stays the same policy."
                )
            entry = policy_form_pack(form, formsets, slug=stored_slug)
            if not entry["active"]:
                notes.append("The form leaves this policy inactive: the result is what turning it off would do.")
            try:
                simulation = admin_simulate(
                    {"policies": [entry]}, days=days_form.cleaned_data["days"], focus=[entry["slug"]], notes=notes
                )
            except PackError as exc:
                problems = [error.removeprefix("policies[0].") for error in exc.errors]
            except SimulationError as exc:
                problems = [str(exc)]
        elif not days_form.is_valid():
            problems = [f"Simulate over the last: {error}" for error in days_form.errors.get("days", [])]

        context = self._change_form_context(request, form, formsets, inline_instances, obj, fieldsets, object_id)
        context.update(
            {
                "simulation": simulation,
                "simulation_problems": problems,
                "simulate_days_form": days_form,
                "simulate_pack_url": self._pack_url(),
            }
        )
        context.update(extra_context or {})
        response = model_admin.render_change_form(request, context, add=add, change=not add, obj=obj, form_url=form_url)
        if problems:
            response.status_code = 400
        return response

    def _change_form_context(
        self,
        request: HttpRequest,
        form: forms.ModelForm,
        formsets: list[Any],
        inline_instances: list[Any],
        obj: Any,
        fieldsets: list[Any],
        object_id: str | None,
    ) -> dict[str, Any]:
        """The context Django's ``_changeform_view`` renders a posted form with (Django 5.2), for an editor."""
        model_admin: Any = self
        add = obj is None
        admin_form = helpers.AdminForm(
            form,
            list(fieldsets),
            model_admin.get_prepopulated_fields(request, obj),
            model_admin.get_readonly_fields(request, obj),
            model_admin=model_admin,
        )
        media = model_admin.media + admin_form.media
        inline_formsets = model_admin.get_inline_formsets(request, formsets, inline_instances, obj)
        for inline_formset in inline_formsets:
            media += inline_formset.media
        return {
            **model_admin.admin_site.each_context(request),
            "title": (_("Add %s") if add else _("Change %s")) % model_admin.opts.verbose_name,
            "subtitle": str(obj) if obj else None,
            "adminform": admin_form,
            "object_id": object_id,
            "original": obj,
            "is_popup": False,
            "to_field": None,
            "media": media,
            "inline_admin_formsets": inline_formsets,
            "errors": helpers.AdminErrorList(form, formsets),
            "preserved_filters": model_admin.get_preserved_filters(request),
        }

    # -- The pack page

    def pack_simulate_view(self, request: HttpRequest) -> HttpResponse:
        """A pack upload simulated as ``simulate_policies`` would: errors as the import gives them, nothing
        written. Staff with the policy change permission only."""
        model_admin: Any = self
        if not model_admin.has_change_permission(request):
            raise PermissionDenied
        form = PackSimulateForm(request.POST or None, request.FILES or None, initial={"days": DEFAULT_DAYS})
        simulation, problems, status = None, [], 200
        if request.method == "POST":
            if form.is_valid():
                name, text = form.cleaned_data["pack"]
                try:
                    document = pack_load(name, text=text)
                    focus = _pack_slugs(document)
                    simulation = admin_simulate(document, days=form.cleaned_data["days"], focus=focus)
                except PackError as exc:
                    problems = exc.errors
                except SimulationError as exc:
                    problems = [str(exc)]
            if problems or form.errors:
                status = 400
        context = {
            **model_admin.admin_site.each_context(request),
            "title": "Simulate a policy pack",
            "opts": model_admin.opts,
            "form": form,
            "simulation": simulation,
            "simulation_problems": problems,
            "sample_limit": f"{settings.SIMULATION_ADMIN_SAMPLE:,}",
            "pack_limit": _size(settings.SIMULATION_PACK_MAX_BYTES),
        }
        return TemplateResponse(request, self.simulate_pack_template, context, status=status)

    def policy_simulate_view(self, request: HttpRequest, slug: str) -> HttpResponse:
        """A stored policy's change form (where "Simulate" is), by slug; an unknown slug is the pack page with an
        error message, as Django's admin answers an unknown id."""
        model_admin: Any = self
        if not model_admin.has_change_permission(request):
            raise PermissionDenied
        policy = Policy.objects.filter(slug=slug).only("pk").first()
        if policy is None:
            messages.error(request, f"No policy has the slug “{slug}”; nothing was simulated.")
            return HttpResponseRedirect(self._pack_url())
        change = reverse(f"admin:{self._url_name('change')}", args=[policy.pk])
        return HttpResponseRedirect(f"{change}#simulate")


def _pack_slugs(document: Any) -> list[str]:
    """The slugs of the pack's policies, in its order (what the import would check, read leniently)."""
    policies = document.get("policies") if isinstance(document, dict) else None
    if not isinstance(policies, list):
        return []
    return [entry["slug"] for entry in policies if isinstance(entry, dict) and isinstance(entry.get("slug"), str)]
