"""The escalations API's contract (the OpenAPI schema, ``/api/v1/escalations/``): the list with pagination
and filters, the detail and its payload, acknowledge / resolve / approve / reject and their conflicts, permissions,
and the managers' e-mails (on opening, after commit, and once when overdue)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from compensation.models import Customer, Escalation, Incident, OutcomeSubmission
from compensation.serializers import EscalationOutputSerializer
from compensation.services.escalations import escalation_notify, escalations_flag_overdue
from policies.choices import OfferKind
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/escalations/"
OFFER_SETS = "/api/v1/offer-sets/"
PAYLOAD_KEYS = {
    "id",
    "kind",
    "status",
    "reason",
    "due_at",
    "overdue",
    "offer_set",
    "incident",
    "customer",
    "assigned_to",
    "acknowledged_at",
    "resolved_at",
    "resolution",
}
ACTIONS = ["acknowledge", "resolve", "approve", "reject"]


# --- Helpers ---------------------------------------------------------------------------------


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def escalation_new(
    *,
    kind: str = Escalation.Kind.SENIOR_MANAGER,
    status: str = Escalation.Status.OPEN,
    due_in: timedelta = timedelta(hours=4),
    external_id: str = "C-1",
    reason: str = "Severity 5, not correctable",
    **fields: Any,
) -> Escalation:
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    customer, _ = Customer.objects.get_or_create(external_id=external_id, defaults={"name": "Ada Lovelace"})
    incident = Incident.objects.create(
        customer=customer, category=category, severity=5, currency="USD", occurred_at=timezone.now()
    )
    return Escalation.objects.create(
        kind=kind,
        status=status,
        reason=reason,
        due_at=timezone.now() + due_in,
        incident=incident,
        customer=customer,
        **fields,
    )


def url(escalation: Escalation | int, action: str | None = None) -> str:
    pk = escalation.pk if isinstance(escalation, Escalation) else escalation
    return f"{URL}{pk}/" + (f"{action}/" if action else "")


def act(client: Any, escalation: Escalation | int, action: str, data: dict | None = None) -> Any:
    if data is None:
        data = {"resolution": "Called the customer"} if action == "resolve" else {}
        data = {"reason": "Too generous"} if action == "reject" else data
    return client.post(url(escalation, action), data, format="json")


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    return response.json()


def ids(response: Any) -> list[int]:
    return [item["id"] for item in ok(response)["results"]]


def manager_with_email(make_user: Any, username: str, email: str, *, active: bool = True) -> Any:
    user, _ = make_user(username, "manager")
    user.email = email
    user.is_active = active
    user.save()
    return user


@pytest.fixture
def manager(client_for: Any) -> Any:
    return client_for("manager", "manager-1")


# --- List ------------------------------------------------------------------------------------------


def test_list_is_paginated_soonest_due_first(manager: Any) -> None:
    made = [escalation_new(due_in=timedelta(hours=30 - n)) for n in range(30)]

    first = ok(manager.get(URL))
    assert first["count"] == 30
    assert len(first["results"]) == 25
    assert first["next"] is not None
    assert first["previous"] is None
    assert [item["id"] for item in first["results"]] == [e.pk for e in reversed(made)][:25]
    second = ok(manager.get(URL, {"page": 2}))
    assert [item["id"] for item in second["results"]] == [e.pk for e in reversed(made)][25:]
    assert second["next"] is None
    assert len(ok(manager.get(URL, {"page_size": 7}))["results"]) == 7
    assert len(ok(manager.get(URL, {"page_size": 1000}))["results"]) == 30  # capped at 100, all here


def test_list_filters_on_status_kind_and_overdue(manager: Any) -> None:
    open_late = escalation_new(due_in=-timedelta(hours=1))
    acknowledged = escalation_new(status="acknowledged", due_in=timedelta(hours=1))
    resolved_late = escalation_new(status="resolved", due_in=-timedelta(hours=2))
    approval = escalation_new(kind="approval", due_in=timedelta(hours=2))

    assert ids(manager.get(URL, {"status": "open"})) == [open_late.pk, approval.pk]
    assert ids(manager.get(URL, {"status": "resolved"})) == [resolved_late.pk]
    assert ids(manager.get(URL, {"kind": "approval"})) == [approval.pk]
    assert ids(manager.get(URL, {"kind": "senior_manager", "status": "acknowledged"})) == [acknowledged.pk]
    assert ids(manager.get(URL, {"overdue": "true"})) == [open_late.pk]  # a closed one is never overdue
    assert ids(manager.get(URL, {"overdue": "false"})) == [resolved_late.pk, acknowledged.pk, approval.pk]


@pytest.mark.parametrize(
    ("value", "late"), [("true", True), ("True", True), ("1", True), ("false", False), ("FALSE", False), ("0", False)]
)
def test_overdue_takes_true_or_false_in_any_case_or_1_and_0(manager: Any, value: str, late: bool) -> None:
    overdue = escalation_new(due_in=-timedelta(hours=1))
    on_time = escalation_new(due_in=timedelta(hours=1))

    assert ids(manager.get(URL, {"overdue": value})) == [overdue.pk if late else on_time.pk]


def test_an_empty_overdue_filter_is_no_filter(manager: Any) -> None:
    made = [escalation_new(due_in=-timedelta(hours=1)), escalation_new(due_in=timedelta(hours=1))]

    assert ids(manager.get(URL, {"overdue": ""})) == [e.pk for e in made]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": "OPEN"}, "status"),
        ({"kind": "manager"}, "kind"),
        ({"overdue": "maybe"}, "overdue"),
    ],
)
def test_a_bad_filter_value_is_400_naming_the_filter(manager: Any, params: dict, field: str) -> None:
    escalation_new()

    response = manager.get(URL, params)

    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("page", ["0", "99", "x"])
def test_a_page_that_does_not_exist_is_404(manager: Any, page: str) -> None:
    escalation_new()

    response = manager.get(URL, {"page": page})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_list_costs_the_same_queries_for_2_or_12_escalations(manager: Any, django_assert_max_num_queries: Any) -> None:
    for _ in range(2):
        escalation_new()
    with django_assert_max_num_queries(3):  # token with the role, count, page (customer, assignee joined)
        assert len(ok(manager.get(URL))["results"]) == 2
    for _ in range(10):
        escalation_new()
    with django_assert_max_num_queries(3):
        assert len(ok(manager.get(URL))["results"]) == 12


# --- Detail and payload --------------------------------------------------------------------------


def test_detail_has_the_documented_keys(manager: Any) -> None:
    escalation = escalation_new(reason="Severity 5 and nothing left to correct")

    data = ok(manager.get(url(escalation)))

    assert set(data) >= PAYLOAD_KEYS
    assert set(data) <= set(EscalationOutputSerializer().fields), "a key the OpenAPI schema does not describe"
    assert data == {
        **{key: data[key] for key in set(data) - PAYLOAD_KEYS},
        "id": escalation.pk,
        "kind": "senior_manager",
        "status": "open",
        "reason": "Severity 5 and nothing left to correct",
        "due_at": data["due_at"],
        "overdue": False,
        "offer_set": None,
        "incident": escalation.incident_id,
        "customer": "C-1",
        "assigned_to": None,
        "acknowledged_at": None,
        "resolved_at": None,
        "resolution": "",
    }
    assert parse(data["due_at"]) == escalation.due_at
    assert data["due_at"].endswith("Z")
    assert ok(manager.get(URL))["results"] == [data]


@pytest.mark.parametrize(
    ("status", "due_in", "overdue"),
    [
        ("open", -timedelta(minutes=1), True),
        ("acknowledged", -timedelta(hours=5), True),
        ("open", timedelta(minutes=1), False),
        ("resolved", -timedelta(hours=5), False),
        ("approved", -timedelta(hours=5), False),
        ("rejected", -timedelta(hours=5), False),
    ],
)
def test_overdue_is_a_boolean_past_due_and_not_closed(
    manager: Any, status: str, due_in: timedelta, overdue: bool
) -> None:
    kind = "approval" if status in {"approved", "rejected"} else "senior_manager"
    escalation = escalation_new(kind=kind, status=status, due_in=due_in)

    assert ok(manager.get(url(escalation)))["overdue"] is overdue


def test_an_escalation_opened_by_an_offer_set_names_it(demo_pack: None, manager: Any) -> None:
    offer_set = manager.post(
        OFFER_SETS,
        {
            "customer": {"external_id": "C-9"},
            "incident": {"category": "missed_appointment", "severity": 5, "correctable": False},
        },
        format="json",
    ).json()

    data = ok(manager.get(url(offer_set["escalation"]["id"])))

    assert (data["offer_set"], data["incident"], data["customer"]) == (
        offer_set["id"],
        offer_set["incident"]["id"],
        "C-9",
    )
    assert {k: data[k] for k in ("id", "kind", "status", "reason", "due_at")} == offer_set["escalation"]


# --- Acknowledge and resolve ---------------------------------------------------------------------------


def test_acknowledge_assigns_it_and_acknowledging_again_changes_nothing(manager: Any, client_for: Any) -> None:
    escalation = escalation_new()

    first = ok(act(manager, escalation, "acknowledge"))
    again = ok(act(client_for("manager", "manager-2"), escalation, "acknowledge"))

    assert (first["status"], first["assigned_to"]) == ("acknowledged", "manager-1")
    assert abs(parse(first["acknowledged_at"]) - timezone.now()) < timedelta(minutes=1)
    assert again == first


def test_resolve_closes_it_with_the_resolution(manager: Any) -> None:
    escalation = escalation_new(due_in=-timedelta(hours=1))

    data = ok(act(manager, escalation, "resolve", {"resolution": "Called her; refunded the call-out fee"}))

    assert (data["status"], data["resolution"], data["assigned_to"]) == (
        "resolved",
        "Called her; refunded the call-out fee",
        "manager-1",
    )
    assert data["resolved_at"] is not None
    assert data["overdue"] is False
    escalation.refresh_from_db()
    assert escalation.status == "resolved"


def test_an_acknowledged_escalation_can_be_resolved(manager: Any) -> None:
    escalation = escalation_new()
    ok(act(manager, escalation, "acknowledge"))

    assert ok(act(manager, escalation, "resolve"))["status"] == "resolved"


@pytest.mark.parametrize("data", [{}, {"resolution": ""}, {"resolution": None}, {"resolution": "x" * 4001}])
def test_resolve_without_a_resolution_is_400_and_changes_nothing(manager: Any, data: dict) -> None:
    escalation = escalation_new()

    response = act(manager, escalation, "resolve", data)

    assert response.status_code == 400
    assert "resolution" in response.json()
    escalation.refresh_from_db()
    assert escalation.status == "open"


@pytest.mark.parametrize("action", ["resolve", "acknowledge"])
def test_acting_on_a_resolved_escalation_is_409(manager: Any, action: str) -> None:
    escalation = escalation_new()
    resolved = ok(act(manager, escalation, "resolve", {"resolution": "done"}))

    response = act(manager, escalation, action)

    assert response.status_code == 409
    assert response.json()["code"] == "escalation_closed"
    assert ok(manager.get(url(escalation))) == resolved


def test_an_approval_cannot_be_resolved(manager: Any) -> None:
    escalation = escalation_new(kind="approval")

    response = act(manager, escalation, "resolve")

    assert response.status_code == 409
    assert response.json()["code"] == "approval_required"
    escalation.refresh_from_db()
    assert escalation.status == "open"


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_approve_or_reject_on_a_senior_manager_escalation_is_409(manager: Any, action: str) -> None:
    escalation = escalation_new()

    response = act(manager, escalation, action)

    assert response.status_code == 409
    assert response.json()["code"] == "not_an_approval"
    escalation.refresh_from_db()
    assert escalation.status == "open"


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_an_approval_with_no_outcome_waiting_is_409(manager: Any, action: str) -> None:
    escalation = escalation_new(kind="approval")

    response = act(manager, escalation, action)

    assert response.status_code == 409
    assert response.json()["code"] == "escalation_closed"


# --- Approve and reject an agent's choice -----------------------------------------------------------------


@pytest.fixture
def approval(db: None, client_for: Any, django_capture_on_commit_callbacks: Any) -> Escalation:
    """An agent chose a 150.00 credit (above the 100.00 limit): an open approval with the outcome waiting."""
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    policy = PolicyFactory(categories=[category])
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("150.00"))
    agent = client_for("agent", "agent-1")
    offer_set = agent.post(
        OFFER_SETS,
        {"customer": {"external_id": "C-1"}, "incident": {"category": "late_delivery", "severity": 3}},
        format="json",
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(f"{OFFER_SETS}{offer_set['id']}/outcome/", {"choice": "a"}, format="json")
    assert response.json()["outcome_status"] == "awaiting_approval"
    return Escalation.objects.get(kind="approval")


@pytest.mark.parametrize(("action", "status"), [("approve", "approved"), ("reject", "rejected")])
def test_approve_or_reject_again_changes_nothing(
    approval: Escalation, manager: Any, action: str, status: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = ok(act(manager, approval, action))

    again = ok(act(manager, approval, action))

    assert first["status"] == status
    assert again == first


@pytest.mark.parametrize(("first", "then"), [("approve", "reject"), ("reject", "approve")])
def test_the_opposite_decision_afterwards_is_409(
    approval: Escalation, manager: Any, first: str, then: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        decided = ok(act(manager, approval, first))

    response = act(manager, approval, then)

    assert response.status_code == 409
    assert response.json()["code"] == "escalation_closed"
    assert ok(manager.get(url(approval))) == decided
    submission = OutcomeSubmission.objects.get()
    assert submission.status == ("recorded" if first == "approve" else "rejected")


def test_an_acknowledged_approval_may_still_be_approved(
    approval: Escalation, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ok(act(manager, approval, "acknowledge"))

    with django_capture_on_commit_callbacks(execute=True):
        data = ok(act(manager, approval, "approve"))

    assert data["status"] == "approved"
    assert OutcomeSubmission.objects.get().status == "recorded"


# --- Permissions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "analyst"])
def test_agents_and_analysts_are_403_everywhere(client_for: Any, role: str) -> None:
    escalation = escalation_new()
    client = client_for(role)

    responses = [client.get(URL), client.get(url(escalation))] + [act(client, escalation, a) for a in ACTIONS]

    assert [r.status_code for r in responses] == [403] * 6
    assert all(r.json()["code"] == "permission_denied" for r in responses)
    escalation.refresh_from_db()
    assert escalation.status == "open"


@pytest.mark.parametrize("credentials", [{}, {"HTTP_AUTHORIZATION": "Token nope"}])
def test_no_or_a_bad_token_is_401_everywhere(api_client: Any, credentials: dict) -> None:
    escalation = escalation_new()
    api_client.credentials(**credentials)

    responses = [api_client.get(URL), api_client.get(url(escalation))]
    responses += [act(api_client, escalation, a) for a in ACTIONS]

    assert [r.status_code for r in responses] == [401] * 6
    assert all(set(r.json()) == {"detail", "code"} for r in responses)


@pytest.mark.parametrize("action", [None, *ACTIONS])
def test_an_unknown_id_is_404(manager: Any, action: str | None) -> None:
    escalation_new()

    response = manager.get(url(999_999)) if action is None else act(manager, 999_999, action)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_non_numeric_id_is_a_json_404(manager: Any) -> None:
    response = manager.get(f"{URL}abc/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


# --- Notifications ---------------------------------------------------------------------------------


@pytest.fixture
def managers(make_user: Any) -> list[str]:
    """Two managers with e-mail addresses; one without, one inactive, and an agent with one, all left out."""
    manager_with_email(make_user, "boss-b", "b@example.com")
    manager_with_email(make_user, "boss-a", "a@example.com")
    manager_with_email(make_user, "boss-none", "")
    manager_with_email(make_user, "boss-gone", "gone@example.com", active=False)
    agent, _ = make_user("agent-mail", "agent")
    agent.email = "agent@example.com"
    agent.save()
    return ["a@example.com", "b@example.com"]


def _open_by_policy(client: Any) -> dict[str, Any]:
    response = client.post(
        OFFER_SETS,
        {
            "customer": {"external_id": "C-7", "name": "Ada"},
            "incident": {
                "category": "missed_appointment",
                "severity": 5,
                "correctable": False,
                "external_ref": "T-7",
            },
        },
        format="json",
    )
    assert response.status_code == 201
    return response.json()


def test_opening_an_escalation_emails_the_managers_group_after_commit(
    demo_pack: None, managers: list[str], client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = client_for("agent", "agent-1")

    with django_capture_on_commit_callbacks() as callbacks:
        offer_set = _open_by_policy(agent)
    assert mail.outbox == []  # nothing before the commit

    for callback in callbacks:
        callback()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    escalation = Escalation.objects.get()
    assert sorted(message.to) == managers
    assert f"#{escalation.pk}" in message.subject
    assert "missed appointment" in message.subject
    assert "OVERDUE" not in message.subject
    assert escalation.reason in message.body
    assert f"/api/v1/escalations/{escalation.pk}/" in message.body
    assert escalation.notified_at is not None
    assert offer_set["escalation"]["id"] == escalation.pk


def test_the_same_ticket_again_reuses_the_escalation_and_emails_nobody(
    demo_pack: None, managers: list[str], client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = client_for("agent", "agent-1")
    with django_capture_on_commit_callbacks(execute=True):
        first = _open_by_policy(agent)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        second = _open_by_policy(agent)

    assert second["escalation"]["id"] == first["escalation"]["id"]
    assert mail.outbox == []


def test_an_approval_is_emailed_when_the_agent_asks_for_it(
    db: None, managers: list[str], client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    policy = PolicyFactory(categories=[category])
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("150.00"))
    agent = client_for("agent", "agent-1")
    offer_set = agent.post(
        OFFER_SETS,
        {"customer": {"external_id": "C-1"}, "incident": {"category": "late_delivery", "severity": 3}},
        format="json",
    ).json()

    with django_capture_on_commit_callbacks(execute=True):
        agent.post(f"{OFFER_SETS}{offer_set['id']}/outcome/", {"choice": "a"}, format="json")

    approval = Escalation.objects.get(kind="approval")
    assert [sorted(m.to) for m in mail.outbox] == [managers]
    assert f"#{approval.pk}" in mail.outbox[0].subject


def test_no_manager_with_an_email_sends_nothing_and_does_not_fail(make_user: Any) -> None:
    make_user("boss", "manager")
    escalation = escalation_new()

    assert escalation_notify(escalation_id=escalation.pk) is False
    assert mail.outbox == []


def test_a_closed_escalation_is_not_announced(managers: list[str]) -> None:
    escalation = escalation_new(status="resolved")

    assert escalation_notify(escalation_id=escalation.pk) is False
    assert mail.outbox == []


def test_flag_overdue_tells_the_managers_once_per_escalation(
    managers: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    late = escalation_new(due_in=-timedelta(minutes=5))
    later = escalation_new(status="acknowledged", due_in=-timedelta(hours=2))
    escalation_new(due_in=timedelta(minutes=5))  # not yet due
    escalation_new(status="resolved", due_in=-timedelta(hours=2))  # closed

    with django_capture_on_commit_callbacks(execute=True):
        flagged = escalations_flag_overdue()

    assert flagged == 2
    assert len(mail.outbox) == 2
    assert all(m.subject.startswith("OVERDUE: ") for m in mail.outbox)
    assert all(sorted(m.to) == managers for m in mail.outbox)
    assert {m.subject.split("#")[1].split(":")[0] for m in mail.outbox} == {str(late.pk), str(later.pk)}
    assert "past its due time" in mail.outbox[0].body

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        again = escalations_flag_overdue(now=timezone.now() + timedelta(minutes=1))

    assert again == 0
    assert mail.outbox == []


def test_flag_overdue_uses_the_time_it_is_given(managers: list[str], django_capture_on_commit_callbacks: Any) -> None:
    soon = escalation_new(due_in=timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert escalations_flag_overdue(now=timezone.now()) == 0
        assert escalations_flag_overdue(now=timezone.now() + timedelta(hours=2)) == 1

    soon.refresh_from_db()
    assert soon.overdue_notified_at is not None
    assert len(mail.outbox) == 1
