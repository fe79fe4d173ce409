"""Schema-driven fuzzing: schemathesis generates requests from ``/api/schema/`` (valid and
invalid ones, in its coverage and fuzzing phases) for every operation, sends them through the
WSGI application with a valid token of each role, and checks each answer: never a 5xx, a status
code the schema declares, the declared content type, and a body that matches the declared schema.

One test per operation and role (``test_fuzz[<operation>][<role>]``). Each first builds a small
world through the API: offer sets of the demo pack, senior-manager and approval escalations, and
recorded outcomes with their feedback links. It then aims the generated requests at that world:
four requests in five, the values the API looks up (an offer set or escalation id, a feedback
token, a category slug, a policy id, ...) are replaced by ones that exist, so the request gets
past the 404 (or the "no such category" 400) to the code behind it; the fifth goes out as
generated. A value schemathesis generated to be invalid is never replaced. Each request runs in
a savepoint rolled back after it, so every request finds the world as it was built (an
escalation still open, a feedback link still unused).

Each test counts its own requests and checks them when it ends (the ``world`` fixture's
teardown): at least ``MINIMUM_REQUESTS_PER_TEST`` requests and no 401 (the token is valid); for
an operation the role may call, at least a third of the requests meant to be valid answered
with a 2xx; for one it may not, no 2xx at all, only 403s (and 404s where the URL names nothing, 415s for a body
that is not JSON).
``test_the_fuzzing_covers_every_operation_with_at_least_1000_requests`` checks that the tests
cover every operation of the schema and that their minimums add up to ``MINIMUM_REQUESTS``.
``-rP`` shows each test's statuses.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 25  # the fuzzing phase's; the coverage phase adds cases of its own
MINIMUM_REQUESTS_PER_TEST = 25
MINIMUM_REQUESTS = 1000
VALID_ANSWERED_2XX_AT_LEAST = Fraction(1, 3)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
ROLES = ("agent", "manager", "analyst", "integration")

# What each role may call (README, "Roles"; the table of tests/test_permission_matrix.py).
EVERYONE = {"GET /api/v1/me/", "POST /api/v1/feedback/{token}/"}  # the feedback link needs no login
OFFER_SETS = {
    "GET /api/v1/offer-sets/",
    "POST /api/v1/offer-sets/",
    "GET /api/v1/offer-sets/{offer_set_id}/",
    "POST /api/v1/offer-sets/{offer_set_id}/outcome/",
}
ESCALATIONS = {
    "GET /api/v1/escalations/",
    "GET /api/v1/escalations/{escalation_id}/",
    "POST /api/v1/escalations/{escalation_id}/acknowledge/",
    "POST /api/v1/escalations/{escalation_id}/resolve/",
    "POST /api/v1/escalations/{escalation_id}/approve/",
    "POST /api/v1/escalations/{escalation_id}/reject/",
}
READING = {
    "GET /api/v1/outcomes/",
    "GET /api/v1/reports/summary/",
    "GET /api/v1/reports/policies/",
    "GET /api/v1/reports/offer-kinds/",
    "GET /api/v1/reports/categories/",
    "GET /api/v1/reports/learning/",
}
AGENT_REPORT = {"GET /api/v1/reports/agents/"}
CUSTOMER_READ = {"GET /api/v1/customers/{external_id}/"}
CUSTOMER_WRITE = {"PUT /api/v1/customers/{external_id}/", "POST /api/v1/customers/bulk/"}
SIMULATIONS = {"POST /api/v1/simulations/", "GET /api/v1/simulations/{simulation_id}/"}
EVENT_CREATE = "POST /api/v1/events/"
EVENT_CUSTOMERS = "POST /api/v1/events/{event_id}/customers/"
EVENT_CANCEL = "POST /api/v1/events/{event_id}/cancel/"
EVENTS = {EVENT_CREATE, "GET /api/v1/events/", "GET /api/v1/events/{event_id}/", EVENT_CUSTOMERS, EVENT_CANCEL}
OUTCOME = "POST /api/v1/offer-sets/{offer_set_id}/outcome/"
APPROVE = "POST /api/v1/escalations/{escalation_id}/approve/"
REJECT = "POST /api/v1/escalations/{escalation_id}/reject/"
RESOLVE = "POST /api/v1/escalations/{escalation_id}/resolve/"
ALLOWED = {
    "agent": EVERYONE | OFFER_SETS,
    "manager": EVERYONE | OFFER_SETS | ESCALATIONS | READING | AGENT_REPORT | CUSTOMER_READ | SIMULATIONS | EVENTS,
    "analyst": EVERYONE | READING,
    "integration": EVERYONE | CUSTOMER_READ | CUSTOMER_WRITE,
}
OPERATIONS = (
    EVERYONE | OFFER_SETS | ESCALATIONS | READING | AGENT_REPORT | CUSTOMER_READ | CUSTOMER_WRITE | SIMULATIONS | EVENTS
)

PATH, QUERY, HEADER, BODY = (
    ParameterLocation.PATH,
    ParameterLocation.QUERY,
    ParameterLocation.HEADER,
    ParameterLocation.BODY,
)
BODY_FIELDS = (
    "choice",
    "incident.category",
    "incident.currency",
    "incident.occurred_at",
    "customer.lifetime_value",
    "lifetime_value",  # a customer's PUT
    "customers[].lifetime_value",  # each customer of a bulk POST (and of an event)
    "customers[].order_value",  # each customer of an event
    "category",  # an event's
    "occurred_at",  # an event's
)
BODY_OBJECTS = ("pack",)  # replaced whole: a simulation's draft pack


def _schema() -> Any:
    """The schema as the running application serves it (collection time: no database is needed)."""
    from recovery_project.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


schema = _schema()


# --- The world the requests aim at, and their count --------------------------------------------


@dataclass
class World:
    """The values that exist, and what this test's requests got."""

    role: str
    key: str
    real: dict[tuple[str | None, ParameterLocation, str], list[Any]]  # by operation (None: any), location, name
    operation: str | None = None
    statuses: dict[int, int] = field(default_factory=dict)
    format_refused: int = 0  # 400s for a ?format the endpoint does not offer, to a role it refuses
    valid: int = 0  # requests meant to be valid
    valid_2xx: int = 0
    failed: bool = False

    def aim(self, case: Any) -> Any:
        """The case to send. Four in five: a copy of the generated case with real values in place of the
        generated ones (those schemathesis did not mean to be invalid). The fifth goes out as generated.
        The dice are the generated case itself, so Hypothesis running a case again (to shrink a failure)
        sends the same request. A copy, because schemathesis hands the same case objects (its coverage
        phase's) to the test of every role, and a failure is best reported with what was sent."""
        seed = f"{case.method} {case.media_type} {case!r}"
        if _dice(seed) % 5 == 0:
            return case
        body = copy.deepcopy(case.body) if isinstance(case.body, dict | list) else case.body
        for dotted in BODY_FIELDS:
            *parents, name = dotted.split(".")
            for container in _containers(body, parents):
                if isinstance(container.get(name), str):
                    container[name] = self._real(case, seed, BODY, dotted, container[name])
        for name in BODY_OBJECTS:
            if isinstance(body, dict) and isinstance(body.get(name), dict):
                body[name] = copy.deepcopy(self._real(case, seed, BODY, name, body[name]))
        return case.operation.Case(
            method=case.method,
            path_parameters={name: self._real(case, seed, PATH, name, v) for name, v in case.path_parameters.items()},
            headers={name: self._real(case, seed, HEADER, name, v) for name, v in case.headers.items()},
            cookies=dict(case.cookies),
            # A list is a repeated parameter: left as generated.
            query={
                name: v if isinstance(v, list) else self._real(case, seed, QUERY, name, v)
                for name, v in case.query.items()
            },
            body=body,
            media_type=case.media_type,
            multipart_content_types=case.multipart_content_types,
            _meta=copy.deepcopy(case.meta),  # how it was generated, for schemathesis's failure reports
        )

    def _real(self, case: Any, seed: str, location: ParameterLocation, name: str, value: Any) -> Any:
        """A real value in place of a generated one, unless schemathesis meant that one to be invalid."""
        reals = self.real.get((case.operation.label, location, name)) or self.real.get((None, location, name))
        if not reals or _meant_invalid(case, location, name):
            return value
        real = reals[_dice(f"{name} {seed}") % len(reals)]
        return str(real) if isinstance(value, str) else real

    def count(self, case: Any, status: int) -> None:
        from compensation.http import is_json_media_type

        if status == 415:  # a body refused unread, before any permission check: only one that is not JSON
            sent = next((v for k, v in (case.headers or {}).items() if k.lower() == "content-type"), case.media_type)
            assert not is_json_media_type(sent or ""), sent
        self.operation = case.operation.label
        if status == 400 and self.operation not in ALLOWED[self.role]:
            # Refused before any permission check too: only a ?format the endpoint does not offer.
            asked = (case.query or {}).get("format")
            asked = asked[-1] if isinstance(asked, list) and asked else asked  # DRF reads the last one
            assert isinstance(asked, str), case.query
            assert asked not in {"json", "csv"}, case.query
            self.format_refused += 1
        else:
            self.statuses[status] = self.statuses.get(status, 0) + 1
        if _meant_valid(case):
            self.valid += 1
            self.valid_2xx += 200 <= status < 300

    def report(self) -> str:
        """One line for ``-rP``: what the test's requests got."""
        statuses = json.dumps(dict(sorted(self.statuses.items())))
        may = "may" if self.operation in ALLOWED[self.role] else "may not"
        return f"fuzz {self.role} {may} {self.operation}: {statuses} valid={self.valid} valid_2xx={self.valid_2xx}"

    def check(self) -> None:
        """What the test's requests, together, must show."""
        sent = sum(self.statuses.values()) + self.format_refused
        answers = f"{sent} requests, {self.valid} meant to be valid ({self.valid_2xx} got a 2xx): {self.statuses}"
        assert sent >= MINIMUM_REQUESTS_PER_TEST, answers
        assert 401 not in self.statuses, f"a valid token was refused: {answers}"
        if self.operation in ALLOWED[self.role]:
            assert self.valid_2xx >= self.valid * VALID_ANSWERED_2XX_AT_LEAST, answers
        else:
            # A refusal, whatever the request; a 404 when the URL names nothing (a malformed id)
            # and so no view, and no permission check, is reached; a 415 for a body that is not
            # JSON, refused before it is read, and a 400 for a ?format the endpoint does not offer,
            # refused before the permission check (counted apart: World.count), whoever sent them.
            assert set(self.statuses) <= {403, 404, 415}, answers
            assert 403 in self.statuses, answers


def _containers(body: Any, parents: list[str]) -> list[dict[str, Any]]:
    """The objects of ``body`` at the path ``parents``; ``name[]`` stands for each object of the list ``name``."""
    found = [body]
    for parent in parents:
        key, each = parent.removesuffix("[]"), parent.endswith("[]")
        found = [item.get(key) for item in found if isinstance(item, dict)]
        if each:
            found = [element for value in found if isinstance(value, list) for element in value]
    return [item for item in found if isinstance(item, dict)]


def _dice(seed: str) -> int:
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8])


def _meant_invalid(case: Any, location: ParameterLocation, name: str) -> bool:
    """Whether schemathesis generated this value to be invalid (then it goes out as it is): its part of
    the request is invalid and, when the case says which parameter it is about, it is this one. An
    invalid body is left whole."""
    meta = case.meta
    component = meta.components.get(location) if meta is not None else None
    if component is None or component.mode is not GenerationMode.NEGATIVE:
        return False
    data = meta.phase.data
    target, target_location = getattr(data, "parameter", None), getattr(data, "parameter_location", None)
    if location is not BODY and target is not None and target_location == location:
        return target == name
    return True


def _meant_valid(case: Any) -> bool:
    """A request schemathesis generated to be valid, and that could be: the form encodings the schema offers
    for every POST (drf-spectacular lists the parsers) cannot carry a nested object, an offer set's
    customer and incident or the bulk endpoint's customers, so such a request is not counted as valid."""
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return False
    body = case.body
    nested = isinstance(body, dict) and any(
        isinstance(value, dict) or (isinstance(value, list) and any(isinstance(item, dict) for item in value))
        for value in body.values()
    )
    return not (nested and case.media_type != "application/json")


def _world_build(role: str, make_user: Any) -> World:
    """Offer sets made through the API by the agent "fuzz-agent" (the agent role's own user, so that the
    agent may see them), escalations of both kinds, and recorded outcomes with their feedback links."""
    from django.conf import settings
    from django.utils import timezone
    from rest_framework.test import APIClient

    from compensation.models import Customer, Event, FollowUp, OutcomeSubmission, Simulation
    from compensation.services.events import event_cancel, event_create
    from compensation.services.follow_ups import feedback_token
    from compensation.services.outcomes import outcome_record
    from policies.choices import OfferKind
    from policies.models import Category, Policy
    from policies.serialization import policy_to_pack
    from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

    agent_user, agent_key = make_user("fuzz-agent", "agent")
    user, key = (agent_user, agent_key) if role == "agent" else make_user(f"fuzz-{role}", role)
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Token {agent_key}")

    def offer_set(n: int, **incident: Any) -> dict[str, Any]:
        body = {
            "customer": {"external_id": f"C-fuzz-{n}", "email": f"fuzz-{n}@example.com", "tier": "gold"},
            "incident": {"severity": 3, "order_value": "80.00", **incident},
        }
        response = agent.post("/api/v1/offer-sets/", body, format="json")
        assert response.status_code == 201, response.content
        return response.json()

    def choose(made: dict[str, Any], *, approval: bool) -> OutcomeSubmission:
        labels = [option["label"] for option in made["options"] if option["requires_approval"] is approval]
        assert labels, made["options"]
        response = agent.post(f"/api/v1/offer-sets/{made['id']}/outcome/", {"choice": labels[0]}, format="json")
        assert response.status_code == 202, response.content
        return OutcomeSubmission.objects.get(pk=response.json()["submission_id"])

    fresh = [offer_set(n, category=category) for n, category in enumerate(["late_delivery", "double_charge"])]
    # Severity 5 and not correctable: the demo pack opens a senior-manager escalation.
    severe = [offer_set(10 + n, category="damaged_item", severity=5, correctable=False) for n in range(2)]
    # The demo pack's options all fit an agent's approval limit: one that needs a manager's approval.
    category = CategoryFactory(slug="fuzz_approval", name="fuzz approval")
    policy = PolicyFactory(name="Fuzz approval", categories=[category], priority=99)
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("40.00"), requires_approval=True)
    waiting = [offer_set(20 + n, category="fuzz_approval") for n in range(2)]
    approvals = [choose(made, approval=True).approval_id for made in waiting]
    recorded = [offer_set(30 + n, category="late_delivery") for n in range(2)]
    for made in recorded:
        outcome_record(submission_id=choose(made, approval=False).pk)  # the worker's job, done here
    checks = FollowUp.objects.filter(
        kind=FollowUp.Kind.SATISFACTION_CHECK, outcome__offer_set_id__in=[made["id"] for made in recorded]
    )

    # Simulations of the role's user (a manager's can be read), one done and one failed; none running, so a
    # manager's POST may start one. Real drafts: the demo pack's first policy as it is, and a more generous copy.
    live = policy_to_pack(Policy.objects.order_by("pk").first())
    generous = copy.deepcopy(live)
    generous["offers"] = [{**offer, "value": "1.00"} if offer.get("value") else offer for offer in generous["offers"]]
    packs = [{}, {"policies": [live]}, {"policies": [generous]}]
    simulations = [
        Simulation.objects.create(
            created_by=user, pack=pack, days=30, created_at=timezone.now(), status="done", progress=1.0
        )
        for pack in packs[1:]
    ]
    for simulation in simulations:
        simulation_run_done(simulation)
    failed = Simulation.objects.create(
        created_by=user, pack={}, days=7, created_at=timezone.now(), status="failed", error="ZeroDivisionError: x"
    )

    # Events (every manager sees them all): two still processing, one sent in full, one cancelled. No task
    # runs: the test's transaction never commits.
    owner, _owner_key = make_user("fuzz-event-owner", "manager")
    late = Category.objects.get(slug="late_delivery")

    def event(n: int) -> int:
        data = {
            "name": f"Fuzz event {n}",
            "category": late,
            "severity": 3,
            "fault": "company",
            "correctable": True,
            "description": "",
            "customers": [{"external_id": f"C-event-{n}-{i}", "email": f"event-{n}-{i}@example.com"} for i in range(2)],
        }
        return event_create(user=owner, data=data).event.pk

    processing = [event(n) for n in range(2)]
    sent, cancelled = event(2), event(3)
    Event.objects.filter(pk=sent).update(status=Event.Status.SENT, finished_at=timezone.now())
    event_cancel(event_id=cancelled, user=owner)

    categories = list(Category.objects.values_list("slug", flat=True))
    senior = [made["escalation"]["id"] for made in severe]
    answered = [made["id"] for made in [*waiting, *recorded]]
    real: dict[tuple[str | None, ParameterLocation, str], list[Any]] = {
        (None, PATH, "offer_set_id"): [made["id"] for made in [*fresh, *severe]] + answered,
        (None, PATH, "escalation_id"): senior + approvals,
        (None, PATH, "token"): [feedback_token(follow_up) for follow_up in checks],
        (None, QUERY, "category"): categories,
        (None, QUERY, "policy"): list(Policy.objects.values_list("pk", flat=True)),
        (None, QUERY, "customer"): list(Customer.objects.values_list("external_id", flat=True)),
        (None, QUERY, "agent"): ["fuzz-agent"],
        (None, QUERY, "page"): [1],  # the only page of so few rows
        (None, BODY, "choice"): ["a", "b", "c", "declined"],
        (None, BODY, "incident.category"): categories,
        # Rules the schema does not state: the deployment's one currency, an incident of the last
        # INCIDENT_MAX_AGE_DAYS and not in the future, a lifetime value of at least 0, an
        # Idempotency-Key of 1 to 255 characters.
        (None, BODY, "incident.currency"): [settings.DEFAULT_CURRENCY],
        (None, BODY, "incident.occurred_at"): [(timezone.now() - timedelta(days=1)).isoformat()],
        (None, BODY, "customer.lifetime_value"): ["0.00", "5400.00"],
        (None, BODY, "lifetime_value"): ["0.00", "5400.00"],
        (None, BODY, "customers[].lifetime_value"): ["0.00", "5400.00"],
        (None, PATH, "external_id"): list(Customer.objects.values_list("external_id", flat=True)),
        (None, HEADER, "Idempotency-Key"): [f"fuzz-key-{n}" for n in range(3)],
        (None, PATH, "simulation_id"): [str(simulation.pk) for simulation in [*simulations, failed]],
        (None, BODY, "pack"): packs,
        # Four times in five a row the action is for; the fifth, one it refuses (409), so that answer is
        # fuzzed too: an answered offer set, an escalation of the other kind.
        (OUTCOME, PATH, "offer_set_id"): [made["id"] for made in [*fresh, *severe]] + answered[:1],
        (APPROVE, PATH, "escalation_id"): [*approvals, *approvals, *senior[:1]],
        (REJECT, PATH, "escalation_id"): [*approvals, *approvals, *senior[:1]],
        (RESOLVE, PATH, "escalation_id"): [*senior, *senior, *approvals[:1]],
        (None, PATH, "event_id"): [*processing, sent, cancelled],
        (None, QUERY, "event"): [*processing, sent, cancelled],
        (EVENT_CUSTOMERS, PATH, "event_id"): [*processing, *processing, cancelled],
        (EVENT_CANCEL, PATH, "event_id"): [*processing, *processing, sent],
        (EVENT_CREATE, BODY, "category"): categories,
        (EVENT_CREATE, BODY, "occurred_at"): [(timezone.now() - timedelta(days=1)).isoformat()],
        (None, BODY, "customers[].order_value"): ["0.00", "120.00"],
    }
    assert all(real.values()), real
    return World(role=role, key=key, real=real)


def simulation_run_done(simulation: Any) -> None:
    """The stored result the worker would have written (30 days of the world's incidents)."""
    from compensation.services.simulations import simulate_policies

    simulation.result = simulate_policies(simulation.pack, days=simulation.days)
    simulation.save(update_fields=["result"])


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def unthrottled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of requests a minute from one user (and, for the feedback links, from one address):
    let them through, so they reach the views."""
    from compensation.http import ResilientAnonRateThrottle, ResilientUserRateThrottle

    rates = {"user": "1000000/min", "anon": "1000000/min"}
    monkeypatch.setattr(ResilientUserRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(ResilientAnonRateThrottle, "THROTTLE_RATES", rates)


@contextmanager
def connection_kept() -> Iterator[None]:
    """Requests go straight to the WSGI app, so keep Django from closing the test's connection after
    each one (inside the test's transaction it looks obsolete), as Django's test client does (and stops
    doing after each of its own requests: so this starts once the world is built)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@contextmanager
def rolled_back() -> Iterator[None]:
    """One request's writes, undone after it: the next request sees the world as it was built."""
    from django.db import transaction

    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def world(role: str, demo_pack: None, unthrottled: None, make_user: Any) -> Iterator[World]:
    """This test's world; when the test ends, its requests are checked (unless an example failed:
    that failure is the report)."""
    built = _world_build(role, make_user)
    with connection_kept():
        yield built
    print(built.report())
    if not built.failed:
        built.check()


# --- The fuzzing ------------------------------------------------------------------------------


@schema.parametrize()
@pytest.mark.parametrize("role", ROLES)
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_fuzz(case: Any, role: str, world: World) -> None:
    try:
        aimed = world.aim(case)
        with rolled_back():
            response = aimed.call_and_validate(headers={"Authorization": f"Token {world.key}"}, checks=CHECKS)
    except BaseException:
        world.failed = True
        raise
    world.count(case, response.status_code)


def test_the_fuzzing_covers_every_operation_with_at_least_1000_requests() -> None:
    """Every operation of the schema is fuzzed as every role, each test sending at least its minimum."""
    operations = {result.ok().label for result in schema.get_all_operations()}

    assert operations == OPERATIONS
    assert len(operations) * len(ROLES) * MINIMUM_REQUESTS_PER_TEST >= MINIMUM_REQUESTS
