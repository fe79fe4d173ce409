"""The managers' queue at /console/escalations/ (API.md, "The console"): managers only; open escalations, soonest
due first, overdue ones marked in words with the time left on the SLA; each with its incident and the options its
customer was shown; the actions that apply to it ("Acknowledge", "Resolve" with "Resolution", "Approve", "Reject"
with "Reason") change it exactly as the REST actions do; bad input is shown at its field and changes nothing; a
conflict is a message, never a 500; CSRF applies; the page's queries do not grow with the queue."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from compensation.models import Customer, Escalation, Incident, OutcomeSubmission
from console.escalations import span_words, time_left_words
from policies.choices import OfferKind
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

pytestmark = pytest.mark.django_db

PAGE = "/console/escalations/"
OFFER_SETS = "/api/v1/offer-sets/"
API = "/api/v1/escalations/"
# A fixed moment: the page's "due in" / "overdue by" are read against it, whatever today is.
MOMENT = datetime(2031, 5, 14, 15, 0, tzinfo=UTC)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _at_moment() -> Any:
    """Every test runs at MOMENT, the clock stopped (sessions, offer sets and due times all read it)."""
    with time_machine.travel(MOMENT, tick=False):
        yield


# --- Helpers ---------------------------------------------------------------------------------


def escalation_new(
    *,
    due_in: timedelta,
    kind: str = Escalation.Kind.SENIOR_MANAGER,
    status: str = Escalation.Status.OPEN,
    external_id: str = "C-1",
    reason: str = "Severity 5, not correctable",
) -> Escalation:
    category = CategoryFactory(slug="missed_appointment", name="missed appointment")
    customer, _ = Customer.objects.get_or_create(external_id=external_id, defaults={"name": "Ada Lovelace"})
    incident = Incident.objects.create(
        customer=customer, category=category, severity=5, currency="USD", occurred_at=MOMENT - timedelta(hours=1)
    )
    return Escalation.objects.create(
        kind=kind, status=status, reason=reason, due_at=MOMENT + due_in, incident=incident, customer=customer
    )


def web(make_user: Any, role: str, username: str | None = None, **client_options: Any) -> Client:
    """A browser session logged in as a new user of ``role``."""
    user, _ = make_user(username or f"{role}-web", role)
    client = Client(**client_options)
    client.force_login(user)
    return client


@pytest.fixture
def manager_pair(make_user: Any) -> tuple[Client, Any]:
    """One manager, with a console session and a token for the REST API."""
    from rest_framework.test import APIClient

    user, key = make_user("manager-1", "manager")
    console = Client()
    console.force_login(user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return console, api


@pytest.fixture
def console(manager_pair: tuple[Client, Any]) -> Client:
    return manager_pair[0]


@pytest.fixture
def shop(db: None) -> None:
    """Late deliveries get three options: a 150.00 credit (above an agent's 100.00 limit per option), free
    shipping costing 40.00 and a gift costing 20.00."""
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    policy = PolicyFactory(name="Goodwill", categories=[category])
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("150.00"), order=0)
    OfferTemplateFactory(
        policy=policy,
        kind=OfferKind.FREE_SHIPPING,
        title="Free shipping",
        value=Decimal("9.00"),
        cost=Decimal("40.00"),
        order=1,
    )
    OfferTemplateFactory(
        policy=policy, kind=OfferKind.GIFT, title="A gift", value=Decimal("25.00"), cost=Decimal("20.00"), order=2
    )


def approval_needed(agent: Any, external_id: str, capture: Any) -> tuple[Escalation, dict[str, Any]]:
    """Through the API: the agent gets options for a gold customer's late delivery and chooses the 150.00
    credit, above their limit; the choice waits for a manager's approval."""
    offer_set = agent.post(
        OFFER_SETS,
        {
            "customer": {"external_id": external_id, "name": "Grace Hopper", "tier": "gold"},
            "incident": {
                "category": "late_delivery",
                "severity": 3,
                "order_value": "80.00",
                "external_ref": f"T-{external_id}",
                "description": "The parcel came nine days late.",
            },
        },
        format="json",
    ).json()
    credit = next(o for o in offer_set["options"] if o["kind"] == OfferKind.FIXED_CREDIT)
    with capture(execute=True):
        response = agent.post(f"{OFFER_SETS}{offer_set['id']}/outcome/", {"choice": credit["label"]}, format="json")
    assert response.json()["outcome_status"] == "awaiting_approval"
    return Escalation.objects.get(kind="approval", customer__external_id=external_id), offer_set


class _Cards(HTMLParser):
    """Each <article>'s id, heading, text and button names, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, Any]] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "article":
            self.cards.append({"id": dict(attrs)["id"], "text": "", "buttons": [], "heading": ""})
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if not self.cards or "article" not in self._in:
            return
        card = self.cards[-1]
        card["text"] += f" {data}"
        if self._in[-1] == "button":
            card["buttons"].append(data.strip())
        if self._in[-1] == "h2":
            card["heading"] += data


def cards(response: Any) -> list[dict[str, Any]]:
    parser = _Cards()
    parser.feed(response.content.decode())
    for card in parser.cards:
        card["text"] = " ".join(card["text"].split())
    return parser.cards


def card_of(response: Any, escalation: Escalation) -> dict[str, Any]:
    return next(c for c in cards(response) if c["id"] == f"escalation-{escalation.pk}")


def status_text(response: Any) -> str:
    """The words the page's live region says (the region itself on a page, its out-of-band content after htmx)."""
    found = re.search(r'<div id="queue-status"[^>]*>(.*?)</div>', response.content.decode(), re.S)
    assert found is not None, "no status region"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def count_text(response: Any) -> str:
    """The queue's count line, as read."""
    found = re.search(r'<p id="queue-count"[^>]*>(.*?)</p>', response.content.decode(), re.S)
    assert found is not None, "no count line"
    return re.sub(r"<[^>]+>", "", found.group(1))


def row(escalation: Escalation) -> dict[str, Any]:
    """What an action may change on the escalation, as stored."""
    escalation.refresh_from_db()
    return {
        "status": escalation.status,
        "assigned_to": escalation.assigned_to.get_username() if escalation.assigned_to_id else None,
        "acknowledged_at": escalation.acknowledged_at,
        "resolved_at": escalation.resolved_at,
        "resolution": escalation.resolution,
    }


# --- Who may see it ---------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_the_console_login() -> None:
    escalation = escalation_new(due_in=timedelta(hours=1))

    response = Client().get(PAGE)
    posted = Client().post(f"{PAGE}{escalation.pk}/acknowledge/")

    assert response.status_code == 302
    assert response["Location"] == "/console/login/?next=/console/escalations/"
    assert posted.status_code == 302
    assert posted["Location"].startswith("/console/login/")
    assert row(escalation)["status"] == "open"


@pytest.mark.parametrize("role", ["agent", "analyst", "integration"])
def test_other_roles_get_403_and_change_nothing(make_user: Any, role: str) -> None:
    escalation = escalation_new(due_in=timedelta(hours=1))
    client = web(make_user, role)

    page = client.get(PAGE)
    posted = client.post(f"{PAGE}{escalation.pk}/resolve/", {"resolution": "Done"})

    assert page.status_code == 403
    assert "The escalations queue is for managers" in page.content.decode()
    assert posted.status_code == 403
    assert row(escalation)["status"] == "open"


def test_the_nav_links_the_queue_for_managers_only(make_user: Any) -> None:
    link = f'href="{PAGE}"'

    assert link in web(make_user, "manager").get("/console/").content.decode()
    assert link not in web(make_user, "agent").get("/console/").content.decode()


# --- What it lists --------------------------------------------------------------------------------


def test_open_escalations_soonest_due_first_with_the_overdue_marked_in_words(console: Client) -> None:
    later = escalation_new(due_in=timedelta(hours=5), external_id="C-later")
    late = escalation_new(due_in=-timedelta(hours=2), external_id="C-late")
    acknowledged = escalation_new(due_in=timedelta(hours=3, minutes=20), status="acknowledged", external_id="C-ack")
    escalation_new(due_in=-timedelta(hours=9), status="resolved", external_id="C-closed")
    escalation_new(due_in=timedelta(hours=1), kind="approval", status="rejected", external_id="C-refused")

    response = console.get(PAGE)

    assert response.status_code == 200
    shown = cards(response)
    assert [c["id"] for c in shown] == [f"escalation-{e.pk}" for e in (late, acknowledged, later)]
    assert shown[0]["text"].startswith(
        f"Escalation #{late.pk}: senior manager, missed appointment Overdue Overdue by 2 h"
    )
    assert "Due in 3 h 20 min" in shown[1]["text"]
    assert "Due in 5 h " in shown[2]["text"]
    assert ["Overdue" in c["text"] for c in shown] == [True, False, False]
    assert count_text(response) == "3 open escalations, soonest due first; 1 overdue."


def test_a_long_queue_comes_in_pages_of_25(console: Client) -> None:
    made = [escalation_new(due_in=timedelta(hours=n + 1), external_id=f"C-{n}") for n in range(30)]

    first = console.get(PAGE)
    second = console.get(PAGE, {"page": 2})

    assert [c["id"] for c in cards(first)] == [f"escalation-{e.pk}" for e in made[:25]]
    assert [c["id"] for c in cards(second)] == [f"escalation-{e.pk}" for e in made[25:]]
    assert count_text(first) == "30 open escalations, soonest due first; none overdue."
    assert '<a href="?page=2">Next page</a>' in first.content.decode()
    assert '<a href="?page=1">Previous page</a>' in second.content.decode()


def test_an_empty_queue_says_so(console: Client) -> None:
    escalation_new(due_in=timedelta(hours=1), status="resolved")

    response = console.get(PAGE)

    assert cards(response) == []
    assert "No escalation is open." in response.content.decode()


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "less than a minute"),
        (59, "less than a minute"),
        (60, "1 min"),
        (20 * 60 + 59, "20 min"),
        (2 * 3600, "2 h"),
        (3 * 3600 + 20 * 60, "3 h 20 min"),
        (26 * 3600 + 5 * 60, "1 d 2 h"),
        (3 * 86400, "3 d"),
    ],
)
def test_spans_read_in_days_hours_and_minutes(seconds: int, words: str) -> None:
    assert span_words(seconds) == words


def test_time_left_says_due_in_before_and_overdue_by_after() -> None:
    assert time_left_words(MOMENT + timedelta(minutes=90), MOMENT) == "due in 1 h 30 min"
    assert time_left_words(MOMENT - timedelta(minutes=90), MOMENT) == "overdue by 1 h 30 min"


def test_a_card_shows_the_incident_and_the_options_the_customer_was_shown(
    shop: None, console: Client, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    escalation, offer_set = approval_needed(client_for("agent", "agent-1"), "C-7", django_capture_on_commit_callbacks)

    card = card_of(console.get(PAGE), escalation)

    text = card["text"]
    assert card["heading"] == f"Escalation #{escalation.pk}: approval, late delivery"
    assert "agent-1 asks to give" in text  # the reason
    assert "Grace Hopper (C-7), Gold tier" in text
    assert "Severity 3 of 5" in text
    assert "Ticket T-C-7" in text
    assert "The parcel came nine days late." in text
    assert "Order value $80.00" in text
    assert "Given by agent-1" in text
    for option in offer_set["options"]:
        assert option["title"] in text
    credit = next(o for o in offer_set["options"] if o["kind"] == OfferKind.FIXED_CREDIT)
    assert f"{credit['label']} {credit['title']} $150.00 Yes Chosen, waiting for this approval" in text
    assert "Free shipping $40.00 No Not chosen" in text
    assert "A gift $20.00 No Not chosen" in text


def test_each_card_offers_only_the_actions_that_apply(console: Client) -> None:
    open_senior = escalation_new(due_in=timedelta(hours=1), external_id="C-1")
    acknowledged_senior = escalation_new(due_in=timedelta(hours=2), status="acknowledged", external_id="C-2")
    open_approval = escalation_new(due_in=timedelta(hours=3), kind="approval", external_id="C-3")
    acknowledged_approval = escalation_new(
        due_in=timedelta(hours=4), kind="approval", status="acknowledged", external_id="C-4"
    )

    response = console.get(PAGE)

    buttons = {c["id"]: c["buttons"] for c in cards(response)}
    assert buttons == {
        f"escalation-{open_senior.pk}": ["Acknowledge", "Resolve"],
        f"escalation-{acknowledged_senior.pk}": ["Resolve"],
        f"escalation-{open_approval.pk}": ["Acknowledge", "Approve", "Reject"],
        f"escalation-{acknowledged_approval.pk}": ["Approve", "Reject"],
    }
    html = response.content.decode()
    assert f'<label for="resolution-{open_senior.pk}">Resolution</label>' in html
    assert f'id="resolution-{open_senior.pk}" name="resolution"' in html
    assert f'<label for="reason-{open_approval.pk}">Reason</label>' in html
    assert f'id="reason-{open_approval.pk}" name="reason"' in html


def test_the_page_costs_the_same_queries_for_2_or_12_escalations(
    shop: None,
    console: Client,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
    django_assert_max_num_queries: Any,
) -> None:
    agent = client_for("agent", "agent-1")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert console.get(PAGE).status_code == 200
        return len(captured)

    for n in range(2):
        approval_needed(agent, f"C-{n}", django_capture_on_commit_callbacks)
    escalation_new(due_in=timedelta(hours=1), external_id="C-senior")
    few = queries()
    for n in range(2, 12):
        approval_needed(agent, f"C-{n}", django_capture_on_commit_callbacks)

    assert queries() == few
    # The session, the user, their role groups, the page, its count, options, choices, remedies, the counts.
    with django_assert_max_num_queries(9):
        console.get(PAGE)


# --- The actions, as REST does them ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "data", "kind"),
    [
        ("acknowledge", {}, "senior_manager"),
        ("resolve", {"resolution": "Called the customer; a courier goes today."}, "senior_manager"),
        ("acknowledge", {}, "approval"),
        ("approve", {}, "approval"),
        ("reject", {"reason": "Too generous for a three-day delay."}, "approval"),
    ],
)
def test_an_action_on_the_page_changes_the_escalation_as_the_rest_action_does(
    shop: None,
    manager_pair: tuple[Client, Any],
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
    action: str,
    data: dict[str, str],
    kind: str,
) -> None:
    console, api = manager_pair
    if kind == "approval":
        agent = client_for("agent", "agent-1")
        by_rest, _ = approval_needed(agent, "C-rest", django_capture_on_commit_callbacks)
        by_page, _ = approval_needed(agent, "C-page", django_capture_on_commit_callbacks)
    else:
        by_rest = escalation_new(due_in=timedelta(hours=1), external_id="C-rest")
        by_page = escalation_new(due_in=timedelta(hours=1), external_id="C-page")

    with django_capture_on_commit_callbacks(execute=True):
        rest = api.post(f"{API}{by_rest.pk}/{action}/", data, format="json")
        page = console.post(f"{PAGE}{by_page.pk}/{action}/", data, **HTMX)

    assert rest.status_code == 200, rest.content
    assert page.status_code == 200, page.content
    assert row(by_page) == row(by_rest)
    assert row(by_page)["status"] != "open" or action == "acknowledge"
    submissions = {s.offer_set.customer.external_id: s.status for s in OutcomeSubmission.objects.all()}
    assert submissions.get("C-page") == submissions.get("C-rest")
    done = {"acknowledge": "acknowledged", "resolve": "resolved", "approve": "approved", "reject": "rejected"}[action]
    assert status_text(page).startswith(f"Escalation #{by_page.pk} {done}")


def test_acknowledging_returns_the_card_in_its_new_state(console: Client) -> None:
    escalation = escalation_new(due_in=timedelta(hours=2))

    response = console.post(f"{PAGE}{escalation.pk}/acknowledge/", **HTMX)

    assert response.status_code == 200
    [card] = cards(response)
    assert card["id"] == f"escalation-{escalation.pk}"
    assert "Acknowledged, assigned to manager-1" in card["text"]
    assert card["buttons"] == ["Resolve"]
    assert status_text(response) == f"Escalation #{escalation.pk} acknowledged; it is assigned to manager-1."
    assert 'id="queue-count" hx-swap-oob="true"' in response.content.decode()


def test_a_closed_escalation_leaves_the_list_and_the_counts_follow(console: Client) -> None:
    escalation = escalation_new(due_in=-timedelta(hours=2))
    escalation_new(due_in=timedelta(hours=2), external_id="C-2")

    response = console.post(f"{PAGE}{escalation.pk}/resolve/", {"resolution": "Refunded by phone"}, **HTMX)

    assert response.status_code == 200
    assert cards(response) == []  # the card is replaced by nothing
    assert status_text(response) == f"Escalation #{escalation.pk} resolved. It has left the open list."
    assert count_text(response) == "1 open escalation, soonest due first; none overdue."
    assert row(escalation)["resolution"] == "Refunded by phone"


def test_without_htmx_an_action_redirects_to_the_queue_which_says_what_was_done(console: Client) -> None:
    escalation = escalation_new(due_in=timedelta(hours=2))

    response = console.post(f"{PAGE}{escalation.pk}/resolve/", {"resolution": "Refunded by phone"})
    page = console.get(response["Location"])

    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert status_text(page) == f"Escalation #{escalation.pk} resolved. It has left the open list."
    assert cards(page) == []


# --- Bad input and conflicts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "kind", "field", "value", "message"),
    [
        ("resolve", "senior_manager", "resolution", "", "This field may not be blank."),
        ("resolve", "senior_manager", "resolution", "   ", "This field may not be blank."),
        ("resolve", "senior_manager", "resolution", "x" * 4001, "no more than 4000 characters"),
        ("reject", "approval", "reason", "", "This field may not be blank."),
    ],
)
@pytest.mark.parametrize("htmx", [True, False])
def test_bad_input_is_shown_at_its_field_and_changes_nothing(
    console: Client, action: str, kind: str, field: str, value: str, message: str, htmx: bool
) -> None:
    escalation = escalation_new(due_in=timedelta(hours=2), kind=kind)
    before = row(escalation)

    response = console.post(f"{PAGE}{escalation.pk}/{action}/", {field: value}, **(HTMX if htmx else {}))

    assert response.status_code == 400
    assert row(escalation) == before
    html = response.content.decode()
    error_id = f"{field}-{escalation.pk}-error"
    field_tag = re.search(rf'<textarea id="{field}-{escalation.pk}"[^>]*>', html)
    assert field_tag is not None
    assert 'aria-invalid="true"' in field_tag.group(0)
    assert f'aria-describedby="{error_id}"' in field_tag.group(0)
    error = re.search(rf'<ul class="errorlist" id="{error_id}">(.*?)</ul>', html, re.S)
    assert error is not None
    assert message in error.group(1)
    assert status_text(response).startswith(f"Escalation #{escalation.pk} not {action.removesuffix('e')}ed: ")


def test_approving_twice_says_it_was_already_approved_and_changes_nothing(
    shop: None, console: Client, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    escalation, _ = approval_needed(client_for("agent", "agent-1"), "C-1", django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        first = console.post(f"{PAGE}{escalation.pk}/approve/", **HTMX)
    approved = row(escalation)

    again = console.post(f"{PAGE}{escalation.pk}/approve/", **HTMX)
    rejected = console.post(f"{PAGE}{escalation.pk}/reject/", {"reason": "Changed my mind"}, **HTMX)

    assert first.status_code == 200
    assert approved["status"] == "approved"
    assert OutcomeSubmission.objects.get().status == "recorded"
    assert again.status_code == 409
    assert status_text(again) == f"Escalation #{escalation.pk} was already approved by manager-1; nothing changed."
    assert rejected.status_code == 409
    assert status_text(rejected) == (
        f"Escalation #{escalation.pk} not rejected: Escalation {escalation.pk} is approved; it cannot be rejected."
    )
    assert row(escalation) == approved
    assert OutcomeSubmission.objects.get().status == "recorded"


@pytest.mark.parametrize(
    ("kind", "action", "data", "says"),
    [
        ("senior_manager", "approve", {}, "Only approval escalations are approved; resolve this one."),
        ("senior_manager", "reject", {"reason": "No"}, "Only approval escalations are rejected; resolve this one."),
        ("approval", "resolve", {"resolution": "Done"}, "An approval is closed by approving or rejecting it."),
        ("approval", "approve", {}, "has no outcome or remedy waiting for approval"),
    ],
)
def test_an_action_that_does_not_apply_is_a_message_in_the_card(
    console: Client, kind: str, action: str, data: dict[str, str], says: str
) -> None:
    escalation = escalation_new(due_in=timedelta(hours=2), kind=kind)
    before = row(escalation)

    response = console.post(f"{PAGE}{escalation.pk}/{action}/", data, **HTMX)

    assert response.status_code == 409
    assert row(escalation) == before
    [card] = cards(response)  # still open: the card stays, saying why
    assert says in card["text"]
    assert says in status_text(response)


def test_acting_on_a_closed_or_missing_escalation_is_a_message(console: Client) -> None:
    resolved = escalation_new(due_in=timedelta(hours=2), status="resolved")

    closed = console.post(f"{PAGE}{resolved.pk}/acknowledge/", **HTMX)
    missing = console.post(f"{PAGE}999999/resolve/", {"resolution": "Done"}, **HTMX)
    missing_page = console.post(f"{PAGE}999999/approve/")

    assert closed.status_code == 409
    assert cards(closed) == []
    assert status_text(closed) == (
        f"Escalation #{resolved.pk} not acknowledged: Escalation {resolved.pk} is resolved; it cannot be acknowledged."
    )
    assert missing.status_code == 404
    assert status_text(missing) == "Escalation #999999 does not exist; nothing changed."
    assert missing_page.status_code == 404
    assert "Escalation #999999 does not exist; nothing changed." in missing_page.content.decode()


def test_an_action_is_a_post(console: Client) -> None:
    escalation = escalation_new(due_in=timedelta(hours=2))

    assert console.get(f"{PAGE}{escalation.pk}/acknowledge/").status_code == 405
    assert row(escalation)["status"] == "open"


# --- CSRF ---------------------------------------------------------------------------------------------


def test_csrf_is_enforced_on_the_actions(make_user: Any) -> None:
    escalation = escalation_new(due_in=timedelta(hours=2))
    client = web(make_user, "manager", enforce_csrf_checks=True)
    page = client.get(PAGE).content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page)
    assert token is not None

    refused = client.post(f"{PAGE}{escalation.pk}/acknowledge/", **HTMX)
    status_after_refusal = row(escalation)["status"]
    accepted = client.post(f"{PAGE}{escalation.pk}/acknowledge/", HTTP_X_CSRFTOKEN=token.group(1), **HTMX)

    assert refused.status_code == 403
    assert status_after_refusal == "open"
    assert accepted.status_code == 200
    assert row(escalation)["status"] == "acknowledged"
