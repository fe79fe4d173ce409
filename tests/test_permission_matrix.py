"""The permission matrix (README, "Roles"): every endpoint as every kind of caller,
one table. No credentials or a bad token: 401; the wrong role: 403; another agent's offer set, or another
manager's simulation: 404. The integration may call /api/v1/me/ and the customer endpoints, nothing else.

Each case builds its own data (an offer set the agent created through the API, an open senior-manager
escalation, an approval escalation waiting for a manager), so a state-changing call never sees the
effects of another case."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from django.utils import timezone

from compensation.models import OutcomeSubmission, Simulation
from compensation.services.events import event_create
from compensation.services.users import user_token_issue
from policies.choices import OfferKind
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "bad_token", "agent", "other_agent", "manager", "analyst", "integration")
OFFER_SETS = "/api/v1/offer-sets/"
ESCALATIONS = "/api/v1/escalations/"
CUSTOMERS = "/api/v1/customers/"
SIMULATIONS = "/api/v1/simulations/"
EVENTS = "/api/v1/events/"


class Row(NamedTuple):
    method: str
    path: str  # placeholders: {offer_set}, {escalation} (senior manager), {approval}, {token}, {customer},
    # {simulation}, {event} (an event still processing)
    body: dict[str, Any] | None
    expected: tuple[int, ...]  # in the order of ROLES


# The DRF error code each refusal carries.
ERROR_CODES = {
    **{(401, role): "authentication_failed" if role == "bad_token" else "not_authenticated" for role in ROLES},
    **{(403, role): "permission_denied" for role in ROLES},
    **{(404, role): "not_found" for role in ROLES},
}

NEW_SET = {"customer": {"external_id": "C-NEW"}, "incident": {"category": "late_delivery", "severity": 3}}
NEW_EVENT = {"name": "Storm", "category": "late_delivery", "severity": 3, "customers": [{"external_id": "C-EV-1"}]}
MORE_CUSTOMERS = {"customers": [{"external_id": "C-EV-2"}]}

# fmt: off
MATRIX = [
    #                                                                 anon  bad  agent other  mgr analyst integ.
    Row("GET",  "/api/v1/me/", None,                                  (401, 401, 200,  200,  200, 200,    200)),
    Row("GET",  OFFER_SETS, None,                                     (401, 401, 200,  200,  200, 403,    403)),
    Row("POST", OFFER_SETS, NEW_SET,                                  (401, 401, 201,  201,  201, 403,    403)),
    Row("GET",  OFFER_SETS + "{offer_set}/", None,                    (401, 401, 200,  404,  200, 403,    403)),
    Row("POST", OFFER_SETS + "{offer_set}/outcome/", {"choice": "a"}, (401, 401, 202,  404,  202, 403,    403)),
    Row("GET",  ESCALATIONS, None,                                    (401, 401, 403,  403,  200, 403,    403)),
    Row("GET",  ESCALATIONS + "{escalation}/", None,                  (401, 401, 403,  403,  200, 403,    403)),
    Row("POST", ESCALATIONS + "{escalation}/acknowledge/", None,      (401, 401, 403,  403,  200, 403,    403)),
    Row("POST", ESCALATIONS + "{escalation}/resolve/", {"resolution": "Called the customer"},
                                                                      (401, 401, 403,  403,  200, 403,    403)),
    Row("POST", ESCALATIONS + "{approval}/approve/", None,            (401, 401, 403,  403,  200, 403,    403)),
    Row("POST", ESCALATIONS + "{approval}/reject/", {"reason": "Too generous"},
                                                                      (401, 401, 403,  403,  200, 403,    403)),
    Row("GET",  "/api/v1/outcomes/", None,                            (401, 401, 403,  403,  200, 200,    403)),
    Row("GET",  "/api/v1/outcomes/?format=csv", None,                 (401, 401, 403,  403,  200, 200,    403)),
    Row("GET",  "/api/v1/reports/summary/", None,                     (401, 401, 403,  403,  200, 200,    403)),
    Row("GET",  "/api/v1/reports/policies/", None,                    (401, 401, 403,  403,  200, 200,    403)),
    Row("GET",  "/api/v1/reports/offer-kinds/", None,                 (401, 401, 403,  403,  200, 200,    403)),
    Row("GET",  "/api/v1/reports/categories/", None,                  (401, 401, 403,  403,  200, 200,    403)),
    Row("GET",  "/api/v1/reports/agents/", None,                      (401, 401, 403,  403,  200, 403,    403)),
    Row("GET",  "/api/v1/reports/learning/", None,                    (401, 401, 403,  403,  200, 200,    403)),
    Row("GET",  CUSTOMERS + "{customer}/", None,                      (401, 401, 403,  403,  200, 403,    200)),
    Row("GET",  CUSTOMERS + "C-nobody/", None,                        (401, 401, 403,  403,  404, 403,    404)),
    Row("PUT",  CUSTOMERS + "{customer}/", {"tier": "gold"},          (401, 401, 403,  403,  403, 403,    200)),
    Row("PUT",  CUSTOMERS + "C-brand-new/", {"tier": "gold"},         (401, 401, 403,  403,  403, 403,    201)),
    Row("POST", CUSTOMERS + "bulk/", {"customers": [{"external_id": "C-bulk"}]},
                                                                      (401, 401, 403,  403,  403, 403,    200)),
    Row("POST", "/api/v1/feedback/{token}/", {"satisfaction": 5},     (404, 404, 404,  404,  404, 404,    404)),
    Row("POST", SIMULATIONS, {"pack": {"policies": []}, "days": 7},   (401, 401, 403,  403,  202, 403,    403)),
    Row("GET",  SIMULATIONS + "{simulation}/", None,                  (401, 401, 403,  403,  200, 403,    403)),
    Row("GET",  SIMULATIONS + "{other_simulation}/", None,            (401, 401, 403,  403,  404, 403,    403)),
    Row("POST", EVENTS, NEW_EVENT,                                    (401, 401, 403,  403,  202, 403,    403)),
    Row("GET",  EVENTS, None,                                         (401, 401, 403,  403,  200, 403,    403)),
    Row("GET",  EVENTS + "{event}/", None,                            (401, 401, 403,  403,  200, 403,    403)),
    Row("GET",  EVENTS + "999999/", None,                             (401, 401, 403,  403,  404, 403,    403)),
    Row("POST", EVENTS + "{event}/customers/", MORE_CUSTOMERS,        (401, 401, 403,  403,  202, 403,    403)),
    Row("POST", EVENTS + "{event}/cancel/", None,                     (401, 401, 403,  403,  200, 403,    403)),
    Row("GET",  "/healthz", None,                                     (200, 200, 200,  200,  200, 200,    200)),
    Row("GET",  "/readyz", None,                                      (200, 200, 200,  200,  200, 200,    200)),
    Row("GET",  "/api/schema/", None,                                 (200, 200, 200,  200,  200, 200,    200)),
    Row("GET",  "/api/docs/", None,                                   (200, 200, 200,  200,  200, 200,    200)),
    Row("GET",  "/api/v1/", None,                                     (200, 200, 200,  200,  200, 200,    200)),
    Row("GET",  "/api/", None,                                        (302, 302, 302,  302,  302, 302,    302)),
]
# fmt: on


def case_id(row: Row, role: str) -> str:
    name = row.path.removeprefix("/api/v1/").removeprefix("/") or "api/v1"  # the API's root: "api/v1"
    for placeholder in (
        "{offer_set}",
        "{escalation}",
        "{approval}",
        "{token}",
        "{customer}",
        "{simulation}",
        "{event}",
    ):
        name = name.replace(placeholder, "{id}")
    return f"{row.method} {name.rstrip('/')} as {role}"


CASES = [
    pytest.param(row, role, row.expected[i], id=case_id(row, role)) for row in MATRIX for i, role in enumerate(ROLES)
]


def created_set(agent: Any, category: str) -> dict[str, Any]:
    body = {"customer": {"external_id": f"C-{category}"}, "incident": {"category": category, "severity": 3}}
    response = agent.post(OFFER_SETS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def scene(agent: Any, path: str) -> str:
    """Builds what the path needs, as the agent "agent-1", and returns the path filled in."""
    # late_delivery: a 150.00 credit, above the agents' 100.00 limit, so an agent's choice waits for a manager.
    late = CategoryFactory(slug="late_delivery", name="late delivery")
    policy = PolicyFactory(name="Goodwill", categories=[late])
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("150.00"))
    # damaged_item: a policy that escalates to a senior manager automatically.
    damaged = CategoryFactory(slug="damaged_item", name="damaged item")
    escalating = PolicyFactory(name="Escalate", categories=[damaged], escalate=True)
    OfferTemplateFactory(policy=escalating, kind=OfferKind.FIXED_CREDIT, value=Decimal("10.00"))

    values = {"token": "not-a-valid-feedback-link"}
    if "simulation}" in path:
        # Managers' own simulations: manager-1's (the manager role's user below) and another manager's.
        for placeholder, username in (("simulation", "manager-1"), ("other_simulation", "manager-2")):
            owner, _token, _created = user_token_issue(username=username, role="manager")
            values[placeholder] = Simulation.objects.create(
                created_by=owner, pack={}, days=30, created_at=timezone.now(), status="done"
            ).pk
    if "{event}" in path:  # another manager's: events are the company's, every manager sees them
        owner, _token, _created = user_token_issue(username="manager-2", role="manager")
        values["event"] = event_create(
            user=owner,
            data={
                "name": "Storm",
                "category": late,
                "severity": 3,
                "fault": "company",
                "correctable": True,
                "description": "",
                "customers": [{"external_id": "C-EV-0"}],
            },
        ).event.pk
    if "{customer}" in path:
        values["customer"] = created_set(agent, "damaged_item")["customer"]["external_id"]
    if "{offer_set}" in path:
        values["offer_set"] = created_set(agent, "late_delivery")["id"]
    if "{escalation}" in path:
        escalation = created_set(agent, "damaged_item")["escalation"]
        assert (escalation["kind"], escalation["status"]) == ("senior_manager", "open"), escalation
        values["escalation"] = escalation["id"]
    if "{approval}" in path:
        offer_set = created_set(agent, "late_delivery")
        response = agent.post(f"{OFFER_SETS}{offer_set['id']}/outcome/", {"choice": "a"}, format="json")
        assert response.status_code == 202, response.content
        assert response.json()["outcome_status"] == "awaiting_approval"
        values["approval"] = OutcomeSubmission.objects.get(pk=response.json()["submission_id"]).approval_id
    return path.format(**values)


@pytest.mark.parametrize(("row", "role", "expected"), CASES)
def test_permission_matrix(row: Row, role: str, expected: int, client_for: Any, api_client: Any) -> None:
    agent = client_for("agent", "agent-1")
    path = scene(agent, row.path)
    if role == "anonymous":
        client = api_client
    elif role == "bad_token":
        client = api_client
        client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    elif role == "agent":
        client = agent
    elif role == "other_agent":
        client = client_for("agent", "agent-2")
    else:
        client = client_for(role, f"{role}-1")

    if row.method == "GET":
        response = client.get(path)
    else:
        response = getattr(client, row.method.lower())(path, row.body, format="json")

    content = b"" if response.streaming else response.content
    assert response.status_code == expected, content[:500]
    if expected in (401, 403, 404):
        assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
        body = response.json()
        assert {"detail", "code"} <= set(body), body
        assert body["code"] == ERROR_CODES[expected, role], body
    elif "format=csv" in path:
        assert response["Content-Type"].startswith("text/csv")
