"""The REST contract of operational events (API.md, "Proactive recovery: an operational event"): every line of
it, as a client sees it. Status codes, shapes, idempotency, the daily cap, bad input that changes nothing, who
may call, the body limit, and figures that stay exact while customers choose at once.

Tasks are eager and run only where a test executes the on_commit callbacks, so an event posted without them
stays ``processing`` with nothing made yet: the shapes and refusals are checked on it.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from compensation.errors import Conflict
from compensation.models import Customer, Event, EventCustomer, Incident, OfferSet, OutcomeSubmission
from compensation.services.events import event_choose, event_create, event_work, token_of
from policies.models import Category
from tests.events.data import CUSTOMERS, EVENTS, event_body, rows

pytestmark = pytest.mark.django_db

FIGURES = ("total", "processed", "emailed", "chosen", "declined", "escalated", "failed", "no_options")
DETAIL_KEYS = {"id", "name", "status", *FIGURES}


def post(client: Any, path: str = EVENTS, body: Any = None, **headers: Any) -> Any:
    return client.post(path, event_body() if body is None else body, format="json", **headers)


def created(client: Any, body: Any = None) -> dict[str, Any]:
    response = post(client, body=body)
    assert response.status_code == 202, response.content
    return response.json()


def nothing_stored() -> tuple[int, int, int, int]:
    return Event.objects.count(), EventCustomer.objects.count(), Customer.objects.count(), Incident.objects.count()


def error_code(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


# --- POST /api/v1/events/ --------------------------------------------------------------------------------


def test_a_post_is_accepted_with_its_id_status_and_total(demo_pack: None, manager: Any) -> None:
    response = post(manager)

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "status", "total"}
    assert body["status"] == "processing"
    assert body["total"] == 3
    event = Event.objects.get()
    assert body["id"] == event.pk
    assert sorted(event.customers.values_list("external_id", flat=True)) == ["EV-1", "EV-2", "EV-3"]


def test_each_post_is_an_event_of_its_own(demo_pack: None, manager: Any) -> None:
    first, second = created(manager), created(manager)

    assert first["id"] != second["id"]
    assert (first["total"], second["total"]) == (3, 3)


def test_an_event_defaults_fault_correctable_and_occurred_at_as_an_incident_does(
    demo_pack: None, manager: Any, agent1: Any, django_capture_on_commit_callbacks: Any
) -> None:
    at = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            created(manager, event_body(customers=CUSTOMERS[:1]))
        plain = {"customer": {"external_id": "C-plain"}, "incident": {"category": "missed_delivery", "severity": 3}}
        assert agent1.post("/api/v1/offer-sets/", plain, format="json").status_code == 201

    of_event = Incident.objects.get(customer__external_id="EV-1")
    of_set = Incident.objects.get(customer__external_id="C-plain")
    assert (of_event.fault, of_event.correctable, of_event.occurred_at) == ("company", True, at)
    assert (of_set.fault, of_set.correctable, of_set.occurred_at) == ("company", True, at)


def test_given_fault_correctable_and_occurred_at_are_each_customer_s_incident_s(
    demo_pack: None, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    occurred = timezone.now().replace(microsecond=0) - timedelta(days=2)
    body = event_body(fault="third_party", correctable=False, occurred_at=occurred.isoformat())
    with django_capture_on_commit_callbacks(execute=True):
        created(manager, body)

    incidents = Incident.objects.filter(customer__external_id__in=["EV-1", "EV-2", "EV-3"])
    assert incidents.count() == 3
    assert {(i.fault, i.correctable, i.occurred_at) for i in incidents} == {("third_party", False, occurred)}


# --- Customer facts follow CUSTOMER_FACTS, as an offer-set POST's do ------------------------------------


@pytest.fixture
def stored_customer(make_user: Any) -> Customer:
    """EV-1 as the integration stored it: silver, with its own e-mail."""
    _, key = make_user("integration-1", "integration")
    integration = APIClient()
    integration.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    body = {"name": "Maria Lopez", "email": "stored@example.com", "tier": "silver", "lifetime_value": "100.00"}
    assert integration.put("/api/v1/customers/EV-1/", body, format="json").status_code == 201
    return Customer.objects.get(external_id="EV-1")


def test_with_customer_facts_from_agents_the_posted_facts_are_written_and_used(
    demo_pack: None, manager: Any, stored_customer: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        created(manager, event_body(customers=CUSTOMERS[:1]))

    stored_customer.refresh_from_db()
    assert (stored_customer.tier, stored_customer.email) == ("gold", "maria@example.com")
    assert stored_customer.lifetime_value == Decimal("5400.00")
    assert [message.to for message in mail.outbox] == [["maria@example.com"]]


@override_settings(CUSTOMER_FACTS="trusted")
def test_with_trusted_customer_facts_a_posted_tier_and_email_of_a_stored_customer_are_not_used(
    demo_pack: None, manager: Any, agent1: Any, stored_customer: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    new = {"external_id": "EV-new", "name": "Nia New", "email": "nia@example.com", "tier": "platinum"}
    with django_capture_on_commit_callbacks(execute=True):
        created(manager, event_body(customers=[CUSTOMERS[0], new]))

    # The stored customer keeps the integration's facts, and the e-mail goes where it says.
    stored_customer.refresh_from_db()
    assert (stored_customer.tier, stored_customer.email) == ("silver", "stored@example.com")
    assert stored_customer.lifetime_value == Decimal("100.00")
    assert sorted(message.to[0] for message in mail.outbox) == ["nia@example.com", "stored@example.com"]
    # A new customer starts with the posted e-mail and the default tier, as from an offer-set POST.
    fresh = Customer.objects.get(external_id="EV-new")
    assert (fresh.email, fresh.tier, fresh.name) == ("nia@example.com", "standard", "Nia New")
    # The same as an agent's offer-set POST for that customer does.
    body = {
        "customer": {"external_id": "EV-1", "email": "other@example.com", "tier": "platinum"},
        "incident": {"category": "missed_delivery", "severity": 3},
    }
    assert agent1.post("/api/v1/offer-sets/", body, format="json").status_code == 201
    stored_customer.refresh_from_db()
    assert (stored_customer.tier, stored_customer.email) == ("silver", "stored@example.com")


# --- GET /api/v1/events/{id}/ and the list ---------------------------------------------------------------


def test_the_detail_has_the_documented_figures(demo_pack: None, manager: Any) -> None:
    event = created(manager)

    response = manager.get(f"{EVENTS}{event['id']}/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= DETAIL_KEYS
    assert (body["id"], body["name"], body["status"]) == (event["id"], event_body()["name"], "processing")
    assert {name: body[name] for name in FIGURES} == {**dict.fromkeys(FIGURES, 0), "total": 3}
    assert all(isinstance(body[name], int) for name in FIGURES)


def test_the_detail_s_figures_follow_the_work_and_the_choices(
    demo_pack: None, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        event = created(manager)
    tokens = {row.external_id: token_of(row.nonce) for row in EventCustomer.objects.all()}
    with django_capture_on_commit_callbacks(execute=True):
        event_choose(token=tokens["EV-1"], choice="a")
        event_choose(token=tokens["EV-2"], choice="none")
        event_choose(token=tokens["EV-3"], choice="call")

    body = manager.get(f"{EVENTS}{event['id']}/").json()

    assert body["status"] == "sent"
    assert {name: body[name] for name in FIGURES} == {
        "total": 3,
        "processed": 3,
        "emailed": 3,
        "chosen": 1,
        "declined": 1,
        "escalated": 1,
        "failed": 0,
        "no_options": 0,
    }


def test_an_unknown_event_is_404(manager: Any) -> None:
    assert error_code(manager.get(f"{EVENTS}999999/")) == (404, "not_found")


def test_the_list_is_paginated_newest_first_like_the_other_lists(demo_pack: None, manager: Any) -> None:
    ids = [created(manager, event_body(name=f"Event {n}", customers=CUSTOMERS[:1]))["id"] for n in range(3)]

    first = manager.get(EVENTS, {"page_size": 2}).json()
    second = manager.get(EVENTS, {"page_size": 2, "page": 2}).json()

    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 3
    assert first["previous"] is None
    assert "page=2" in first["next"]
    assert [item["id"] for item in first["results"] + second["results"]] == ids[::-1]
    assert second["next"] is None
    for item in first["results"]:
        assert set(item) >= DETAIL_KEYS
        assert item["total"] == 1
    assert error_code(manager.get(EVENTS, {"page": 3, "page_size": 2}))[0] == 404


def test_every_manager_sees_every_event(demo_pack: None, manager: Any, client_for: Any) -> None:
    event = created(manager)
    other = client_for("manager", "manager-2")

    assert other.get(f"{EVENTS}{event['id']}/").status_code == 200
    assert [item["id"] for item in other.get(EVENTS).json()["results"]] == [event["id"]]


# --- POST /api/v1/events/{id}/cancel/ ---------------------------------------------------------------------


def test_cancel_stops_what_has_not_been_sent_and_is_answered_the_same_again(demo_pack: None, manager: Any) -> None:
    event = created(manager)  # its task never ran: nothing sent yet

    first = manager.post(f"{EVENTS}{event['id']}/cancel/")
    again = manager.post(f"{EVENTS}{event['id']}/cancel/")

    assert first.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert set(first.json()) >= DETAIL_KEYS
    assert again.status_code == 200
    assert again.json() == first.json()
    assert set(EventCustomer.objects.values_list("status", flat=True)) == {"cancelled"}
    # The job, taking the event up now, sends nothing.
    event_work(event_id=event["id"])
    assert mail.outbox == []
    assert OfferSet.objects.count() == 0
    assert manager.get(f"{EVENTS}{event['id']}/").json()["emailed"] == 0


def test_cancelling_a_sent_event_is_409(demo_pack: None, manager: Any, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        event = created(manager)
    assert manager.get(f"{EVENTS}{event['id']}/").json()["status"] == "sent"

    assert error_code(manager.post(f"{EVENTS}{event['id']}/cancel/")) == (409, "conflict")
    assert Event.objects.get().status == "sent"


def test_cancelling_an_unknown_event_is_404(manager: Any) -> None:
    assert error_code(manager.post(f"{EVENTS}999999/cancel/")) == (404, "not_found")


# --- POST /api/v1/events/{id}/customers/ ------------------------------------------------------------------


def test_more_customers_are_added_and_those_already_in_are_skipped(demo_pack: None, manager: Any) -> None:
    event = created(manager)
    more = {"customers": [CUSTOMERS[0], {"external_id": "EV-4", "email": "four@example.com"}]}

    response = post(manager, f"{EVENTS}{event['id']}/customers/", more)

    assert response.status_code == 202
    assert response.json() == {"id": event["id"], "status": "processing", "total": 4, "added": 1}
    assert EventCustomer.objects.filter(event_id=event["id"]).count() == 4
    again = post(manager, f"{EVENTS}{event['id']}/customers/", more)
    assert again.status_code == 202
    assert again.json() == {"id": event["id"], "status": "processing", "total": 4, "added": 0}


def test_customers_added_to_a_sent_event_are_processed_and_e_mailed(
    demo_pack: None, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        event = created(manager)
        added = post(manager, f"{EVENTS}{event['id']}/customers/", {"customers": rows("LATE", 2)})
    assert added.status_code == 202, added.content

    body = manager.get(f"{EVENTS}{event['id']}/").json()
    assert (body["status"], body["total"], body["emailed"]) == ("sent", 5, 5)
    assert {"late0@example.com", "late1@example.com"} <= {m.to[0] for m in mail.outbox}
    assert len(mail.outbox) == 5


def test_a_cancelled_event_takes_no_more_customers(demo_pack: None, manager: Any) -> None:
    event = created(manager)
    assert manager.post(f"{EVENTS}{event['id']}/cancel/").status_code == 200

    response = post(manager, f"{EVENTS}{event['id']}/customers/", {"customers": rows("MORE", 1)})

    assert error_code(response) == (409, "conflict")
    assert EventCustomer.objects.count() == 3


def test_customers_for_an_unknown_event_are_404(manager: Any) -> None:
    response = post(manager, f"{EVENTS}999999/customers/", {"customers": rows("MORE", 1)})

    assert error_code(response) == (404, "not_found")
    assert EventCustomer.objects.count() == 0


# --- Idempotency-Key ---------------------------------------------------------------------------------------


def test_the_same_key_and_body_answer_the_same_and_make_no_second_event(demo_pack: None, manager: Any) -> None:
    first = post(manager, HTTP_IDEMPOTENCY_KEY="event-1")
    again = post(manager, HTTP_IDEMPOTENCY_KEY="event-1")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert (Event.objects.count(), EventCustomer.objects.count()) == (1, 3)


def test_the_same_key_with_another_body_is_409_and_makes_nothing(demo_pack: None, manager: Any) -> None:
    assert post(manager, HTTP_IDEMPOTENCY_KEY="event-1").status_code == 202

    response = post(manager, body=event_body(name="Another"), HTTP_IDEMPOTENCY_KEY="event-1")

    assert response.status_code == 409
    assert (Event.objects.count(), EventCustomer.objects.count()) == (1, 3)
    assert set(Event.objects.values_list("name", flat=True)) == {event_body()["name"]}


def test_adding_customers_is_idempotent_on_its_key(demo_pack: None, manager: Any) -> None:
    event = created(manager)
    path = f"{EVENTS}{event['id']}/customers/"
    more = {"customers": rows("MORE", 2)}

    first = post(manager, path, more, HTTP_IDEMPOTENCY_KEY="more-1")
    again = post(manager, path, more, HTTP_IDEMPOTENCY_KEY="more-1")
    other = post(manager, path, {"customers": rows("OTHER", 1)}, HTTP_IDEMPOTENCY_KEY="more-1")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() == {"id": event["id"], "status": "processing", "total": 5, "added": 2}
    assert other.status_code == 409
    assert EventCustomer.objects.count() == 5


# --- EVENT_MAX_CUSTOMERS_PER_DAY ------------------------------------------------------------------------------


@override_settings(EVENT_MAX_CUSTOMERS_PER_DAY=5)
@time_machine.travel(datetime(2025, 3, 4, 12, 0, tzinfo=UTC), tick=False)  # one day throughout
def test_the_daily_cap_counts_a_manager_s_customers_across_events(
    demo_pack: None, manager: Any, client_for: Any
) -> None:
    assert created(manager, event_body(customers=rows("A", 3)))["total"] == 3

    over = post(manager, body=event_body(customers=rows("B", 3)))
    assert error_code(over) == (429, "event_customer_limit")
    assert (Event.objects.count(), EventCustomer.objects.count()) == (1, 3)

    second = created(manager, event_body(customers=rows("B", 2)))  # 5: at the cap, not past it
    more = post(manager, f"{EVENTS}{second['id']}/customers/", {"customers": rows("C", 1)})
    assert error_code(more) == (429, "event_customer_limit")
    # Customers already in the event are skipped, so they do not count.
    again = post(manager, f"{EVENTS}{second['id']}/customers/", {"customers": rows("B", 2)})
    assert again.status_code == 202
    assert again.json()["added"] == 0

    # Another manager has a cap of their own.
    other = client_for("manager", "manager-2")
    assert created(other, event_body(customers=rows("D", 5)))["total"] == 5
    assert EventCustomer.objects.count() == 10


@override_settings(EVENT_MAX_CUSTOMERS_PER_DAY=5, TIME_ZONE="Pacific/Auckland")
def test_the_daily_cap_counts_the_day_in_time_zone(demo_pack: None, manager: Any) -> None:
    # 2025-03-04 10:30 UTC is 23:30 in Auckland (UTC+13); an hour later it is the 5th there, still the 4th in UTC.
    with time_machine.travel(datetime(2025, 3, 4, 10, 30, tzinfo=UTC), tick=False):
        created(manager, event_body(customers=rows("A", 5)))
    with time_machine.travel(datetime(2025, 3, 4, 10, 59, tzinfo=UTC), tick=False):
        assert error_code(post(manager, body=event_body(customers=rows("B", 1)))) == (429, "event_customer_limit")
    with time_machine.travel(datetime(2025, 3, 4, 11, 1, tzinfo=UTC), tick=False):
        assert created(manager, event_body(customers=rows("B", 5)))["total"] == 5


@override_settings(EVENT_MAX_CUSTOMERS_PER_DAY=5)
def test_the_daily_cap_counts_yesterday_s_customers_no_more(demo_pack: None, manager: Any) -> None:
    with time_machine.travel(datetime(2025, 3, 4, 23, 59, tzinfo=UTC), tick=False):
        created(manager, event_body(customers=rows("A", 5)))
    with time_machine.travel(datetime(2025, 3, 5, 0, 1, tzinfo=UTC), tick=False):
        assert created(manager, event_body(customers=rows("B", 5)))["total"] == 5


# --- Bad input changes nothing ----------------------------------------------------------------------------------

TOO_MANY = [{"external_id": str(n)} for n in range(10_001)]
BAD_EVENTS = [
    pytest.param({"category": "no_such_category"}, "category", id="unknown category"),
    pytest.param({"severity": 0}, "severity", id="severity 0"),
    pytest.param({"severity": 6}, "severity", id="severity 6"),
    pytest.param({"customers": TOO_MANY}, "customers", id="10,001 customers"),
    pytest.param({"customers": [CUSTOMERS[0], {"name": "No Id"}]}, "customers[1].external_id", id="no external_id"),
    pytest.param(
        {"customers": [CUSTOMERS[0], {"external_id": "EV-9", "email": "not-an-address"}]},
        "customers[1].email",
        id="bad e-mail",
    ),
    pytest.param(
        {"customers": [CUSTOMERS[0], CUSTOMERS[1], {"external_id": "EV-1"}]},
        "customers[2].external_id",
        id="repeated external_id names the second row",
    ),
    pytest.param({"customers": []}, "customers", id="empty customers"),
    pytest.param({"customers": {"external_id": "EV-1"}}, "customers", id="customers not a list"),
    pytest.param({"customers": "EV-1"}, "customers", id="customers a string"),
    pytest.param({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at", id="occurred_at in the future"),
]


@pytest.mark.parametrize(("change", "field"), BAD_EVENTS)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    demo_pack: None, manager: Any, change: dict[str, Any], field: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post(manager, body=event_body(**change))

    assert response.status_code == 400, response.content
    errors = response.json()
    assert set(errors) == {field}, errors
    assert all(isinstance(message, str) and message for message in errors[field])
    assert nothing_stored() == (0, 0, 0, 0)
    assert mail.outbox == []


def test_more_than_10000_customers_is_one_error(demo_pack: None, manager: Any) -> None:
    response = post(manager, body=event_body(customers=TOO_MANY))

    assert response.status_code == 400
    assert len(response.json()["customers"]) == 1


@pytest.mark.parametrize(
    ("more", "field"),
    [
        pytest.param(TOO_MANY, "customers", id="10,001 customers"),
        pytest.param([{"external_id": "EV-8"}, {"name": "No Id"}], "customers[1].external_id", id="no external_id"),
        pytest.param([{"external_id": "EV-8", "email": "nope"}], "customers[0].email", id="bad e-mail"),
        pytest.param([{"external_id": "EV-8"}, {"external_id": "EV-8"}], "customers[1].external_id", id="repeated"),
        pytest.param([], "customers", id="empty"),
        pytest.param("EV-8", "customers", id="not a list"),
    ],
)
def test_bad_customers_for_an_event_are_a_400_and_change_nothing(
    demo_pack: None, manager: Any, more: Any, field: str
) -> None:
    event = created(manager)
    before = nothing_stored()

    response = post(manager, f"{EVENTS}{event['id']}/customers/", {"customers": more})

    assert response.status_code == 400, response.content
    assert set(response.json()) == {field}
    assert nothing_stored() == before


# --- Who may call --------------------------------------------------------------------------------------------

OPERATIONS = [
    ("post", EVENTS),
    ("get", EVENTS),
    ("get", EVENTS + "{id}/"),
    ("post", EVENTS + "{id}/customers/"),
    ("post", EVENTS + "{id}/cancel/"),
]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@pytest.mark.parametrize(("role", "expected"), [("agent", 403), ("analyst", 403), ("integration", 403), (None, 401)])
def test_only_managers_may_call_the_event_endpoints(
    demo_pack: None,
    manager: Any,
    client_for: Any,
    api_client: Any,
    method: str,
    path: str,
    role: str | None,
    expected: int,
) -> None:
    event = created(manager)
    client = api_client if role is None else client_for(role, f"{role}-1")
    body = event_body(customers=rows("X", 1)) if path == EVENTS else {"customers": rows("X", 1)}

    response = getattr(client, method)(path.format(id=event["id"]), body if method == "post" else None, format="json")

    assert response.status_code == expected, response.content
    assert (Event.objects.count(), EventCustomer.objects.count()) == (1, 3)
    assert Event.objects.get().status == "processing"


# --- The body limit (EVENT_MAX_BODY_BYTES) ------------------------------------------------------------------


def chunked(client: Any, path: str, body: bytes) -> tuple[Any, io.BytesIO]:
    """A request without Content-Length, as gunicorn hands on a chunked one (tests/test_request_bodies.py)."""
    stream = io.BytesIO(body)
    environ = {"wsgi.input": stream, "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}
    return client.generic("POST", path, b"", content_type="application/json", **environ), stream


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON, padded with spaces to ``size`` bytes."""
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048, EVENT_MAX_BODY_BYTES=8192)
def test_a_chunked_event_body_is_held_to_the_event_limit(demo_pack: None, manager: Any) -> None:
    response, _ = chunked(manager, EVENTS, padded(event_body(), 8192))
    assert response.status_code == 202, response.content

    response, stream = chunked(manager, EVENTS, padded(event_body(), 9000))
    assert error_code(response) == (413, "request_too_large")
    assert stream.tell() == 8193  # read one byte past the limit, no more
    assert Event.objects.count() == 1

    # Other endpoints keep the general limit.
    response, _ = chunked(manager, "/api/v1/offer-sets/", padded({"customer": {}}, 4096))
    assert error_code(response) == (413, "request_too_large")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048, EVENT_MAX_BODY_BYTES=8192)
def test_a_chunked_body_of_more_customers_is_held_to_the_event_limit(demo_pack: None, manager: Any) -> None:
    event = created(manager)
    path = f"{EVENTS}{event['id']}/customers/"

    response, _ = chunked(manager, path, padded({"customers": rows("MORE", 1)}, 8192))
    assert response.status_code == 202, response.content
    response, _ = chunked(manager, path, padded({"customers": rows("OVER", 1)}, 8193))
    assert error_code(response) == (413, "request_too_large")
    assert EventCustomer.objects.count() == 4


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048, EVENT_MAX_BODY_BYTES=8192)
def test_a_body_of_more_customers_declared_over_the_event_limit_is_413(demo_pack: None, manager: Any) -> None:
    event = created(manager)
    path = f"{EVENTS}{event['id']}/customers/"
    body = padded({"customers": rows("MORE", 1)}, 8192)

    assert manager.generic("POST", path, body, content_type="application/json").status_code == 202
    over = padded({"customers": rows("OVER", 1)}, 8193)
    assert error_code(manager.generic("POST", path, over, content_type="application/json")) == (
        413,
        "request_too_large",
    )


# --- Figures stay exact under concurrent choices (PostgreSQL) --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_figures_stay_exact_while_customers_choose_at_once(
    need_postgres: None, demo_pack: None, make_user: Any
) -> None:
    owner, key = make_user("manager-concurrent", "manager")

    data = {
        "name": "Concurrent choices",
        "category": Category.objects.get(slug="missed_delivery"),
        "severity": 3,
        "fault": "company",
        "correctable": True,
        "description": "",
        "customers": [{"external_id": f"CC-{n}", "email": f"cc{n}@example.com"} for n in range(20)],
    }
    event = event_create(user=owner, data=data).event  # committed: its task ran (eagerly) after commit
    assert Event.objects.get(pk=event.pk).status == "sent"
    tokens = [token_of(nonce) for nonce in EventCustomer.objects.order_by("position").values_list("nonce", flat=True)]
    # Customers 0-11 choose "a", 12-19 "None of these"; customers 0-3 press a second button at the same moment
    # (another thread), and only one of the two presses can count.
    presses = [(token, "a" if n < 12 else "none") for n, token in enumerate(tokens)]
    presses += [(tokens[n], "none") for n in range(4)]
    barrier = threading.Barrier(len(presses))
    results: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def press(token: str, choice: str) -> None:
        try:
            barrier.wait(timeout=30)
            try:
                event_choose(token=token, choice=choice)
                outcome = "ok"
            except Conflict:
                outcome = "conflict"
            with lock:
                results.append((token, choice, outcome))
        finally:
            connection.close()

    threads = [threading.Thread(target=press, args=press_args) for press_args in presses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert len(results) == len(presses), results

    # Each customer's one counted choice: what their page now says they chose.
    counted: dict[str, str] = {}
    for token, choice, outcome in results:
        if outcome == "ok":
            assert counted.setdefault(token, choice) == choice, (token, results)
    assert set(counted) == set(tokens)
    assert Counter(outcome for _, _, outcome in results) == {"ok": 20, "conflict": 4}
    done = Counter(counted.values())
    submissions = OutcomeSubmission.objects.filter(offer_set__event_customer__event=event).exclude(status="rejected")
    assert submissions.count() == 20

    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    figures = reader.get(f"{EVENTS}{event.pk}/").json()
    assert (figures["chosen"], figures["declined"], figures["escalated"]) == (done["a"], done["none"], 0)
    assert figures["chosen"] + figures["declined"] == 20
    # 8 "a" and 8 "none" were never contested.
    assert done["a"] >= 8
    assert done["none"] >= 8


# --- The schema documents each answer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("post", "/api/v1/events/", {"202", "400", "401", "403", "409", "413", "429"}),
        ("get", "/api/v1/events/", {"200", "401", "403", "404", "429"}),
        ("get", "/api/v1/events/{event_id}/", {"200", "401", "403", "404", "429"}),
        ("post", "/api/v1/events/{event_id}/customers/", {"202", "400", "401", "403", "404", "409", "413", "429"}),
        ("post", "/api/v1/events/{event_id}/cancel/", {"200", "401", "403", "404", "409", "429"}),
    ],
)
def test_the_schema_documents_every_answer_of_the_event_endpoints(
    client: Any, method: str, path: str, codes: set[str]
) -> None:
    schema = client.get("/api/schema/?format=json").json()

    assert codes <= set(schema["paths"][path][method]["responses"])
