"""What an independent review found, held: the daily cap counts whoever adds the customers; an event is not
marked sent while an add is still writing customers (PostgreSQL); one customer whose set cannot be made for
any reason fails alone; a remedy a manager refused stays refused when the e-mail goes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from compensation.models import Event, EventCustomer, Remedy
from compensation.serializers import event_customers_validate, event_input_validate
from compensation.services import events
from policies.index import policy_index_get
from policies.models import Policy
from tests.conftest import postgres_needed
from tests.events.data import EVENTS, event_body, rows


def body(prefix: str, n: int) -> dict[str, Any]:
    return event_body(name="Outage", customers=rows(prefix, n))


@pytest.mark.django_db
@override_settings(EVENT_MAX_CUSTOMERS_PER_DAY=5)
def test_the_daily_cap_counts_the_customers_against_whoever_added_them(
    demo_pack: None, manager: Any, client_for: Any
) -> None:
    other = client_for("manager", "manager-2")
    event_id = manager.post(EVENTS, body("A", 1), format="json").json()["id"]
    first = other.post(f"{EVENTS}{event_id}/customers/", {"customers": rows("B", 5)}, format="json")
    assert first.status_code == 202
    beyond = other.post(f"{EVENTS}{event_id}/customers/", {"customers": rows("C", 1)}, format="json")
    assert beyond.status_code == 429
    assert beyond.json()["code"] == "event_customer_limit"
    assert other.post(EVENTS, body("D", 1), format="json").status_code == 429
    # The event's creator put in one customer today: four more are theirs to post.
    assert manager.post(EVENTS, body("E", 4), format="json").status_code == 202
    assert EventCustomer.objects.filter(added_by__username="manager-2").count() == 5


@pytest.mark.django_db(transaction=True)
def test_an_event_is_not_marked_sent_while_an_add_is_still_writing_its_customers(
    demo_pack: None, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres_needed("an add holding the event's row while the job finishes it, from two connections")
    user, _ = make_user("race-manager", "manager")
    monkeypatch.setattr(events, "event_enqueue", lambda *args, **kwargs: True)  # the job is run by hand below
    event = events.event_create(user=user, data=event_input_validate(body("A", 1), index=policy_index_get())).event
    EventCustomer.objects.filter(event=event).update(status=EventCustomer.Status.EMAILED)
    written = threading.Event()
    real_rows_add = events._rows_add

    def slow_rows_add(**kwargs: Any) -> int:
        added = real_rows_add(**kwargs)
        written.set()
        time.sleep(1.5)  # a large insert still going on inside the add's transaction
        return added

    monkeypatch.setattr(events, "_rows_add", slow_rows_add)
    more = event_customers_validate({"customers": rows("B", 3)})["customers"]

    def add() -> None:
        try:
            events.event_customers_add(user=user, event_id=event.pk, customers=more)
        finally:
            connection.close()

    adding = threading.Thread(target=add)
    adding.start()
    assert written.wait(30)
    events._finish(Event.objects.get(pk=event.pk), timezone.now())  # the job reaching its end meanwhile
    adding.join(30)

    event.refresh_from_db()
    assert event.status == Event.Status.PROCESSING
    assert EventCustomer.objects.filter(event=event, status=EventCustomer.Status.QUEUED).count() == 3


@pytest.mark.django_db
def test_a_customer_whose_set_cannot_be_made_fails_alone_and_the_others_go_on(
    demo_pack: None, manager: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    real = events.offer_set_create

    def broken_for_b1(**kwargs: Any) -> Any:
        if kwargs["customer"]["external_id"] == "B-1":
            raise KeyError("interests")  # not a database error: any bug in stored data
        return real(**kwargs)

    monkeypatch.setattr(events, "offer_set_create", broken_for_b1)
    with django_capture_on_commit_callbacks(execute=True):
        event_id = manager.post(EVENTS, body("B", 3), format="json").json()["id"]
    figures = manager.get(f"{EVENTS}{event_id}/").json()
    assert (figures["status"], figures["emailed"], figures["failed"], figures["processed"]) == ("sent", 2, 1, 2)
    broken = EventCustomer.objects.get(event_id=event_id, external_id="B-1")
    assert broken.status == EventCustomer.Status.FAILED
    assert "KeyError" in broken.error or "interests" in broken.error


@pytest.mark.django_db
def test_a_remedy_a_manager_refused_stays_refused_when_the_event_e_mail_goes(
    demo_pack: None, manager: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    monkeypatch.setattr(events, "event_enqueue", lambda *args, **kwargs: True)
    event_id = manager.post(EVENTS, body("R", 1), format="json").json()["id"]
    event = Event.objects.get(pk=event_id)
    events.event_work(event_id=event_id, seconds=0)  # the batch is prepared, nothing e-mailed yet
    row = EventCustomer.objects.get(event=event)
    incident = row.offer_set.incident
    refused = Remedy.objects.create(
        incident=incident,
        customer=row.offer_set.customer,
        offer_set=row.offer_set,
        kind="refund",
        title="A refund a manager refused",
        estimated_cost="10.00",
        currency="USD",
        policy=Policy.objects.order_by("pk").first(),
        policy_name="x",
        policy_version=1,
        created_at=timezone.now(),
        status=Remedy.Status.REJECTED,
        category_id=incident.category_id,
    )
    done = events.event_work(event_id=event_id)
    assert done.emailed == 1
    refused.refresh_from_db()
    assert refused.status == Remedy.Status.REJECTED
    assert "A refund a manager refused" not in mail.outbox[-1].body


@pytest.mark.django_db
def test_a_customer_without_an_address_is_written_to_once_one_is_stored_and_the_e_mail_re_sent(
    demo_pack: None, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from compensation.models import Customer

    with django_capture_on_commit_callbacks(execute=True):
        event_id = manager.post(EVENTS, {**body("N", 0), "customers": [{"external_id": "N-0"}]}, format="json").json()[
            "id"
        ]
    row = EventCustomer.objects.get(event_id=event_id)
    assert (row.status, row.error) == (EventCustomer.Status.FAILED, "The customer has no e-mail address.")
    assert manager.get(f"{EVENTS}{event_id}/").json()["failed"] == 1
    Customer.objects.filter(external_id="N-0").update(email="found@example.com")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert events.event_resend(row_ids=[row.pk]) == 1
    assert [m.to for m in mail.outbox] == [["found@example.com"]]
    figures = manager.get(f"{EVENTS}{event_id}/").json()
    assert (figures["status"], figures["emailed"], figures["failed"]) == ("sent", 1, 0)
