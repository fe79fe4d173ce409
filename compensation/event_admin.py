"""Operational events in the admin (API.md v2, "Proactive recovery"): the events with their progress, each
event's customers, and a page that makes an event from a CSV of customers, previewed before anything is made.

Who may do what: events are a manager's tool (the API's ``IsManager``), so every page here asks for the
manager role (superusers have it) on top of Django's own model permission: ``view_event`` to see events and
their customers, ``add_event`` to make one from a CSV, ``change_event`` to cancel one or re-send its failed
e-mails. Nobody adds, edits or deletes an event's rows by hand: they are what happened.

The CSV page validates every row with the API's own code (``event_input_validate``) and makes the event with
the API's own service (``event_create``: the same daily cap, the same job). Between the preview and "Create
the event" the file is kept in the cache (Redis in production, shared by every web process) for
``UPLOAD_KEPT_SECONDS`` under a random key; the page carries that key, signed with ``django.core.signing``
for the user who uploaded it, and the file's SHA-256. Re-posting the text in a hidden field would not do:
Django holds a form's fields (not its files) to ``DATA_UPLOAD_MAX_MEMORY_SIZE``, 1 MiB, and a CSV may be up
to ``EVENT_MAX_BODY_BYTES``. Pressing "Create the event" twice makes one event: the second press finds the
first's event and goes to it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from rest_framework import serializers

from compensation.errors import ApplicationError
from compensation.models import Event, EventCustomer
from compensation.roles import Role, user_has_role
from compensation.serializers import _repeats, event_input_validate
from compensation.services.events import FIGURES, MAX_PER_CALL, event_cancel, event_create, event_figures, event_resend
from policies.choices import Fault
from policies.index import PolicyIndex, policy_index_get

CSV_COLUMNS = (
    "external_id",
    "name",
    "email",
    "tier",
    "lifetime_value",
    "interests",
    "order_value",
    "external_ref",
)
INTERESTS_SEPARATOR = ";"
PREVIEW_ROWS = 20
ERRORS_SHOWN = 1000  # a page of 10,000 errors helps nobody: the first thousand, and how many more
RESEND_AT_ONCE = 10_000  # failed e-mails one press queues again (the job sends them, paced)
UPLOAD_KEPT_SECONDS = 60 * 60
UPLOAD_SALT = "compensation.event-admin-upload"
FIGURE_LABELS = {
    "total": "total",
    "processed": "processed",
    "emailed": "e-mailed",
    "chosen": "chosen",
    "declined": "declined",
    "escalated": "escalated",
    "failed": "failed",
    "no_options": "no options",
    "cancelled": "cancelled",
}


def _is_manager(request: HttpRequest) -> bool:
    return user_has_role(request.user, Role.MANAGER)


def _may(request: HttpRequest, codename: str) -> bool:
    return _is_manager(request) and request.user.has_perm(f"compensation.{codename}")


def _count(n: int) -> str:
    return f"{n:,}"


# --- Reading the CSV ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvProblem:
    """One problem, where the file has it: ``row`` as a spreadsheet numbers it (the header is row 1; None: the
    file as a whole), ``column`` a header name (None: the whole row)."""

    row: int | None
    column: str | None
    message: str


@dataclass(frozen=True)
class CsvRow:
    number: int
    cells: dict[str, str]


@dataclass
class CsvRead:
    columns: list[str] = field(default_factory=list)
    rows: list[CsvRow] = field(default_factory=list)
    problems: list[CsvProblem] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        """Whether the file could be read into rows at all (its own problems are about the file, not a row)."""
        return not any(problem.row is None or problem.row == 1 for problem in self.problems)


def csv_read(raw: bytes) -> CsvRead:
    """A CSV file's customer rows, as text; what is wrong with the file itself (not UTF-8, empty, no header,
    unknown or missing columns, a row with more cells than the header) as problems. Rows left blank are
    skipped but counted, so the row numbers are the spreadsheet's."""
    read = CsvRead()
    if raw.startswith(b"PK\x03\x04"):
        read.problems.append(
            CsvProblem(None, None, "This is a workbook (.xlsx), not a CSV file: save it as “CSV UTF-8”, upload that.")
        )
        return read
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as Excel writes one, is not part of the header
    except UnicodeDecodeError as exc:
        read.problems.append(
            CsvProblem(
                None,
                None,
                f"The file is not UTF-8 text (byte {exc.start + 1:,} is not); save it as “CSV UTF-8” and upload it "
                "again.",
            )
        )
        return read
    if not text.strip():
        read.problems.append(CsvProblem(None, None, "The file is empty: it needs a header row and one row a customer."))
        return read
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        read.columns = [name.strip().lower() for name in header]
        if not _header_checked(read):
            return read
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(read.columns):
                read.problems.append(
                    CsvProblem(
                        number,
                        None,
                        f"has {len(cells)} cells, the header {len(read.columns)}; a cell with a comma in it needs "
                        "double quotes around it",
                    )
                )
            read.rows.append(
                CsvRow(number, {name: cell.strip() for name, cell in zip(read.columns, cells, strict=False)})
            )
    except csv.Error as exc:
        where = f"line {reader.line_num:,}: {exc}"
        read.problems.append(CsvProblem(None, None, f"The file is not a CSV file the page can read ({where})."))
        return read
    if not read.rows and not read.problems:
        read.problems.append(CsvProblem(None, None, "The file has a header row but no customers."))
    return read


def _header_checked(read: CsvRead) -> bool:
    columns = read.columns
    known = ", ".join(CSV_COLUMNS)
    if len(columns) == 1 and ";" in columns[0]:
        read.problems.append(
            CsvProblem(1, None, "The columns are separated by semicolons; save the file with commas (“CSV UTF-8”).")
        )
        return False
    for name in columns:
        if name and name not in CSV_COLUMNS:
            read.problems.append(CsvProblem(1, name, f"unknown column {name!r}; the columns are: {known}"))
        elif not name:
            read.problems.append(CsvProblem(1, None, f"a column has no name; the columns are: {known}"))
    for name in {name for name in columns if columns.count(name) > 1}:
        read.problems.append(CsvProblem(1, name, f"the column {name!r} appears {columns.count(name)} times"))
    if "external_id" not in columns:
        read.problems.append(
            CsvProblem(1, "external_id", f"the header row has no external_id column; the columns are: {known}")
        )
    return not read.problems


def csv_customer(cells: Mapping[str, str]) -> dict[str, Any]:
    """A row as the API's customer object: an empty cell is left out (the customer keeps what is stored, or
    takes the default), interests split on ``INTERESTS_SEPARATOR``."""
    customer: dict[str, Any] = {"external_id": cells.get("external_id", "")}
    for name in CSV_COLUMNS[1:]:
        value = cells.get(name, "")
        if not value:
            continue
        if name == "interests":
            customer[name] = [item.strip() for item in value.split(INTERESTS_SEPARATOR) if item.strip()]
        else:
            customer[name] = value
    return customer


_ROW_PATH = re.compile(r"^customers\[(\d+)\](?:\.([a-z_]+))?")


def row_problems(errors: Mapping[str, Sequence[Any]], rows: Sequence[CsvRow]) -> tuple[list[CsvProblem], dict]:
    """The API's flat errors (``customers[3].email``) as problems at the file's rows and columns; the errors of
    the event's own fields are returned apart, by field."""
    problems: list[CsvProblem] = []
    others: dict[str, list[str]] = {}
    for key, messages_ in errors.items():
        texts = [str(message) for message in messages_]
        matched = _ROW_PATH.match(key)
        if matched and int(matched[1]) < len(rows):
            number = rows[int(matched[1])].number
            problems.extend(CsvProblem(number, matched[2], _in_words(text, rows)) for text in texts)
        elif key == "customers":
            problems.extend(CsvProblem(None, None, _in_words(text, rows)) for text in texts)
        else:
            others.setdefault(key, []).extend(texts)
    return problems, others


_SIBLING = re.compile(r"customers\[(\d+)\]")


def _in_words(text: str, rows: Sequence[CsvRow]) -> str:
    """The API's messages name other rows by index (``is already customers[3] of this call``): the file's row
    numbers instead; and its advice to post more is the CSV page's."""
    text = _SIBLING.sub(lambda m: f"row {rows[int(m[1])].number}" if int(m[1]) < len(rows) else m[0], text)
    text = text.replace(" of this call", " of this file")
    return text.replace(
        "add more with POST /api/v1/events/{id}/customers/",
        "split the file (the API adds more to an event: POST /api/v1/events/{id}/customers/)",
    )


# --- The CSV page's form and what it keeps between preview and create -------------------------------


class EventUploadForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=200,
        widget=forms.TextInput(attrs={"size": 70}),
        help_text="Customers read it in their e-mail (“Maria, we're sorry: …”): write it for them, e.g. “your "
        "delivery of Tuesday 3 June did not arrive”.",
    )
    category = forms.ChoiceField(label="Category", help_text="Each customer's incident is of this category.")
    severity = forms.IntegerField(label="Severity", min_value=1, max_value=5, initial=3, help_text="1 (minor) to 5.")
    fault = forms.ChoiceField(label="Fault", choices=Fault.choices, initial=Fault.COMPANY)
    correctable = forms.BooleanField(
        label="Correctable", required=False, initial=True, help_text="Whether the harm can still be put right."
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Optional; the e-mail shows it under the name, and it is each incident's description (the name "
        "when left empty).",
    )
    occurred_at = forms.SplitDateTimeField(
        label="Occurred at",
        required=False,
        widget=AdminSplitDateTime,
        help_text="Optional; now when left empty. Not in the future.",
    )
    file = forms.FileField(
        label="Customers (CSV)",
        required=False,  # not when a previewed file is kept; the view says when one is missing
        help_text="UTF-8 CSV with a header row; see the columns above.",
    )

    def __init__(self, *args: Any, index: PolicyIndex, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        categories = sorted(index.categories.values(), key=lambda c: c.name.lower())
        self.fields["category"].choices = [("", "---------")] + [(c.slug, f"{c.name} ({c.slug})") for c in categories]

    def event_data(self) -> dict[str, Any]:
        """The valid fields as the API's body takes them (the invalid ones left out: the form names them)."""
        data = {name: value for name, value in self.cleaned_data.items() if name != "file" and value is not None}
        if data.get("category") == "":
            del data["category"]
        return data


@dataclass(frozen=True)
class KeptUpload:
    key: str
    name: str
    raw: bytes
    token: str


def _cache_key(key: str, what: str = "file") -> str:
    return f"event-admin-upload:{key}:{what}"


def upload_keep(*, raw: bytes, name: str, user: Any) -> KeptUpload:
    key = secrets.token_urlsafe(18)
    cache.set(_cache_key(key), raw, UPLOAD_KEPT_SECONDS)
    token = signing.dumps(
        {"key": key, "user": user.pk, "sha256": hashlib.sha256(raw).hexdigest(), "name": name}, salt=UPLOAD_SALT
    )
    return KeptUpload(key=key, name=name, raw=raw, token=token)


class UploadLost(Exception):
    """The previewed file is no longer here (kept too long, or the token is not this user's or was altered)."""


def _upload_claim(token: str, user: Any) -> dict[str, Any]:
    try:
        claim = signing.loads(token, salt=UPLOAD_SALT, max_age=UPLOAD_KEPT_SECONDS)
    except signing.BadSignature:
        raise UploadLost from None
    if not isinstance(claim, dict) or claim.get("user") != user.pk or not isinstance(claim.get("key"), str):
        raise UploadLost
    return claim


def upload_kept(token: str, *, user: Any) -> KeptUpload:
    claim = _upload_claim(token, user)
    raw = cache.get(_cache_key(claim["key"]))
    if not isinstance(raw, bytes) or hashlib.sha256(raw).hexdigest() != claim.get("sha256"):
        raise UploadLost
    return KeptUpload(key=claim["key"], name=str(claim.get("name", "")), raw=raw, token=token)


@dataclass
class Preview:
    """What the CSV page shows after a submit."""

    name: str = ""
    read: CsvRead = field(default_factory=CsvRead)
    problems: list[CsvProblem] = field(default_factory=list)
    kept: KeptUpload | None = None

    @property
    def total(self) -> int:
        return len(self.read.rows)

    @property
    def sorted_problems(self) -> list[CsvProblem]:
        def where(p: CsvProblem) -> tuple[int, int]:
            return p.row or 0, CSV_COLUMNS.index(p.column) if p.column in CSV_COLUMNS else -1

        return sorted(self.problems, key=where)

    @property
    def shown_problems(self) -> list[CsvProblem]:
        return self.sorted_problems[:ERRORS_SHOWN]

    @property
    def problems_not_shown(self) -> int:
        return max(0, len(self.problems) - ERRORS_SHOWN)

    @property
    def columns(self) -> list[str]:
        return [name for name in CSV_COLUMNS if name in self.read.columns]

    def table(self) -> list[dict[str, Any]]:
        """The first rows as read: each cell, and whether the row or the cell has a problem."""
        bad = {(p.row, p.column) for p in self.problems}
        bad_rows = {p.row for p in self.problems}
        shown = []
        for row in self.read.rows[:PREVIEW_ROWS]:
            customer = csv_customer(row.cells)
            cells = []
            for name in self.columns:
                value = customer.get(name, "")
                text = ", ".join(value) if isinstance(value, list) else value
                cells.append({"column": name, "text": text, "bad": (row.number, name) in bad})
            shown.append({"number": row.number, "cells": cells, "bad": row.number in bad_rows})
        return shown


# --- The admins --------------------------------------------------------------------------------------


class EventChangeList(ChangeList):
    """The page's events with their figures, counted once for the page (two queries, whatever its size)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        events = list(self.result_list)
        figures = event_figures([event.pk for event in events])
        for event in events:
            event.figures = figures[event.pk]


def _figures_of(event: Event) -> dict[str, int]:
    """The figures the change list counted, or counted now for one event (its change page)."""
    figures = getattr(event, "figures", None)
    if figures is None:
        figures = event.figures = event_figures([event.pk])[event.pk]
    return figures


def progress_bar(figures: Mapping[str, int]) -> SafeString:
    """``<progress>`` with its words: “1,204 of 4,000 e-mailed”; the words are also the bar's accessible name."""
    total, emailed = figures.get("total", 0), figures.get("emailed", 0)
    words = f"{emailed:,} of {total:,} e-mailed"
    return format_html(
        '<span class="event-progress"><progress max="{}" value="{}" aria-label="{}" style="width: 6em; '
        'vertical-align: middle"></progress> <span aria-hidden="true" style="white-space: nowrap">{}</span></span>',
        max(total, 1),
        min(emailed, total),
        words,
        words,
    )


def _customers_url(event_id: int, **filters: str) -> str:
    query = {"event__id__exact": str(event_id), **{f"{name}__exact": value for name, value in filters.items()}}
    return f"{reverse('admin:compensation_eventcustomer_changelist')}?{urlencode(query)}"


def _figure_column(name: str) -> Any:
    def column(self: EventAdmin, obj: Event) -> Any:
        value = _figures_of(obj)[name]
        if name == "failed" and value:
            return format_html('<a href="{}">{}</a>', _customers_url(obj.pk, status="failed"), _count(value))
        return _count(value)

    column.__name__ = f"figure_{name}"
    label = FIGURE_LABELS[name].replace("-", "\u2011")  # a header may wrap, "e-mailed" not at its hyphen
    return admin.display(description=label)(column)


class EventAdmin(admin.ModelAdmin):
    """Events, newest first, with their progress; an event's page with its figures, its customers, and
    "Cancel" and "Re-send failed e-mails"; and the CSV page that makes one."""

    change_list_template = "admin/compensation/event/change_list.html"
    change_form_template = "admin/compensation/event/change_form.html"
    upload_template = "admin/compensation/event/upload.html"
    cancel_template = "admin/compensation/event/cancel.html"

    list_display = [
        "name",
        "category_name",
        "status",
        "created_by",
        "created_at",
        "progress",
        *(f"figure_{name}" for name in FIGURES),
    ]
    list_filter = ["status", "category"]
    list_select_related = ["category", "created_by"]
    search_fields = ["name"]
    fields = [
        "name",
        "category",
        "severity",
        "fault",
        "correctable",
        "description",
        "occurred_at",
        "status",
        "created_by",
        "created_at",
        "finished_at",
        "cancelled_by",
        "progress",
        "figures",
        "customers",
    ]
    readonly_fields = fields

    # -- Permissions: managers only; nobody edits an event by hand

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_manager(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # events are made from a CSV (the upload page), never by the model form

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EventChangeList

    # -- Columns and fields

    @admin.display(description="category", ordering="category__name")
    def category_name(self, obj: Event) -> str:
        return obj.category.name

    @admin.display(description="progress")
    def progress(self, obj: Event) -> SafeString:
        return progress_bar(_figures_of(obj))

    @admin.display(description="figures")
    def figures(self, obj: Event) -> SafeString:
        figures = _figures_of(obj)
        return format_html(
            '<table class="event-figures"><thead><tr>{}</tr></thead><tbody><tr>{}</tr></tbody></table>',
            format_html_join("", '<th scope="col">{}</th>', ((FIGURE_LABELS[n],) for n in FIGURES)),
            format_html_join("", "<td>{}</td>", ((_count(figures[n]),) for n in FIGURES)),
        )

    @admin.display(description="customers")
    def customers(self, obj: Event) -> SafeString:
        figures = _figures_of(obj)
        links = format_html('<a href="{}">All {} customers</a>', _customers_url(obj.pk), _count(figures["total"]))
        if figures["failed"]:
            url = _customers_url(obj.pk, status="failed")
            failed = format_html('<a href="{}">{} whose e-mail failed</a>', url, _count(figures["failed"]))
            links = format_html("{} · {}", links, failed)
        return links

    # -- Pages

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("upload/", view(self.upload_view), name="compensation_event_upload"),
            path("upload/sample.csv", view(self.sample_view), name="compensation_event_upload_sample"),
            path("<int:event_id>/cancel/", view(self.cancel_view), name="compensation_event_cancel"),
            path("<int:event_id>/resend/", view(self.resend_view), name="compensation_event_resend"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "may_upload": _may(request, "add_event")}
        return super().changelist_view(request, extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "may_act": _may(request, "change_event")}
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        event = kwargs.get("obj")
        if event is not None:
            figures = _figures_of(event)
            context["can_cancel"] = event.status == Event.Status.PROCESSING
            context["failed_count"] = (  # those that can be re-sent: failed with their offer set made
                EventCustomer.objects.filter(
                    event=event, status=EventCustomer.Status.FAILED, offer_set__isnull=False
                ).count()
                if event.status != Event.Status.CANCELLED and figures["failed"]
                else 0
            )
            context["resend_at_once"] = RESEND_AT_ONCE
        return super().render_change_form(request, context, *args, **kwargs)

    def _change_url(self, event_id: int) -> str:
        return reverse("admin:compensation_event_change", args=[event_id])

    def cancel_view(self, request: HttpRequest, event_id: int) -> HttpResponse:
        """GET: what cancelling would stop, and a button; POST: ``event_cancel``, as the API's cancel."""
        if not _may(request, "change_event"):
            raise PermissionDenied
        event = get_object_or_404(Event.objects.select_related("category", "created_by"), pk=event_id)
        if request.method == "POST":
            try:
                event_cancel(event_id=event.pk, user=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                left = EventCustomer.objects.filter(event=event, status=EventCustomer.Status.CANCELLED).count()
                said = f"The event was cancelled: {_count(left)} customer(s) will not be e-mailed."
                self.message_user(request, said, messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(event.pk))
        unsent = EventCustomer.objects.filter(
            event=event, status__in=(EventCustomer.Status.QUEUED, EventCustomer.Status.READY)
        ).count()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Cancel the event “{event.name}”?",
            "opts": self.opts,
            "event": event,
            "unsent": unsent,
            "figures": _figures_of(event),
        }
        return TemplateResponse(request, self.cancel_template, context)

    def resend_view(self, request: HttpRequest, event_id: int) -> HttpResponse:
        """POST: the event's failed e-mails again (``event_resend``), up to ``RESEND_AT_ONCE`` a press."""
        if not _may(request, "change_event"):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        event = get_object_or_404(Event, pk=event_id)
        failed = list(
            EventCustomer.objects.filter(event=event, status=EventCustomer.Status.FAILED, offer_set__isnull=False)
            .order_by("position")
            .values_list("pk", flat=True)[: RESEND_AT_ONCE + 1]
        )
        if event.status == Event.Status.CANCELLED:
            self.message_user(request, "The event was cancelled: its failed e-mails stay unsent.", messages.ERROR)
        elif not failed:
            self.message_user(request, "No e-mail of this event has failed: nothing to re-send.", messages.INFO)
        else:
            _resend_said(self, request, failed[:RESEND_AT_ONCE], more=len(failed) > RESEND_AT_ONCE)
        return HttpResponseRedirect(self._change_url(event.pk))

    def sample_view(self, request: HttpRequest) -> HttpResponse:
        """A CSV with the header and two rows, to start from."""
        if not _may(request, "add_event"):
            raise PermissionDenied
        sample = io.StringIO()
        writer = csv.writer(sample, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerow(
            ["C-1001", "Maria Lopez", "maria@example.com", "gold", "5400.00", "cooking;travel", "120.00", "ORD-77"]
        )
        writer.writerow(["C-1002", "Sam Okafor", "sam@example.com", "", "", "", "40.00", ""])
        response = HttpResponse(sample.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="event-customers.csv"'
        return response

    # -- The CSV page

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """First submit: a preview (the first rows as read, every problem by row and column, the count);
        nothing is made. "Create the event", offered once the preview has no problem, makes it."""
        if not _may(request, "add_event"):
            raise PermissionDenied
        index = policy_index_get()
        form = EventUploadForm(request.POST or None, request.FILES or None, index=index)
        preview: Preview | None = None
        status = 200
        if request.method == "POST":
            outcome = self._upload_post(request, form, index)
            if isinstance(outcome, HttpResponse):
                return outcome
            preview = outcome
            if preview.problems or form.errors:
                status = 400
        context = {
            **self.admin_site.each_context(request),
            "title": "Add an event from a CSV",
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
            "preview": preview,
            "table": preview.table() if preview else [],
            "columns": CSV_COLUMNS,
            "separator": INTERESTS_SEPARATOR,
            "max_rows": _count(MAX_PER_CALL),
            "max_size": _size(settings.EVENT_MAX_BODY_BYTES),
            "daily_limit": _count(settings.EVENT_MAX_CUSTOMERS_PER_DAY),
            "preview_rows": PREVIEW_ROWS,
            "kept_minutes": UPLOAD_KEPT_SECONDS // 60,
            "sample_url": reverse("admin:compensation_event_upload_sample"),
        }
        return TemplateResponse(request, self.upload_template, context, status=status)

    def _upload_post(self, request: HttpRequest, form: EventUploadForm, index: PolicyIndex) -> Preview | HttpResponse:
        creating = "_create" in request.POST
        upload = request.FILES.get("file")
        token = request.POST.get("upload", "")
        preview = Preview()
        if upload is not None:
            if creating:
                messages.info(request, "You chose another file: here is its preview. Nothing was created.")
                creating = False
            if upload.size > settings.EVENT_MAX_BODY_BYTES:
                preview.problems.append(
                    CsvProblem(
                        None,
                        None,
                        f"The file is {_size(upload.size)}; a file may be at most "
                        f"{_size(settings.EVENT_MAX_BODY_BYTES)} (EVENT_MAX_BODY_BYTES).",
                    )
                )
                form.is_valid()
                return preview
            raw, preview.name = upload.read(), upload.name
        elif token:
            if creating and (done := self._created_from(token, request.user)) is not None:
                messages.info(request, "This file was already made into this event; nothing new was created.")
                return HttpResponseRedirect(self._change_url(done))
            try:
                preview.kept = upload_kept(token, user=request.user)
            except UploadLost:
                preview.problems.append(
                    CsvProblem(
                        None,
                        None,
                        f"The previewed file is no longer kept (it is kept {UPLOAD_KEPT_SECONDS // 60} minutes): "
                        "choose it again. Nothing was created.",
                    )
                )
                form.is_valid()
                return preview
            raw, preview.name = preview.kept.raw, preview.kept.name
        else:
            form.is_valid()
            preview.problems.append(CsvProblem(None, None, "Choose a CSV file of customers."))
            return preview

        preview.read = csv_read(raw)
        preview.problems.extend(preview.read.problems)
        valid_fields = form.is_valid()
        data = {**form.event_data(), "customers": [csv_customer(row.cells) for row in preview.read.rows]}
        validated = self._validated(form, preview, data, index)
        if not valid_fields or validated is None or preview.problems:
            return preview
        if preview.kept is None:
            preview.kept = upload_keep(raw=raw, name=preview.name, user=request.user)
        if not creating:
            return preview
        return self._create(request, preview, validated)

    def _validated(
        self, form: EventUploadForm, preview: Preview, data: dict[str, Any], index: PolicyIndex
    ) -> dict[str, Any] | None:
        """``event_input_validate``, the API's check, with its errors put where the page shows them."""
        rows = preview.read.rows
        try:
            return event_input_validate(data, index=index)
        except serializers.ValidationError as exc:
            found, others = row_problems(exc.detail, rows)
        if not preview.read.readable:  # the file's own problem says it; the rows' count is not news
            found = [p for p in found if p.row is not None]
        preview.problems.extend(found)
        for name, texts in others.items():
            target = name if name in form.fields else None
            if target is None or not form.has_error(target):
                for text in texts:
                    form.add_error(target, text)
        # The API checks repeated external_ids once everything else is valid; the page names them at once too.
        if preview.read.readable and len(rows) <= MAX_PER_CALL:
            named = {(p.row, p.column) for p in found}
            customers = [{"external_id": row.cells.get("external_id", "")} for row in rows]
            repeats, _ = row_problems(_repeats(customers), rows)
            preview.problems.extend(
                p for p in repeats if (p.row, p.column) not in named and rows_cell(rows, p.row, "external_id")
            )
        return None

    def _created_from(self, token: str, user: Any) -> int | None:
        try:
            claim = _upload_claim(token, user)
        except UploadLost:
            return None
        return cache.get(_cache_key(claim["key"], "event"))

    def _create(self, request: HttpRequest, preview: Preview, validated: dict[str, Any]) -> Preview | HttpResponse:
        kept = preview.kept
        assert kept is not None
        claim = _cache_key(kept.key, "claim")
        if not cache.add(claim, 1, UPLOAD_KEPT_SECONDS):  # pressed twice: the first press is making it
            preview.problems.append(
                CsvProblem(None, None, "This file is being made into an event already: see the list of events.")
            )
            return preview
        try:
            added = event_create(user=request.user, data=validated)
        except ApplicationError as exc:
            cache.delete(claim)
            preview.problems.append(CsvProblem(None, None, f"{exc.message} Nothing was created."))
            return preview
        except BaseException:
            cache.delete(claim)
            raise
        event = added.event
        cache.set(_cache_key(kept.key, "event"), event.pk, UPLOAD_KEPT_SECONDS)
        cache.delete(_cache_key(kept.key))
        self.log_addition(request, event, [{"added": {}}])
        self.message_user(
            request,
            f"The event “{event.name}” was created with {_count(added.added)} customer(s); they are being e-mailed. "
            "Its progress shows here and in the list of events.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(self._change_url(event.pk))


for _name in FIGURES:  # a column each: figure_total, figure_processed, ...
    setattr(EventAdmin, f"figure_{_name}", _figure_column(_name))


def rows_cell(rows: Sequence[CsvRow], number: int | None, column: str) -> str:
    return next((row.cells.get(column, "") for row in rows if row.number == number), "")


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{-(-n // 1024):,} KB"


def _resend_said(modeladmin: admin.ModelAdmin, request: HttpRequest, row_ids: Sequence[int], *, more: bool) -> None:
    """``event_resend`` (the job sends them again, paced, as it sent the others) and what it did, in words."""
    queued = event_resend(row_ids=row_ids)
    level = messages.SUCCESS if queued else messages.WARNING
    noun = "e-mail" if queued == 1 else "e-mails"
    text = f"{_count(queued)} {noun} queued to be sent again; the event's figures show them as they go."
    if left := len(row_ids) - queued:  # no offer set to send (its category had gone), or changed meanwhile
        text += f" {_count(left)} could not be re-sent: see their error."
    if more:
        text += f" Only {_count(RESEND_AT_ONCE)} are queued a press: press again for the others."
    modeladmin.message_user(request, text, level)


class EventCustomerAdmin(admin.ModelAdmin):
    """An event's customers, as the job left them: read-only; failed e-mails can be re-sent."""

    list_display = [
        "event",
        "position",
        "external_id",
        "email",
        "status",
        "no_options",
        "sent_at",
        "attempts",
        "error_short",
    ]
    list_filter = ["status", "event"]
    list_select_related = ["event"]
    search_fields = ["external_id", "email"]
    show_full_result_count = False  # an event may have 10,000s of rows: one count is enough
    actions = ["resend"]
    fields = [
        "event",
        "position",
        "external_id",
        "email",
        "status",
        "no_options",
        "offer_set",
        "escalation",
        "sent_at",
        "attempts",
        "error",
        "data",
        "created_at",
    ]  # never the nonce or the token's hash: with SECRET_KEY they make the customer's link
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_manager(request) and request.user.has_perm("compensation.view_event")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="error")
    def error_short(self, obj: EventCustomer) -> str:
        return Truncator(obj.error).chars(80)

    @admin.action(description="Re-send the e-mail (failed rows only)")
    def resend(self, request: HttpRequest, queryset: Any) -> None:
        if not _may(request, "change_event"):
            self.message_user(request, "Only managers who may change events re-send their e-mails.", messages.ERROR)
            return
        rows = list(queryset.order_by().values_list("pk", "status", "event__status"))
        ids = [
            pk
            for pk, status, event_status in rows
            if status == EventCustomer.Status.FAILED and event_status != Event.Status.CANCELLED
        ]
        if len(ids) < len(rows):
            self.message_user(
                request,
                f"{_count(len(rows) - len(ids))} selected row(s) had not failed, or their event was cancelled: left "
                "alone.",
                messages.WARNING,
            )
        if ids:
            _resend_said(self, request, ids[:RESEND_AT_ONCE], more=len(ids) > RESEND_AT_ONCE)
