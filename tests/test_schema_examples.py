"""The OpenAPI schema's request examples: every write that takes a body has at least one, and each of them,
sent as the schema gives it (by a user of the role the operation is for, with the demo loaded as
``manage.py load_demo`` loads it), is answered with a 2xx. Swagger's "Try it out" starts from an operation's
first example, so that is the one the first run meets: a late delivery for a gold customer."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from compensation import schema_examples as examples
from compensation.models import FollowUp
from compensation.services.follow_ups import feedback_token
from compensation.services.outcomes import outcome_record

WRITE_METHODS = ("post", "put", "patch", "delete")

OFFER_SETS = "POST /api/v1/offer-sets/"
OUTCOME = "POST /api/v1/offer-sets/{offer_set_id}/outcome/"
RESOLVE = "POST /api/v1/escalations/{escalation_id}/resolve/"
REJECT = "POST /api/v1/escalations/{escalation_id}/reject/"
FEEDBACK = "POST /api/v1/feedback/{token}/"
CUSTOMER_PUT = "PUT /api/v1/customers/{external_id}/"
CUSTOMERS_BULK = "POST /api/v1/customers/bulk/"
SIMULATIONS = "POST /api/v1/simulations/"
EVENTS = "POST /api/v1/events/"
EVENT_CUSTOMERS = "POST /api/v1/events/{event_id}/customers/"

# Who sends each write (README, "Roles"); None: no login (the feedback link is the key).
ROLE = {
    OFFER_SETS: "agent",
    OUTCOME: "agent",
    RESOLVE: "manager",
    REJECT: "manager",
    FEEDBACK: None,
    CUSTOMER_PUT: "integration",
    CUSTOMERS_BULK: "integration",
    SIMULATIONS: "manager",
    EVENTS: "manager",
    EVENT_CUSTOMERS: "manager",
}


def _schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _writes_with_a_body(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in WRITE_METHODS and "requestBody" in operation
    }


def _request_examples(operation: dict[str, Any]) -> dict[str, Any]:
    return operation["requestBody"]["content"].get("application/json", {}).get("examples", {})


SCHEMA = _schema()
CASES = [
    pytest.param(name, key, example["value"], id=f"{name} [{key}]")
    for name, operation in _writes_with_a_body(SCHEMA).items()
    for key, example in _request_examples(operation).items()
]


# --- The schema carries them ------------------------------------------------------------------------


def test_every_write_with_a_body_has_a_request_example(client: Any) -> None:
    served = client.get("/api/schema/?format=json")
    assert served.status_code == 200
    writes = _writes_with_a_body(served.json())

    assert set(writes) == set(ROLE), "a write with a body this test does not know: give it examples and a role"
    missing = [name for name, operation in writes.items() if not _request_examples(operation)]
    assert missing == []
    # The examples are the request's only: no response carries them.
    for operation in writes.values():
        for response in operation["responses"].values():
            for content in response.get("content", {}).values():
                assert "examples" not in content


def test_swagger_starts_from_a_late_delivery_for_a_gold_customer() -> None:
    """Swagger UI fills "Try it out" with the first example of the JSON body."""
    first = next(iter(_request_examples(_writes_with_a_body(SCHEMA)[OFFER_SETS]).values()))

    assert first["summary"] == "A late delivery for a gold customer"
    assert first["value"]["incident"]["category"] == "late_delivery"
    assert first["value"]["customer"]["tier"] == "gold"


def test_the_customer_url_has_an_example_id() -> None:
    """The PUT's path too, so "Try it out" needs nothing typed in."""
    operation = _writes_with_a_body(SCHEMA)[CUSTOMER_PUT]
    (parameter,) = [p for p in operation["parameters"] if p["name"] == "external_id"]

    assert [example["value"] for example in parameter["examples"].values()] == ["C-1042"]


# --- Each works as given ----------------------------------------------------------------------------


class World:
    """The demo loaded, one user per role, and the objects a path names, made through the API."""

    def __init__(self, make_user: Callable[[str, str], tuple[Any, str]]) -> None:
        call_command("load_demo", "--no-history", stdout=io.StringIO(), stderr=io.StringIO())
        self.clients: dict[str | None, APIClient] = {None: APIClient()}
        for role in ("agent", "manager", "integration"):
            _, key = make_user(f"examples-{role}", role)
            self.clients[role] = APIClient()
            self.clients[role].credentials(HTTP_AUTHORIZATION=f"Token {key}")

    def offer_set(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.clients["agent"].post("/api/v1/offer-sets/", body, format="json")
        assert response.status_code == 201, response.content
        return response.json()

    def recorded(self, body: dict[str, Any], choice: str) -> dict[str, Any]:
        """An offer set with the customer's choice recorded (the worker's job, done here), as it then reads."""
        made = self.offer_set(body)
        agent = self.clients["agent"]
        response = agent.post(f"/api/v1/offer-sets/{made['id']}/outcome/", {"choice": choice}, format="json")
        assert response.status_code == 202, response.content
        outcome_record(submission_id=response.json()["submission_id"])
        return agent.get(f"/api/v1/offer-sets/{made['id']}/").json()

    def path_parameters(self, name: str) -> dict[str, Any]:
        if name == OUTCOME:
            return {"offer_set_id": self.offer_set(examples.OFFER_SET_LATE_DELIVERY_GOLD)["id"]}
        if name == RESOLVE:  # severity 5 and nothing to correct: the demo opens a senior-manager escalation
            return {"escalation_id": self.offer_set(examples.OFFER_SET_SEVERE_DAMAGE)["escalation"]["id"]}
        if name == REJECT:  # its full refund is more than an agent may give: it waits for a manager
            (remedy,) = self.recorded(examples.OFFER_SET_SEVERE_DAMAGE, "c")["outcome"]["remedy"]
            assert remedy["status"] == "awaiting_approval", remedy
            return {"escalation_id": remedy["approval"]}
        if name == FEEDBACK:
            made = self.recorded(examples.OFFER_SET_LATE_DELIVERY_GOLD, "a")
            check = FollowUp.objects.get(kind=FollowUp.Kind.SATISFACTION_CHECK, outcome__offer_set_id=made["id"])
            return {"token": feedback_token(check)}
        if name == CUSTOMER_PUT:  # the path's own example
            (parameter,) = [p for p in _writes_with_a_body(SCHEMA)[name]["parameters"] if p["name"] == "external_id"]
            return {"external_id": next(iter(parameter["examples"].values()))["value"]}
        if name == EVENT_CUSTOMERS:  # an event made from the create's own example
            response = self.clients["manager"].post("/api/v1/events/", examples.EVENT_WAREHOUSE_MISSED, format="json")
            assert response.status_code == 202, response.content
            return {"event_id": response.json()["id"]}
        return {}


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "key", "body"), CASES)
def test_each_request_example_works_as_given(name: str, key: str, body: Any, make_user: Any) -> None:
    world = World(make_user)
    method, path = name.split(" ")
    url = path.format(**world.path_parameters(name))

    response = world.clients[ROLE[name]].generic(method, url, data=json.dumps(body), content_type="application/json")

    assert 200 <= response.status_code < 300, (name, key, response.status_code, response.content)


def test_every_example_is_sent() -> None:
    """The parametrized test above covers each write, every one of its examples."""
    names = {case.values[0] for case in CASES}
    assert names == set(ROLE)
    assert len(CASES) >= len(ROLE)
