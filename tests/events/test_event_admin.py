"""Operational events in the admin (API.md v2, "Proactive recovery": "The admin lists events with their
progress and takes a CSV of customers"): the list's progress and figures, the CSV page's preview (nothing
created, problems by row and column) and its "Create the event", re-sending failed e-mails, cancelling, and
who may see any of it.

Tasks are eager here and e-mail is in memory (tests/settings.py): an event created inside
``django_capture_on_commit_callbacks(execute=True)`` is processed and e-mailed before the block ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from compensation.models import Event, EventCustomer
from compensation.serializers import event_input_validate
from compensation.services.events import CUT_OFF, event_create
from policies.index import policy_index_get
from tests.policies.test_admin import page_form

pytestmark = pytest.mark.django_db

UPLOAD = "admin:compensation_event_upload"
CHANGELIST = "admin:compensation_event_changelist"
HEADER = "external_id,name,email,tier,lifetime_value,interests,order_value,external_ref"
GOOD_ROWS = [
    "C-1,Maria Lopez,maria@example.com,gold,5400.00,cooking;travel,120.00,ORD-1",
    "C-2,Sam Okafor,sam@example.com,,,,40.00,",
]
EVENT_FIELDS = {
    "name": "North warehouse missed Tuesday's deliveries",
    "category": "missed_delivery",
    "severity": "3",
    "fault": "company",
    "correctable": "on",
    "description": "A conveyor failure held back every Tuesday delivery.",
    "occurred_at_0": "",
    "occurred_at_1": "",
}


def csv_file(*rows: str, header: str = HEADER, name: str = "customers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, "\r\n".join([header, *rows]).encode(), content_type="text/csv")


def raw_file(content: bytes, name: str = "customers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def preview(client: Client, upload: SimpleUploadedFile, **fields: str) -> Any:
    return client.post(reverse(UPLOAD), {**EVENT_FIELDS, **fields, "file": upload, "_preview": "Preview"})


def problems(response: Any) -> set[tuple[int | None, str | None]]:
    return {(problem.row, problem.column) for problem in response.context["preview"].problems}


def problem_text(response: Any) -> str:
    return " | ".join(problem.message for problem in response.context["preview"].problems)


def make_event(user: Any, *customers: dict[str, Any], name: str = "Outage") -> Event:
    """An event through the API's own validation and service (as the CSV page makes one)."""
    data = event_input_validate(
        {"name": name, "category": "missed_delivery", "severity": 3, "customers": list(customers)},
        index=policy_index_get(),
    )
    return event_create(user=user, data=data).event


def customer(n: int) -> dict[str, Any]:
    return {"external_id": f"EV-{n}", "name": f"Customer {n}", "email": f"c{n}@example.com"}


@pytest.fixture
def superuser(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "x")


@pytest.fixture
def staff_of(make_user: Callable[[str, str], Any]) -> Callable[[str], Any]:
    """A staff user of the role with every permission on events and their customers."""

    def make(role: str) -> Any:
        user, _ = make_user(f"staff-{role}", role)
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="compensation", codename__endswith="event")
            | Permission.objects.filter(content_type__app_label="compensation", codename__endswith="eventcustomer")
        )
        return user

    return make


@pytest.fixture
def boss(client: Client, superuser: Any, demo_pack: None) -> Client:
    client.force_login(superuser)
    return client


# --- The list ----------------------------------------------------------------------------------------


def test_changelist_shows_each_events_progress_and_figures_in_a_bounded_number_of_queries(
    boss: Client, superuser: Any, django_capture_on_commit_callbacks: Any, django_assert_max_num_queries: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        sent = make_event(superuser, customer(1), customer(2), customer(3), name="Sent in full")
        others = [make_event(superuser, customer(10 + n), name=f"Other {n}") for n in range(5)]
    EventCustomer.objects.filter(event=sent, external_id="EV-3").update(status="failed", error=CUT_OFF)
    queued = make_event(superuser, customer(20), customer(21), name="Not started")  # its task never ran

    with django_assert_max_num_queries(8):  # session, user, its groups, count, page, figures (2), categories
        page = boss.get(reverse(CHANGELIST))
    assert page.status_code == 200
    html = page.content.decode()
    # 3 customers, 2 e-mailed, 1 failed (and linked to its rows); the one not started: 0 of 2.
    assertContains(page, 'aria-label="2 of 3 e-mailed"')
    assertContains(page, 'aria-label="0 of 2 e-mailed"')
    assertContains(page, '<td class="field-figure_total">3</td>')
    assertContains(page, '<td class="field-figure_processed">3</td>')
    assertContains(page, '<td class="field-figure_emailed">2</td>')
    failed_url = (
        f"{reverse('admin:compensation_eventcustomer_changelist')}?event__id__exact={sent.pk}&amp;status__exact=failed"
    )
    assertContains(page, f'<td class="field-figure_failed"><a href="{failed_url}">1</a></td>')
    for event in [sent, queued, *others]:
        assert event.name in html
    assertContains(page, f'href="{reverse(UPLOAD)}"')  # the object tool to the CSV page

    # Twice the events, the same queries: the figures are counted for the page, not per row.
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(7):
            make_event(superuser, customer(30 + n), name=f"More {n}")
    with django_assert_max_num_queries(8):
        assert boss.get(reverse(CHANGELIST)).status_code == 200


def test_the_list_filters_on_status(boss: Client, superuser: Any, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        make_event(superuser, customer(1), name="Sent one")
    make_event(superuser, customer(2), name="Processing one")
    page = boss.get(reverse(CHANGELIST), {"status__exact": "processing"})
    assertContains(page, "Processing one")
    assertNotContains(page, "Sent one")


# --- The CSV page: preview ------------------------------------------------------------------------


def test_the_page_says_how_to_write_the_file(boss: Client) -> None:
    page = boss.get(reverse(UPLOAD))
    assert page.status_code == 200
    assertContains(page, "Separate interests inside their cell with a semicolon")
    assertContains(page, '<input type="file" name="file"')
    assertNotContains(page, 'name="_create"')
    sample = boss.get(reverse("admin:compensation_event_upload_sample"))
    assert sample.content.decode().splitlines()[0] == HEADER


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # A bad e-mail on row 3 (the header is row 1); a repeated external_id names the second row it is on.
        ([GOOD_ROWS[0], "C-3,Ana Silva,not-an-email,,,,,", GOOD_ROWS[1]], {(3, "email")}),
        ([GOOD_ROWS[0], GOOD_ROWS[1], "C-1,Maria again,maria2@example.com,,,,,"], {(4, "external_id")}),
        (
            [GOOD_ROWS[0], "C-3,Ana Silva,not-an-email,,,,,", "C-1,Maria again,m@example.com,,,,,"],
            {(3, "email"), (4, "external_id")},
        ),
        (
            [",No Id,noid@example.com,,,,,", "C-4,Tom,tom@example.com,diamond,-5,,,"],
            {(2, "external_id"), (3, "tier"), (3, "lifetime_value")},
        ),
        (["C-5,Zoe,zoe@example.com,,,bad interest!,,"], {(2, "interests")}),
    ],
    ids=["bad-email-row-3", "repeat-names-second-row", "both-at-once", "missing-id-bad-tier", "bad-interest"],
)
def test_preview_names_each_problem_by_row_and_column_and_creates_nothing(
    boss: Client, rows: list[str], expected: set[tuple[int, str]]
) -> None:
    response = preview(boss, csv_file(*rows))
    assert response.status_code == 400
    assert problems(response) == expected
    assert Event.objects.count() == 0
    assert EventCustomer.objects.count() == 0
    assertNotContains(response, 'name="_create"', status_code=400)
    assertContains(response, "Nothing was created", status_code=400)
    row, column = sorted(expected)[0]
    assertContains(response, f"<td>{row}</td>\n              <td>{column}</td>", status_code=400)


def test_a_repeat_names_the_row_it_repeats(boss: Client) -> None:
    response = preview(boss, csv_file(GOOD_ROWS[0], GOOD_ROWS[1], "C-1,Maria again,maria2@example.com,,,,,"))
    assert problem_text(response) == "'C-1' is already row 2 of this file"


def test_preview_shows_the_first_twenty_rows_and_the_count(boss: Client) -> None:
    rows = [f"P-{n},Person {n},p{n}@example.com,,,,," for n in range(25)]
    response = preview(boss, csv_file(*rows))
    assert response.status_code == 200
    assert Event.objects.count() == 0
    table = response.context["table"]
    assert [row["number"] for row in table] == list(range(2, 22))
    assertContains(response, "25 customers in the file.")
    assertContains(response, '<th scope="row">21</th>')
    assertNotContains(response, '<th scope="row">22</th>')
    assertContains(response, 'name="_create"')  # no problem: creating is offered


def test_preview_shows_cells_as_read(boss: Client) -> None:
    response = preview(boss, csv_file(GOOD_ROWS[0]))
    cells = {cell["column"]: cell["text"] for cell in response.context["table"][0]["cells"]}
    assert cells == {
        "external_id": "C-1",
        "name": "Maria Lopez",
        "email": "maria@example.com",
        "tier": "gold",
        "lifetime_value": "5400.00",
        "interests": "cooking, travel",
        "order_value": "120.00",
        "external_ref": "ORD-1",
    }


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "The file is empty"),
        (b"   \r\n", "The file is empty"),
        (HEADER.encode() + b"\r\n", "has a header row but no customers"),
        ("external_id,name\r\nC-1,José".encode("latin-1"), "is not UTF-8"),
        (b"id,name,email\r\nC-1,Ann,ann@example.com", "has no external_id column"),
        (b"external_id,nmae\r\nC-1,Ann", "unknown column 'nmae'"),
        (b"external_id;name;email\r\nC-1;Ann;ann@example.com", "separated by semicolons"),
        (b"PK\x03\x04\x14\x00\x06\x00binary", "workbook (.xlsx)"),
        (b"external_id,name\r\nC-1,Ann,extra", "has 3 cells, the header 2"),
        (b"external_id,name\r\nC-1,An\x00n", "Null characters are not allowed"),
    ],
    ids=["empty", "blank", "header-only", "latin-1", "no-external-id", "typo", "semicolons", "xlsx", "cells", "nul"],
)
def test_a_file_the_page_cannot_use_is_a_clear_error_and_creates_nothing(
    boss: Client, content: bytes, words: str
) -> None:
    response = preview(boss, raw_file(content))
    assert response.status_code == 400
    assert words in problem_text(response)
    assert Event.objects.count() == 0
    assertNotContains(response, 'name="_create"', status_code=400)


def test_more_than_ten_thousand_rows_is_one_error(boss: Client) -> None:
    rows = [f"X{n}" for n in range(10_001)]
    response = preview(boss, csv_file(*rows, header="external_id"))
    assert response.status_code == 400
    assert problems(response) == {(None, None)}
    assert "at most 10,000 customers in one call, got 10,001" in problem_text(response)
    assert Event.objects.count() == 0


def test_the_page_takes_a_body_over_the_general_limit_up_to_its_own(boss: Client, settings: Any) -> None:
    rows = [f"BIG-{n},Big Body {n},big{n}@example.com,,,,," for n in range(200)]  # about 8 KB
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    settings.EVENT_MAX_BODY_BYTES = 1024 * 1024
    response = preview(boss, csv_file(*rows))
    assert response.status_code == 200
    assertContains(response, "200 customers in the file.")
    assert boss.post(reverse("admin:compensation_try"), {"file": csv_file(*rows)}).status_code == 413


def test_a_file_over_the_size_limit_is_refused(boss: Client, settings: Any) -> None:
    settings.EVENT_MAX_BODY_BYTES = 1024  # the middleware lets the body through up to this and the form's room
    rows = [f"BIG-{n},Big Body {n},big{n}@example.com,,,,," for n in range(60)]
    response = preview(boss, csv_file(*rows))
    assert response.status_code == 400
    assert "a file may be at most 1 KB" in problem_text(response)


def test_the_events_fields_are_checked_as_the_api_checks_them(boss: Client) -> None:
    response = preview(boss, csv_file(*GOOD_ROWS), severity="9", category="", name="")
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"severity", "category", "name"}
    assertContains(response, "correct the event's fields below", status_code=400)
    assert Event.objects.count() == 0


def test_an_occurred_at_in_the_future_is_refused(boss: Client) -> None:
    response = preview(boss, csv_file(*GOOD_ROWS), occurred_at_0="2999-01-01", occurred_at_1="10:00")
    assert response.status_code == 400
    assert response.context["form"].errors["occurred_at"] == ["must not be in the future"]


# --- The CSV page: creating ------------------------------------------------------------------------


def kept_token(response: Any) -> str:
    kept = response.context["preview"].kept
    assert kept is not None
    return kept.token


def test_create_makes_the_event_and_its_customers_are_emailed(
    boss: Client, superuser: Any, django_capture_on_commit_callbacks: Any
) -> None:
    previewed = preview(boss, csv_file(*GOOD_ROWS))
    assert Event.objects.count() == 0
    token = kept_token(previewed)
    create_form = page_form(previewed, "create-form")  # the event's fields as previewed, and the kept file
    assert create_form["upload"] == token
    assert create_form["name"] == EVENT_FIELDS["name"]

    with django_capture_on_commit_callbacks(execute=True):
        created = boss.post(reverse(UPLOAD), {**create_form, "_create": "Create the event"})
    event = Event.objects.get()
    assert created.status_code == 302
    assert created["Location"] == reverse("admin:compensation_event_change", args=[event.pk])
    assert (event.name, event.category.slug, event.severity, event.fault, event.correctable, event.created_by) == (
        EVENT_FIELDS["name"],
        "missed_delivery",
        3,
        "company",
        True,
        superuser,
    )
    assert event.description == EVENT_FIELDS["description"]
    rows = {row.external_id: row for row in event.customers.all()}
    assert set(rows) == {"C-1", "C-2"}
    assert rows["C-1"].data["interests"] == ["cooking", "travel"]
    assert rows["C-1"].data["tier"] == "gold"
    assert "tier" not in rows["C-2"].data  # an empty cell is left out, as a missing key in the API's body
    assert sorted(m.to[0] for m in mail.outbox) == ["maria@example.com", "sam@example.com"]
    assert {row.status for row in event.customers.all()} == {"emailed"}

    page = boss.get(created["Location"])
    assertContains(page, "with 2 customer(s); they are being e-mailed")
    assertContains(page, 'aria-label="2 of 2 e-mailed"')

    # Pressed again (back, then the button): the same event, nothing new.
    again = boss.post(reverse(UPLOAD), {**EVENT_FIELDS, "upload": token, "_create": "Create the event"})
    assert again.status_code == 302
    assert again["Location"] == created["Location"]
    assert Event.objects.count() == 1
    assert len(mail.outbox) == 2


def test_create_with_another_file_chosen_previews_that_file_instead(boss: Client) -> None:
    token = kept_token(preview(boss, csv_file(*GOOD_ROWS)))
    response = boss.post(
        reverse(UPLOAD),
        {**EVENT_FIELDS, "upload": token, "file": csv_file("C-9,Nine,nine@example.com,,,,,"), "_create": "Create"},
    )
    assert response.status_code == 200
    assert Event.objects.count() == 0
    assert [row["number"] for row in response.context["table"]] == [2]


def test_a_tampered_or_someone_elses_upload_is_not_used(
    boss: Client, staff_of: Callable[[str], Any], demo_pack: None
) -> None:
    token = kept_token(preview(boss, csv_file(*GOOD_ROWS)))
    tampered = boss.post(reverse(UPLOAD), {**EVENT_FIELDS, "upload": token[:-2] + "xx", "_create": "Create"})
    assert tampered.status_code == 400
    assert "no longer kept" in problem_text(tampered)
    other = Client()
    other.force_login(staff_of("manager"))
    theirs = other.post(reverse(UPLOAD), {**EVENT_FIELDS, "upload": token, "_create": "Create"})
    assert theirs.status_code == 400
    assert Event.objects.count() == 0


def test_the_daily_cap_applies_and_nothing_is_created(boss: Client, settings: Any) -> None:
    settings.EVENT_MAX_CUSTOMERS_PER_DAY = 1
    token = kept_token(preview(boss, csv_file(*GOOD_ROWS)))
    response = boss.post(reverse(UPLOAD), {**EVENT_FIELDS, "upload": token, "_create": "Create"})
    assert response.status_code == 400
    assert "EVENT_MAX_CUSTOMERS_PER_DAY" in problem_text(response)
    assert Event.objects.count() == 0


# --- Re-sending and cancelling ---------------------------------------------------------------------


@pytest.fixture
def failed_row(superuser: Any, demo_pack: None, django_capture_on_commit_callbacks: Any) -> EventCustomer:
    """An event sent in full but for one customer whose send was cut off (a worker killed mid-send)."""
    with django_capture_on_commit_callbacks(execute=True):
        event = make_event(superuser, customer(1), customer(2))
    row = event.customers.get(external_id="EV-2")
    EventCustomer.objects.filter(pk=row.pk).update(status="failed", error=CUT_OFF, sent_at=None)
    mail.outbox.clear()
    row.refresh_from_db()
    return row


def test_resend_on_the_event_page_sends_the_failed_email_once(
    boss: Client, failed_row: EventCustomer, django_capture_on_commit_callbacks: Any
) -> None:
    change = reverse("admin:compensation_event_change", args=[failed_row.event_id])
    page = boss.get(change)
    assertContains(page, "Re-send failed e-mails (1)")
    with django_capture_on_commit_callbacks(execute=True):  # the job sends it (eager here)
        response = boss.post(reverse("admin:compensation_event_resend", args=[failed_row.event_id]), follow=True)
    assertContains(response, "1 e-mail queued to be sent again")
    assert [m.to for m in mail.outbox] == [["c2@example.com"]]
    failed_row.refresh_from_db()
    assert (failed_row.status, failed_row.attempts, failed_row.error) == ("emailed", 2, "")
    assert failed_row.sent_at is not None
    # Nothing failed any more: pressing again sends nothing.
    again = boss.post(reverse("admin:compensation_event_resend", args=[failed_row.event_id]), follow=True)
    assertContains(again, "nothing to re-send")
    assert len(mail.outbox) == 1


def test_resend_action_on_the_customers_list_sends_selected_failed_rows(
    boss: Client, failed_row: EventCustomer, django_capture_on_commit_callbacks: Any
) -> None:
    emailed = failed_row.event.customers.get(external_id="EV-1")
    with django_capture_on_commit_callbacks(execute=True):
        response = boss.post(
            reverse("admin:compensation_eventcustomer_changelist"),
            {"action": "resend", "_selected_action": [failed_row.pk, emailed.pk]},
            follow=True,
        )
    assertContains(response, "1 e-mail queued to be sent again")
    assertContains(response, "1 selected row(s) had not failed")
    assert [m.to for m in mail.outbox] == [["c2@example.com"]]
    failed_row.refresh_from_db()
    assert failed_row.status == "emailed"


def test_cancel_stops_what_has_not_been_sent(
    boss: Client, superuser: Any, django_capture_on_commit_callbacks: Any
) -> None:
    event = make_event(superuser, customer(1), customer(2))  # created, its task not run yet
    change = reverse("admin:compensation_event_change", args=[event.pk])
    assertContains(boss.get(change), "Cancel the event…")
    cancel = reverse("admin:compensation_event_cancel", args=[event.pk])
    confirm = boss.get(cancel)
    assertContains(confirm, "the 2 customer(s) not e-mailed yet will not be")
    assert Event.objects.get().status == "processing"  # the question changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        response = boss.post(cancel, follow=True)
    assertContains(response, "The event was cancelled: 2 customer(s) will not be e-mailed.")
    event.refresh_from_db()
    assert (event.status, event.cancelled_by) == ("cancelled", superuser)
    assert set(event.customers.values_list("status", flat=True)) == {"cancelled"}
    assert mail.outbox == []
    assertNotContains(boss.get(change), "Cancel the event…")
    again = boss.post(cancel, follow=True)  # a cancelled event: answered as before
    assert again.status_code == 200


def test_a_sent_event_cannot_be_cancelled(boss: Client, failed_row: EventCustomer) -> None:
    Event.objects.filter(pk=failed_row.event_id).update(status="sent")
    response = boss.post(reverse("admin:compensation_event_cancel", args=[failed_row.event_id]), follow=True)
    assertContains(response, "was sent in full; there is nothing left to cancel")


def test_nobody_adds_or_changes_rows_by_hand(boss: Client, failed_row: EventCustomer) -> None:
    assert boss.get(reverse("admin:compensation_eventcustomer_add")).status_code == 403
    assert boss.get(reverse("admin:compensation_event_add")).status_code == 403
    change = reverse("admin:compensation_eventcustomer_change", args=[failed_row.pk])
    page = boss.get(change)
    assert page.status_code == 200
    assertNotContains(page, 'name="_save"')
    assertNotContains(page, failed_row.nonce)  # with SECRET_KEY it makes the customer's link
    assert boss.post(change, {"status": "emailed"}).status_code == 403


# --- Who may see it ---------------------------------------------------------------------------------


def test_an_agent_cannot_see_these_pages(
    client: Client, staff_of: Callable[[str], Any], failed_row: EventCustomer
) -> None:
    client.force_login(staff_of("agent"))  # staff, with every permission on events: still an agent
    for url in [
        reverse(CHANGELIST),
        reverse("admin:compensation_event_change", args=[failed_row.event_id]),
        reverse(UPLOAD),
        reverse("admin:compensation_event_cancel", args=[failed_row.event_id]),
        reverse("admin:compensation_eventcustomer_changelist"),
    ]:
        assert client.get(url).status_code == 403, url
    assert preview(client, csv_file(*GOOD_ROWS)).status_code == 403
    assert client.post(reverse("admin:compensation_event_resend", args=[failed_row.event_id])).status_code == 403
    assertNotContains(client.get(reverse("admin:index")), "Events")
    assert Event.objects.count() == 1
    assert mail.outbox == []


def test_a_staff_manager_with_the_permissions_can(
    client: Client, staff_of: Callable[[str], Any], failed_row: EventCustomer
) -> None:
    client.force_login(staff_of("manager"))
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.get(reverse(UPLOAD)).status_code == 200
    assertContains(client.get(reverse("admin:index")), "Events")
